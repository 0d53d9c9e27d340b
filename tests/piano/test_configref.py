"""docs/configuration.md is generated from the configuration's schema and kept equal to it."""

from __future__ import annotations

from pathlib import Path

from piano.config import load_config
from piano.configref import keys, render

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_committed_configuration_reference_is_the_generated_one() -> None:
    assert REFERENCE.read_text() == render(), (
        "docs/configuration.md is out of date: "
        ".venv/bin/python -m piano.configref > docs/configuration.md"
    )


def test_every_key_has_a_meaning_and_the_reference_names_it() -> None:
    text = render()
    undocumented = [key.path for key in keys() if not key.description]
    assert undocumented == []
    assert all(f"| `{key.name}` |" in text for key in keys())
    assert {"agents.<name>.backend", "providers.<name>.wire_api", "metrics.port"} <= {
        key.path for key in keys()
    }


def test_every_example_block_in_the_reference_loads_as_a_configuration(tmp_path: Path) -> None:
    """What a reader copies from the page works: each ```toml block is a valid config (the
    self-hosted server's block included), given the providers the examples name (and, for a
    cluster's blocks, the PostgreSQL store a cluster needs)."""
    providers = '[providers.local]\nbase_url = "http://127.0.0.1:8080/v1"\n'
    providers += '[providers.openai]\nbase_url = "https://api.openai.com/v1"\n'
    blocks = render().split("```toml\n")[1:]
    assert len(blocks) > 10
    for block in blocks:
        text = block.split("```", 1)[0]
        if "[providers." not in text:
            text = text + providers
        if "[cluster" in text and "[store]" not in text:
            text = text + '[store]\nbackend = "postgres"\n'
        path = tmp_path / "piano.toml"
        path.write_text(text.replace("/var/lib/piano/codex-home", str(tmp_path / "codex")))
        load_config(path, environ={})
