"""`piano doctor`'s checks that need no machine state: API keys and surface tokens named in the
configuration but not set in the environment."""

from __future__ import annotations

from pathlib import Path

from piano.agents import OpenAIAgentConfig
from piano.config import AgentConfig, Config, ProviderConfig, load_config
from piano.doctor import check_provider_keys, check_surface_tokens


def _config() -> Config:
    return Config(
        providers={
            "openai": ProviderConfig(base_url="https://api.openai.com/v1", env_key="OPENAI_KEY"),
            "local": ProviderConfig(base_url="http://127.0.0.1:8080/v1"),
            "unused": ProviderConfig(base_url="http://127.0.0.1:9/v1", env_key="UNUSED_KEY"),
        },
        agents={
            "default": AgentConfig(provider="openai"),
            "offline": AgentConfig(provider="local"),
        },
    )


def test_a_key_variable_an_agent_needs_is_named_with_the_fix_when_it_is_not_set() -> None:
    check = check_provider_keys(_config(), environ={})
    assert not check.ok
    assert check.detail == "agents.default: OPENAI_KEY (provider openai) is not set"
    assert check.fix == "export the variables named above"


def test_keys_that_are_set_or_not_needed_pass() -> None:
    assert check_provider_keys(_config(), environ={"OPENAI_KEY": "sk-test"}).ok


def test_an_openai_agent_is_checked_as_its_endpoint_resolves_its_key() -> None:
    config = Config(
        providers={"local": ProviderConfig(base_url="http://127.0.0.1:8000/v1", env_key="K")},
        agents={
            "keyless": AgentConfig(
                backend="openai",
                model="m",
                provider="local",
                openai=OpenAIAgentConfig(api_key_env=""),
            ),
            "keyed": AgentConfig(backend="openai", model="m", provider="local"),
        },
    )
    check = check_provider_keys(config, environ={})
    assert not check.ok
    assert check.detail.startswith("agents.keyed: the API key variable K is not set")
    assert "keyless" not in check.detail


def test_an_enabled_surface_without_its_token_is_named_as_stopping_the_daemon(
    tmp_path: Path,
) -> None:
    path = tmp_path / "piano.toml"
    path.write_text('[web]\nenabled = true\n[telegram]\ntoken_env = "BOT_TOKEN"\n')
    config = load_config(path, environ={})
    check = check_surface_tokens(config, environ={"PIANO_WEB_TOKEN": "t"})
    assert not check.ok
    assert check.detail == "not set: BOT_TOKEN ([telegram]); the daemon will not start"
    assert check_surface_tokens(config, environ={"PIANO_WEB_TOKEN": "t", "BOT_TOKEN": "b"}).ok
