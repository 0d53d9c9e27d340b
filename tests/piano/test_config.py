"""Configuration: every error names the file, the key and the reason; the environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from piano.codex._client import codex_args
from piano.config import ConfigError, load_config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[agents.default]\nbusy = "later"\n', "agents.default.busy: Invalid enum value 'later'"),
        ("[daemon]\nstate_dir = 3\n", "daemon.state_dir: Expected `str`, got `int`"),
        (
            '[agents.default]\nmodle = "x"\n',
            "agents.default.modle: no such key (a typo?",
        ),
        ('[agents.x]\nprovider = "nowhere"\n', "agents.x.provider: no provider named 'nowhere'"),
        ('default_agent = "ghost"\n', "default_agent: no agent named 'ghost'"),
        (
            "[agents.default]\nturn_timeout = -1\n",
            "agents.default.turn_timeout: Expected `float` > 0.0",
        ),
        (
            '[tools.browser]\nallowed_networks = ["10.0.0.1/8"]\n',
            "tools.browser: tools.browser.allowed_networks: 10.0.0.1/8 has host bits set",
        ),
        (
            '[providers.p]\nbase_url = "http://h/v1"\nwire_api = "chat"\n'
            '[agents.default]\nprovider = "p"\n',
            "agents.default.provider: provider 'p' has wire_api = \"chat\", which codex no "
            "longer supports",
        ),
        ("[daemon\n", "not valid TOML"),
    ],
)
def test_a_bad_config_names_the_file_the_key_and_the_reason(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "piano.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml", environ={})


def test_environment_variables_override_keys_with_toml_values(tmp_path: Path) -> None:
    path = tmp_path / "piano.toml"
    path.write_text('[agents.default]\nmodel = "a"\nbusy = "queue"\n')
    config = load_config(
        path,
        environ={
            "PIANO__AGENTS__DEFAULT__MODEL": "gpt-5.5",
            "PIANO__AGENTS__DEFAULT__TURN_TIMEOUT": "30",
            "PIANO__PROVIDERS__LOCAL__BASE_URL": "http://127.0.0.1:1/v1",
            "UNRELATED": "x",
        },
    )
    agent = config.agents["default"]
    assert (agent.model, agent.turn_timeout, agent.busy) == ("gpt-5.5", 30.0, "queue")
    assert config.providers["local"].base_url == "http://127.0.0.1:1/v1"


def test_the_shipped_example_config_loads() -> None:
    config = load_config(
        Path(__file__).resolve().parents[2] / "examples" / "piano.toml", environ={}
    )
    assert config.agents["default"].provider == "openai"
    assert config.providers["openai"].env_key == "OPENAI_API_KEY"


def test_codex_gets_every_provider_it_can_use_under_an_id_it_accepts(tmp_path: Path) -> None:
    path = tmp_path / "piano.toml"
    path.write_text(
        '[providers.openai]\nbase_url = "https://api.openai.com/v1"\nenv_key = "OPENAI_API_KEY"\n'
        '[providers.local]\nbase_url = "http://127.0.0.1:8000/v1"\nwire_api = "chat"\n'
        '[agents.default]\nprovider = "openai"\n'
        '[agents.chatty]\nbackend = "openai"\nmodel = "m"\nprovider = "local"\n'
    )
    args = codex_args(load_config(path, environ={}))
    overrides = [arg for arg in args if arg.startswith("model_providers.")]
    assert overrides == [
        'model_providers.piano-openai={name="openai", base_url="https://api.openai.com/v1", '
        'wire_api="responses", env_key="OPENAI_API_KEY"}'
    ]
