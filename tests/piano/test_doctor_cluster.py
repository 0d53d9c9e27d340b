"""`piano doctor` on a cluster's node checks the broker: a real RabbitMQ answers, a broker that
is not there or a URL not set is one failed line with the fix, the password never shown."""

from __future__ import annotations

import socket
from pathlib import Path

from piano.config import load_config
from piano.doctor import check_broker
from tests.pipeline.rabbitmq.conftest import amqp_url

__all__ = ["amqp_url"]


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "piano.toml"
    path.write_text(
        '[store]\nbackend = "postgres"\n[cluster]\nnode_id = "a"\n'
        '[cluster.rabbitmq]\nurl_env = "AMQP"\nconfirm_timeout = 5.0\n'
    )
    return path


def test_the_doctor_finds_a_running_broker(tmp_path: Path, amqp_url: str) -> None:
    config = load_config(_config(tmp_path), environ={})
    check = check_broker(config, {"AMQP": amqp_url})
    assert check.ok, check.line()
    assert "RabbitMQ at amqp://" in check.detail


def test_a_broker_not_there_or_not_named_is_one_failed_line_without_the_password(
    tmp_path: Path,
) -> None:
    config = load_config(_config(tmp_path), environ={})
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    check = check_broker(config, {"AMQP": f"amqp://piano:s3cret@127.0.0.1:{port}/"})
    assert not check.ok
    assert f"cannot connect to RabbitMQ at amqp://127.0.0.1:{port}/" in check.detail
    assert "s3cret" not in check.line()
    assert "\n" not in check.detail
    unset = check_broker(config, {})
    assert not unset.ok
    assert "$AMQP, which is not set" in unset.detail
