"""What codex is started with: only the environment it needs, and a sandbox without /tmp."""

from __future__ import annotations

from pathlib import Path

import pytest

from piano.codex import codex_environment
from piano.codex._client import codex_args
from piano.config import ConfigError, load_config

CONFIG = """
[providers.local]
base_url = "http://127.0.0.1:9/v1"
env_key = "LOCAL_KEY"
[providers.other]
base_url = "http://127.0.0.1:9/v1"
wire_api = "chat"
env_key = "OTHER_KEY"
[agents.default]
provider = "local"
[agents.helper]
backend = "openai"
model = "m"
provider = "other"
"""

ENVIRON = {
    "PATH": "/usr/bin",
    "HOME": "/home/u",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "LOCAL_KEY": "sk-local",
    "OTHER_KEY": "sk-other",
    "OPENAI_API_KEY": "sk-openai",
    "PIANO_WEB_TOKEN": "web",
    "PIANO_TELEGRAM_TOKEN": "tg",
    "AWS_SECRET_ACCESS_KEY": "aws",
}


def test_codex_gets_its_providers_key_and_the_basics_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "piano.toml"
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n' + CONFIG)
    config = load_config(path, environ={})
    env = codex_environment(config, ENVIRON)
    assert set(env) == {
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "LOCAL_KEY",
        "RUST_LOG",
        "CODEX_HOME",
        "TMPDIR",
    }
    assert env["CODEX_HOME"] == str(tmp_path / "state" / "codex-home")
    args = codex_args(config)
    assert 'shell_environment_policy.exclude=["LOCAL_KEY"]' in args
    assert "sandbox_workspace_write.exclude_slash_tmp=true" in args


@pytest.mark.parametrize(
    ("daemon", "key"),
    [
        ('state_dir = "{work}/state"', "daemon.state_dir"),
        ('state_dir = "{root}/state"\ndatabase = "{work}/piano.db"', "daemon.database"),
        (
            'state_dir = "{root}/state"\n[tools.jail]\nworkspace_root = "{work}/jails"',
            "tools.jail.workspace_root",
        ),
    ],
)
def test_state_an_agent_could_write_is_refused_naming_the_key(
    tmp_path: Path, daemon: str, key: str
) -> None:
    work = tmp_path / "work"
    path = tmp_path / "piano.toml"
    path.write_text(
        "[daemon]\n"
        + daemon.format(work=work, root=tmp_path)
        + f'\n[agents.default]\nworkspace = "{work}"\n'
    )
    with pytest.raises(ConfigError, match=rf"{key}: .* inside agents\.default\.workspace"):
        load_config(path, environ={})
