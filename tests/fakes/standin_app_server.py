"""A stand-in for `codex app-server` (NOT codex): a tiny stdio JSON-RPC peer for paths the
real binary cannot be made to take on demand. Run as `standin_app_server.py app-server SCENARIO`.

Scenarios (after the initialize / initialized handshake):
* `garbage`: notifications `standin/one`, then lines that are not messages, then `standin/two`.
* `requests`: asks the client `item/tool/requestUserInput` (Piano does not handle it) and an
  approval with invalid params; echoes each answer back as a `standin/answer` notification.
* `late`: leaves request `slow` unanswered until notification `release`, answers `ping` at once
  (and never answers anything else, such as the watchdog's `account/read`).
* `stderr`: writes log lines to stderr as codex does (a WARN with a continuation line, an ERROR,
  an unprefixed line), then notification `standin/logged`.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def send(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def receive() -> dict[str, Any] | None:
    line = sys.stdin.readline()
    return json.loads(line) if line else None


def main(scenario: str) -> None:
    init = receive()
    assert init is not None
    send({"id": init["id"], "result": {"userAgent": "standin/0", "codexHome": "/nowhere"}})
    receive()  # initialized
    if scenario == "garbage":
        send({"method": "standin/one", "params": {"threadId": "t1"}})
        sys.stdout.write('this is not json\n{"id": 7}\n[1, 2]\n\n{"method": 3}\n')
        send({"method": "standin/two", "params": {"threadId": "t1"}})
    elif scenario == "requests":
        send({"id": 0, "method": "item/tool/requestUserInput", "params": {"threadId": "t1"}})
        send({"method": "standin/answer", "params": receive()})
        bad = {"threadId": 5}
        send({"id": 1, "method": "item/commandExecution/requestApproval", "params": bad})
        send({"method": "standin/answer", "params": receive()})
    elif scenario == "stderr":
        stamp = "2026-12-04T16:36:07.289808Z"
        sys.stderr.write(
            f"{stamp}  WARN codex_core::client: careful\n    the same warning, continued\n"
            f"{stamp} ERROR codex_app_server: broken\nplain words\n"
        )
        sys.stderr.flush()
        send({"method": "standin/logged", "params": {}})
    slow_id = None
    while (msg := receive()) is not None:
        if msg.get("method") == "slow":
            slow_id = msg["id"]
        elif msg.get("method") == "release":
            send({"id": slow_id, "result": {"late": True}})
        elif msg.get("method") == "ping":
            send({"id": msg["id"], "result": {"pong": True}})


if __name__ == "__main__":
    main(sys.argv[2])
