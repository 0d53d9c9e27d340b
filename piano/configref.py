"""``python -m piano.configref``: prints the configuration reference (docs/configuration.md),
which `piano.config.reference` generates from the schema."""

from __future__ import annotations

from piano.config.reference import (
    DESCRIPTIONS,
    EXAMPLES,
    Key,
    choices,
    keys,
    render,
    struct_at,
    suggest,
)

__all__ = ["DESCRIPTIONS", "EXAMPLES", "Key", "choices", "keys", "render", "struct_at", "suggest"]

if __name__ == "__main__":
    print(render(), end="")
