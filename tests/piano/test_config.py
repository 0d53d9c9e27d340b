"""Configuration: every error names the file, the key and the reason; the environment overrides."""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piano.codex._client import codex_args
from piano.config import ConfigError, load_config
from supervisors import Backoff


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[agents.default]\nbusy = "later"\n',
            "agents.default.busy: must be one of interrupt, queue, steer; got 'later'",
        ),
        (
            "[tools.mcp]\napproval_mode = 3\n",
            "must be one of approve, auto, prompt, writes; got int",
        ),
        ("[daemon]\nstate_dir = 3\n", "daemon.state_dir: Expected `str`, got `int`"),
        (
            '[agents.default]\nmodle = "x"\n',
            "agents.default.modle: no such key; did you mean model?",
        ),
        ('[daemon]\nlog_levl = "debug"\n', "daemon.log_levl: no such key; did you mean log_level?"),
        ('[agent.default]\nmodel = "x"\n', "agent: no such key; did you mean agents?"),
        ("[daemon]\nzzz = 1\n", "daemon.zzz: no such key (docs/configuration.md lists every key)"),
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


_FIELDS = [
    (section, key)
    for section, keys in {
        "daemon": ["state_dir", "chat_socket", "log_level", "shutdown_timeout", "x"],
        "codex": ["args", "request_timeout", "restart_backoff", "restart_backoff_cap"],
        "web": ["enabled", "port", "heartbeat", "max_frame", "replay_buffer", "rotation_grace"],
        "tools.mcp": ["port", "tool_timeout_sec"],
        "tools.jail": ["timeout", "max_sessions"],
        "tools.webfetch": ["timeout", "allowed_networks"],
        "agents.default": ["turn_timeout", "idle_timeout", "provider", "busy"],
        "providers.local": ["base_url", "request_max_retries"],
        "media": ["enabled"],
    }.items()
    for key in keys
]
_VALUES = st.sampled_from(
    [
        "0",
        "-1",
        "1e400",
        "-1e400",
        "nan",
        "inf",
        "70000",
        "''",
        "'x'",
        "[]",
        "{}",
        "true",
        "[[1]]",
        "{a = {b = 1}}",
        "1.5",
        "'/proc/x'",
        "'" + "s" * 200 + "'",
        "2147483648",
    ]
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    assignments=st.lists(
        st.tuples(st.sampled_from(_FIELDS), _VALUES).map(lambda f: (*f[0], f[1])), max_size=4
    )
)
def test_any_config_loads_or_gets_one_config_error_naming_the_file(
    tmp_path: Path, assignments: list[tuple[str, str, str]]
) -> None:
    """Whatever keys and values a config holds, loading it gives one ConfigError that names
    the file (never another exception: a traceback for the user), or a Config the daemon can
    run with: finite numbers, ports that are ports, a restart back-off it can build."""
    sections: dict[str, dict[str, str]] = {}
    for section, key, value in assignments:
        sections.setdefault(section, {})[key] = value
    text = "".join(
        f"[{section}]\n" + "".join(f"{key} = {value}\n" for key, value in keys.items())
        for section, keys in sections.items()
    )
    path = tmp_path / "piano.toml"
    path.write_text(text)
    try:
        config = load_config(path, environ={})
    except ConfigError as exc:
        refused = str(exc)
        assert refused.startswith(f"{path}: "), refused
        assert "\n" not in refused, refused
        return
    Backoff(initial=config.codex.restart_backoff, cap=config.codex.restart_backoff_cap)
    numbers = _numbers(msgspec.to_builtins(config), "")
    assert [key for key, n in numbers if isinstance(n, float) and not math.isfinite(n)] == []
    assert [key for key, n in numbers if key.endswith(".port") and not 0 <= n <= 65535] == []


def _numbers(value: object, key: str) -> list[tuple[str, float]]:
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in _numbers(v, f"{key}.{k}")]
    if isinstance(value, list):
        return [found for i, v in enumerate(value) for found in _numbers(v, f"{key}.{i}")]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [(key, value)]
    return []


def test_a_cluster_needs_the_postgres_store(tmp_path: Path) -> None:
    path = tmp_path / "piano.toml"
    path.write_text('[cluster]\nnode_id = "a"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value) == (
        f'{path}: cluster: a cluster shares its store, so it needs [store] backend = "postgres" '
        "(got 'sqlite'): set it and export the DSN, or remove [cluster]"
    )


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ('node_id = "a b"', "cluster.node_id: 'a b' is not a node id"),
        ("heartbeat = 5.0\nlease_ttl = 6.0", "cluster.lease_ttl: 6.0 is less than twice"),
        ("partitions = 0", "cluster.partitions: Expected `int` >= 1"),
        ("standby = -1", "cluster.standby: Expected `int` >= 0"),
        ("parts = 3", "cluster.parts: no such key; did you mean partitions?"),
        ('[cluster.rabbitmq]\nprefix = "a b"', "cluster.rabbitmq.prefix: 'a b' is not a prefix"),
        ("[cluster.rabbitmq]\nurl = 'amqp://x'", "cluster.rabbitmq.url: no such key"),
    ],
)
def test_a_bad_cluster_section_is_one_line_naming_the_key(
    tmp_path: Path, section: str, expected: str
) -> None:
    path = tmp_path / "piano.toml"
    path.write_text(f'[store]\nbackend = "postgres"\n[cluster]\n{section}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_no_cluster_section_is_one_process_and_a_cluster_reads_its_url_as_a_secret(
    tmp_path: Path,
) -> None:
    assert load_config(None, environ={}).cluster is None
    path = tmp_path / "piano.toml"
    path.write_text(
        '[store]\nbackend = "postgres"\n[cluster]\nnode_id = "node-a"\n'
        '[cluster.rabbitmq]\nurl_env = "MY_AMQP"\nprefix = "t1"\n'
    )
    config = load_config(path, environ={})
    assert config.cluster is not None
    assert config.cluster.node() == "node-a"
    assert config.cluster.rabbitmq.partition_prefix == "t1.p"
    assert "MY_AMQP" in config.secret_variables()
    with pytest.raises(ConfigError, match=r"\$MY_AMQP, which is not set"):
        config.cluster.rabbitmq.url({})
    assert config.cluster.rabbitmq.url({"MY_AMQP": "amqp://u:p@h/"}) == "amqp://u:p@h/"
