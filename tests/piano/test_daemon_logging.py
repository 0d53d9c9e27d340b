"""The daemon's log lines never show a configured secret, whoever logs them."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator

import pytest
import structlog

from piano.config import Config
from piano.daemon import configure_logging


@pytest.fixture
def daemon_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_configured_secret_is_redacted_from_structlog_and_library_log_lines(
    daemon_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    token = f"4242:bot-{secrets.token_hex(12)}"
    Config().secrets({"PIANO_WEB_TOKEN": token})
    configure_logging(Config())
    structlog.get_logger("piano.test").error("actor.crashed", state={"bot": f"Bot[token={token}]"})
    logging.getLogger("httpx").warning("POST https://api.telegram.org/bot%s/getUpdates", token)
    logged = capsys.readouterr().err
    assert "actor.crashed" in logged
    assert "getUpdates" in logged
    assert token not in logged
    assert logged.count("<redacted>") == 2
