"""`CodexProcess` against the real pinned `codex app-server` and the fake Responses provider.

Paths the real binary cannot be driven into on demand (an unknown server request, garbage on
stdout, a response that comes too late) use `tests/fakes/standin_app_server.py`, a small Python
peer that is clearly not codex.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog

from piano.codex import CodexExited, CodexProcess, CodexTimeout
from schemas.codex import (
    AgentMessageDeltaNotification,
    CommandExecutionItem,
    CommandExecutionRequestApprovalParams,
    CommandExecutionRequestApprovalResponse,
    ErrorNotification,
    FileChangeItem,
    FileChangeRequestApprovalParams,
    FileChangeRequestApprovalResponse,
    ItemCompletedNotification,
    RpcRequest,
    TextInput,
    ThreadStartParams,
    ThreadTokenUsageUpdatedNotification,
    TurnCompletedNotification,
    TurnInterruptParams,
    TurnStartParams,
    WorkspaceWritePolicy,
)
from tests.fakes.responses_provider import (
    ApplyPatch,
    CodexDirs,
    Cut,
    ExecCommand,
    Failed,
    FakeResponsesProvider,
    Hang,
    HttpError,
    Reply,
    Text,
    write_codex_home,
)

STANDIN = Path(__file__).parent / "fakes" / "standin_app_server.py"
TURN_TIMEOUT = 30


class Notes:
    """Records notifications; `wait_for` blocks until a matching one has arrived."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, str, Any]] = []
        self._changed = asyncio.Condition()

    async def __call__(self, thread_id: str | None, method: str, params: Any) -> None:
        async with self._changed:
            self.seen.append((thread_id, method, params))
            self._changed.notify_all()

    async def wait_for(self, method: str, where: Callable[[Any], bool] = lambda _: True) -> Any:
        def found() -> Any:
            return next((p for _, m, p in self.seen if m == method and where(p)), None)

        with anyio.fail_after(TURN_TIMEOUT):
            async with self._changed:
                await self._changed.wait_for(lambda: found() is not None)
        return found()

    def methods(self, thread_id: str) -> list[str]:
        return [m for t, m, _ in self.seen if t == thread_id]


@pytest.fixture
async def provider() -> AsyncIterator[FakeResponsesProvider]:
    async with FakeResponsesProvider() as fake:
        yield fake


def codex(dirs: CodexDirs, provider: FakeResponsesProvider, **kwargs: Any) -> CodexProcess:
    if not (dirs.home / "config.toml").exists():
        write_codex_home(dirs.home, provider.base_url)
    return CodexProcess(env=dirs.env, cwd=dirs.work, **kwargs)


def standin(tmp_path: Path, scenario: str, **kwargs: Any) -> CodexProcess:
    launcher = tmp_path / "standin"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" "$@"\n')
    launcher.chmod(0o755)
    return CodexProcess(binary=launcher, args=[scenario], **kwargs)


async def standin_run(
    tmp_path: Path, scenario: str, last: str
) -> tuple[Notes, list[MutableMapping[str, Any]]]:
    """Run the stand-in's `scenario` until notification `last`, then close it (which waits
    for its exit and the rest of its stderr); its notifications and what was logged."""
    notes = Notes()
    with structlog.testing.capture_logs() as logs:
        async with standin(tmp_path, scenario, on_notification=notes):
            await notes.wait_for(last)
    return notes, logs


async def run_turn(proc: CodexProcess, notes: Notes, dirs: CodexDirs, text: str) -> str:
    thread = await proc.call(ThreadStartParams(cwd=str(dirs.work), ephemeral=True))
    thread_id = thread.thread.id
    await proc.call(TurnStartParams(thread_id=thread_id, input=[TextInput(text)]))
    await notes.wait_for("turn/completed", lambda p: p.thread_id == thread_id)
    return thread_id


def completed_items(notes: Notes, kind: type[Any]) -> list[Any]:
    return [
        p.item
        for _, m, p in notes.seen
        if isinstance(p, ItemCompletedNotification) and isinstance(p.item, kind)
    ]


@pytest.mark.anyio
async def test_the_handshake_returns_the_servers_identity_and_unknown_notifications_stay_dicts(
    dirs: CodexDirs, provider: FakeResponsesProvider
) -> None:
    notes = Notes()
    async with codex(dirs, provider, on_notification=notes) as proc:
        assert proc.exit is None
        status = await notes.wait_for("remoteControl/status/changed")
    assert isinstance(status, dict)
    assert "status" in status
    exit_info = await proc.wait_closed()
    assert exit_info.returncode == 0


@pytest.mark.anyio
async def test_a_text_turn_streams_its_deltas_in_order_and_then_completes(
    dirs: CodexDirs, provider: FakeResponsesProvider
) -> None:
    provider.script(Text("Hello from the fake model", deltas=5))
    notes = Notes()
    async with codex(dirs, provider, on_notification=notes) as proc:
        thread_id = await run_turn(proc, notes, dirs, "say hello")
    deltas = [p.delta for _, _, p in notes.seen if isinstance(p, AgentMessageDeltaNotification)]
    assert "".join(deltas) == "Hello from the fake model"
    assert len(deltas) == 5
    methods = notes.methods(thread_id)
    last_delta = len(methods) - 1 - methods[::-1].index("item/agentMessage/delta")
    assert "item/completed" in methods[last_delta:]
    assert methods[-1] == "turn/completed"
    done = await notes.wait_for("turn/completed")
    assert isinstance(done, TurnCompletedNotification)
    assert done.turn.status == "completed"
    usage = await notes.wait_for("thread/tokenUsage/updated")
    assert isinstance(usage, ThreadTokenUsageUpdatedNotification)
    assert usage.token_usage.last.total_tokens == 150
    assert "say hello" in str(provider.requests[0]["input"])


@pytest.mark.anyio
async def test_an_exec_command_turn_completes_a_command_item_with_its_output(
    dirs: CodexDirs, provider: FakeResponsesProvider
) -> None:
    provider.script(ExecCommand("echo piano-exec-ok"), Text("ran it"))
    notes = Notes()
    async with codex(dirs, provider, on_notification=notes) as proc:
        await run_turn(proc, notes, dirs, "run echo")
    [command] = completed_items(notes, CommandExecutionItem)
    assert command.status == "completed"
    assert command.exit_code == 0
    assert "piano-exec-ok" in (command.aggregated_output or "")
    assert "function_call_output" in str(provider.requests[1]["input"])


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("decision", "status", "ran"), [("accept", "completed", True), ("decline", "declined", False)]
)
async def test_an_escalation_asks_the_approval_handler_and_its_decision_is_obeyed(
    dirs: CodexDirs, provider: FakeResponsesProvider, decision: str, status: str, ran: bool
) -> None:
    asked: list[RpcRequest] = []

    async def approve(req: RpcRequest) -> CommandExecutionRequestApprovalResponse:
        asked.append(req)
        return CommandExecutionRequestApprovalResponse(decision=decision)  # type: ignore[arg-type]

    provider.script(ExecCommand("echo escalated-ok", require_escalated=True), Text("after"))
    notes = Notes()
    handlers = {"item/commandExecution/requestApproval": approve}
    async with codex(dirs, provider, on_notification=notes, request_handlers=handlers) as proc:
        thread_id = await run_turn(proc, notes, dirs, "escalate")
    [req] = asked
    assert isinstance(req.params, CommandExecutionRequestApprovalParams)
    assert req.thread_id == thread_id
    assert "echo escalated-ok" in (req.params.command or "")
    resolved = await notes.wait_for("serverRequest/resolved")
    assert resolved.request_id == req.id
    [command] = completed_items(notes, CommandExecutionItem)
    assert command.id == req.params.item_id
    assert command.status == status
    assert ("escalated-ok" in (command.aggregated_output or "")) is ran
    done = await notes.wait_for("turn/completed")
    assert done.turn.status == "completed"


@pytest.mark.anyio
async def test_a_patch_outside_the_writable_roots_asks_the_file_change_handler(
    dirs: CodexDirs, provider: FakeResponsesProvider, tmp_path: Path
) -> None:
    # /tmp is left out of the writable roots below; a path under `.codex/` would stay read-only
    target = tmp_path / "note.txt"
    asked: list[RpcRequest] = []

    async def approve(req: RpcRequest) -> FileChangeRequestApprovalResponse:
        asked.append(req)
        return FileChangeRequestApprovalResponse(decision="accept")

    patch = f"*** Begin Patch\n*** Add File: {target}\n+written by piano\n*** End Patch\n"
    provider.script(ApplyPatch(patch), Text("patched"))
    notes = Notes()
    handlers = {"item/fileChange/requestApproval": approve}
    policy = WorkspaceWritePolicy(exclude_slash_tmp=True, exclude_tmpdir_env_var=True)
    async with codex(dirs, provider, on_notification=notes, request_handlers=handlers) as proc:
        thread = await proc.call(ThreadStartParams(cwd=str(dirs.work), ephemeral=True))
        turn = TurnStartParams(
            thread_id=thread.thread.id, input=[TextInput("patch")], sandbox_policy=policy
        )
        await proc.call(turn)
        await notes.wait_for("turn/completed")
    [req] = asked
    assert isinstance(req.params, FileChangeRequestApprovalParams)
    [change] = completed_items(notes, FileChangeItem)
    assert change.id == req.params.item_id
    assert change.status == "completed"
    assert target.read_text() == "written by piano\n"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (HttpError(500), "high demand"),
        (Failed("injected boom"), "injected boom"),
        (Cut(), "stream closed before response.completed"),
    ],
    ids=["http-500", "response-failed", "stream-cut"],
)
async def test_a_provider_that_keeps_failing_ends_the_turn_failed_after_retry_errors(
    dirs: CodexDirs, provider: FakeResponsesProvider, failure: Reply, message: str
) -> None:
    provider.default = failure
    notes = Notes()
    async with codex(dirs, provider, on_notification=notes) as proc:
        await run_turn(proc, notes, dirs, "fail please")
    done = await notes.wait_for("turn/completed")
    assert done.turn.status == "failed"
    errors = [p for _, _, p in notes.seen if isinstance(p, ErrorNotification)]
    assert [e.will_retry for e in errors][-1] is False
    assert any(e.will_retry for e in errors)
    assert message in (errors[-1].error.message + (errors[-1].error.additional_details or ""))
    assert len(provider.requests) > 1


@pytest.mark.anyio
async def test_a_hanging_model_call_is_ended_by_turn_interrupt(
    dirs: CodexDirs, provider: FakeResponsesProvider
) -> None:
    provider.script(Hang())
    notes = Notes()
    async with codex(dirs, provider, on_notification=notes) as proc:
        thread = await proc.call(ThreadStartParams(cwd=str(dirs.work), ephemeral=True))
        thread_id = thread.thread.id
        started = await proc.call(TurnStartParams(thread_id=thread_id, input=[TextInput("hi")]))
        with anyio.fail_after(TURN_TIMEOUT):
            await provider.wait_requests(1)
        await proc.call(TurnInterruptParams(thread_id=thread_id, turn_id=started.turn.id))
        done = await notes.wait_for("turn/completed")
    assert done.turn.id == started.turn.id
    assert done.turn.status == "interrupted"


@pytest.mark.anyio
async def test_a_killed_process_fails_the_pending_request_with_its_exit_and_fires_on_exit(
    dirs: CodexDirs, provider: FakeResponsesProvider
) -> None:
    exits: list[CodexExited] = []
    exited = anyio.Event()

    def on_exit(info: CodexExited) -> None:
        exits.append(info)
        exited.set()

    async with codex(dirs, provider, on_exit=on_exit) as proc:
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGSTOP)  # a stopped codex can never answer the request below
        # runs at the request's first await, i.e. after its line has been written to stdin
        asyncio.get_running_loop().call_soon(os.kill, proc.pid, signal.SIGKILL)
        with anyio.fail_after(10), pytest.raises(CodexExited) as failure:
            await proc.call(ThreadStartParams(cwd=str(dirs.work)))
        with anyio.fail_after(10):
            await exited.wait()
    assert failure.value.returncode == -signal.SIGKILL
    assert "exited with code -9" in str(failure.value)
    assert [e.returncode for e in exits] == [-9]
    with pytest.raises(CodexExited):
        await proc.request("thread/start")


@pytest.mark.anyio
async def test_a_startup_failure_raises_with_the_reason_codex_wrote_to_stderr(
    dirs: CodexDirs, provider: FakeResponsesProvider
) -> None:
    write_codex_home(dirs.home, provider.base_url, approval_policy="untrusted")
    proc = codex(dirs, provider)
    with anyio.fail_after(TURN_TIMEOUT), pytest.raises(CodexExited) as failure:
        await proc.start()
    assert failure.value.returncode not in (0, None)
    assert "untrusted" in str(failure.value)
    assert "startup failed" in str(failure.value)
    await proc.close()


@pytest.mark.anyio
async def test_lines_that_are_not_messages_are_logged_and_skipped(tmp_path: Path) -> None:
    notes, logs = await standin_run(tmp_path, "garbage", "standin/two")
    assert [m for _, m, _ in notes.seen] == ["standin/one", "standin/two"]
    assert all(t == "t1" for t, _, _ in notes.seen)
    invalid = [e for e in logs if e["event"] == "codex.invalid_message"]
    assert len(invalid) == 4  # not JSON, no result/error, an array, a non-string method


@pytest.mark.anyio
async def test_server_requests_without_a_handler_or_with_bad_params_get_an_error_answer(
    tmp_path: Path,
) -> None:
    notes = Notes()
    handled: list[RpcRequest] = []

    async def approve(req: RpcRequest) -> CommandExecutionRequestApprovalResponse:
        handled.append(req)
        return CommandExecutionRequestApprovalResponse(decision="accept")

    handlers = {"item/commandExecution/requestApproval": approve}
    async with standin(tmp_path, "requests", on_notification=notes, request_handlers=handlers):
        await notes.wait_for("standin/answer", lambda p: p["id"] == 1)
    answers = {p["id"]: p for _, m, p in notes.seen if m == "standin/answer"}
    assert answers[0]["error"]["code"] == -32601
    assert "item/tool/requestUserInput" in answers[0]["error"]["message"]
    assert answers[1]["error"]["code"] == -32602
    assert handled == []


@pytest.mark.anyio
async def test_a_request_times_out_and_its_late_response_is_dropped(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        async with standin(tmp_path, "late") as proc:
            with pytest.raises(CodexTimeout, match="slow"):
                await proc.request("slow", timeout=0.2)
            await proc.notify("release")
            pong = await proc.request("ping", timeout=10)
    assert bytes(pong) == b'{"pong": true}'
    assert any(e["event"] == "codex.late_response" for e in logs)


@pytest.mark.anyio
async def test_codex_stderr_is_logged_at_codex_own_level(tmp_path: Path) -> None:
    _, logs = await standin_run(tmp_path, "stderr", "standin/logged")
    levels = [(e["log_level"], e["line"].split()[-1]) for e in logs if e["event"] == "codex.stderr"]
    assert levels == [
        ("warning", "careful"),
        ("warning", "continued"),
        ("error", "broken"),
        ("info", "words"),
    ]


@pytest.mark.anyio
async def test_the_watchdog_kills_a_codex_that_stops_answering(tmp_path: Path) -> None:
    exits: list[CodexExited] = []
    with structlog.testing.capture_logs() as logs:
        proc = standin(
            tmp_path, "late", watchdog_interval=0.1, watchdog_timeout=0.5, on_exit=exits.append
        )
        await proc.start()
        with anyio.fail_after(30):
            exited = await proc.wait_closed()
    assert exits == [exited]
    assert exited.returncode == -9
    [hung] = [e for e in logs if e["event"] == "codex.hung"]
    assert hung["log_level"] == "error"
    assert hung["waited"] == 0.5
