"""`piano doctor`'s checks that need no machine state: provider keys named but not set."""

from __future__ import annotations

from piano.config import AgentConfig, Config, ProviderConfig
from piano.doctor import check_provider_keys


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
    assert check.detail == "not set: OPENAI_KEY (provider openai)"
    assert check.fix == "export OPENAI_KEY=..."


def test_keys_that_are_set_or_not_needed_pass() -> None:
    assert check_provider_keys(_config(), environ={"OPENAI_KEY": "sk-test"}).ok
