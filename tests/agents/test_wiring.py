"""What the daemon relies on to wire the OpenAI backend: the example configuration, import
order, endpoint resolution and the approval rules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from piano.agents import OpenAIAgentConfig
from piano.agents.openai import MissingKey, needs_approval, resolve_endpoint
from piano.config import ConfigError, ProviderConfig, load_config

EXAMPLE = Path(__file__).parents[2] / "examples" / "agents.toml"


def test_the_example_configuration_has_two_valid_agents_that_hand_off_to_each_other() -> None:
    config = load_config(EXAMPLE, environ={})
    assert config.default_agent == "concierge"
    assert {name: agent.backend for name, agent in config.agents.items()} == {
        "concierge": "openai",
        "archivist": "openai",
    }
    assert config.agents["concierge"].openai.handoffs == ["archivist"]
    assert config.agents["archivist"].openai.handoffs == ["concierge"]


def test_a_bad_openai_agent_is_refused_by_the_config_with_its_key(tmp_path: Path) -> None:
    path = tmp_path / "piano.toml"
    path.write_text(
        'default_agent = "a"\n[agents.a]\nbackend = "openai"\nmodel = "m"\n'
        '[agents.a.openai]\nhandoffs = ["ghost"]\n'
    )
    with pytest.raises(ConfigError, match=r"agents\.a\.openai\.handoffs"):
        load_config(path, environ={})


def test_bad_options_are_reported_with_their_key() -> None:
    options = OpenAIAgentConfig(max_rounds=0, tools=["telepathy"], handoffs=["ghost"])
    problems = options.problems("concierge", {"concierge"})
    assert problems == [
        "agents.concierge.openai.max_rounds: must be at least 1",
        "agents.concierge.openai.tools: unknown tool 'telepathy' "
        "(known: web_fetch, browser, shell, notes, send_message)",
        "agents.concierge.openai.handoffs: 'ghost' is not another agent with backend = \"openai\"",
    ]


def test_the_backends_do_not_load_the_thread_router_above_them() -> None:
    """piano.threads picks backends; backends sit below it (tests/test_layering.py checks the
    whole graph statically; this checks what loading them actually imports)."""
    code = (
        "import sys, piano.agents.openai, piano.agents.codex; "
        "print([m for m in ('piano.threads', 'piano.daemon') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_endpoint_comes_from_the_options_then_the_provider_and_the_key_from_the_env() -> None:
    provider = ProviderConfig(base_url="http://127.0.0.1:9/v1", wire_api="chat", env_key="K")
    endpoint = resolve_endpoint(OpenAIAgentConfig(), provider, {"K": "secret"})
    assert (endpoint.base_url, endpoint.api, endpoint.api_key) == (
        "http://127.0.0.1:9/v1",
        "chat",
        "secret",
    )
    assert "secret" not in repr(endpoint)
    own = resolve_endpoint(OpenAIAgentConfig(api="responses", api_key_env=""), provider, {})
    assert (own.api, own.key_env) == ("responses", "")
    with pytest.raises(MissingKey, match="K is not set"):
        resolve_endpoint(OpenAIAgentConfig(), provider, {})


@pytest.mark.parametrize(
    ("policy", "command", "asked", "expected"),
    [
        ("never", "rm -rf /workspace/x", True, False),
        ("on-failure", "rm x", True, False),
        ("on-request", "rm x", False, False),
        ("on-request", "ls", True, True),
        ("untrusted", "ls -la /workspace", False, False),
        ("untrusted", "cat a | sh", False, True),
        ("untrusted", "rm x", False, True),
    ],
)
def test_shell_approvals_follow_the_policy(
    policy: str, command: str, asked: bool, expected: bool
) -> None:
    assert needs_approval(policy, command, asked) is expected
