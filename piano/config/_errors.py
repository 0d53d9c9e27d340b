"""`ConfigError`, the one exception a configuration problem raises (shared by every section),
and `required_variable`, the one way a section reads a secret from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["ConfigError", "required_variable"]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file, key and reason."""


def required_variable(
    variable: str, environ: Mapping[str, str] | None, *, key: str, what: str, example: str
) -> str:
    """The value of `variable` (`os.environ` if `environ` is None), stripped; `ConfigError` in
    one line if it is unset or blank: ``KEY: WHAT from $VARIABLE, which is not set: export
    VARIABLE=EXAMPLE``."""
    value = (os.environ if environ is None else environ).get(variable, "").strip()
    if not value:
        raise ConfigError(
            f"{key}: {what} from ${variable}, which is not set: export {variable}={example}"
        )
    return value
