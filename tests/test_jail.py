"""Behaviour of the jailed persistent shell (real bwrap, real bash, real cgroups where writable)."""

from __future__ import annotations

import asyncio
import os
import select
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from piano.tools.jail import (
    BwrapNotFoundError,
    CommandResult,
    JailClosedError,
    JailConfig,
    JailedShell,
    JailStartError,
    RestartReason,
)
from piano.tools.jail._limits import _detect

MiB = 1024 * 1024


def make_config(tmp_path: Path, **overrides: object) -> JailConfig:
    """A small, fast jail: 2 s timeout, 64 KiB output cap, 256 MiB memory, 64 processes."""
    settings: dict[str, object] = {
        "workspace": tmp_path / "workspace",
        "timeout": 2.0,
        "output_cap_bytes": 64 * 1024,
        "memory_limit_bytes": 256 * MiB,
        "pids_limit": 64,
        "tmpfs_size_bytes": 16 * MiB,
    }
    settings.update(overrides)
    return JailConfig(**settings)  # type: ignore[arg-type]


@pytest.fixture
async def shell(tmp_path: Path) -> AsyncIterator[JailedShell]:
    async with JailedShell(make_config(tmp_path)) as jailed:
        yield jailed


def wait_for_exit(pid: int, seconds: float = 5.0) -> bool:
    """Block until process `pid` has exited (pidfd readable), True if it did in time."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], seconds)[0])
    finally:
        os.close(fd)


@pytest.mark.anyio
async def test_exit_code_stdout_and_stderr_come_back_separately(shell: JailedShell) -> None:
    result = await shell.run("echo out; echo err >&2; printf 'no newline'; (exit 5)")
    assert result.exit_code == 5
    assert result.stdout == b"out\nno newline"
    assert result.stderr == b"err\n"
    assert not result.timed_out
    assert not result.jail_restarted
    assert (await shell.run("false")).exit_code == 1
    assert (await shell.run("f() { return 4; }; f")).exit_code == 4


@pytest.mark.anyio
async def test_quotes_and_multiline_commands_arrive_byte_exact(shell: JailedShell) -> None:
    command = "printf '%s|' \"it's\" 'a \"quote\"' $'tab\\there'\ncat <<'EOF'\n$HOME '\\n\nEOF"
    result = await shell.run(command)
    assert result.exit_code == 0
    assert result.stdout == b"it's|a \"quote\"|tab\there|$HOME '\\n\n"


@pytest.mark.anyio
async def test_working_directory_and_exported_variables_persist_and_no_other_shell_state(
    shell: JailedShell,
) -> None:
    await shell.run(
        "mkdir -p sub && cd sub && export GREETING=hello && LOCAL=1 && greet() { echo hi; }"
        " && alias ll=ls && shopt -s extdebug && trap 'echo trapped' DEBUG"
    )
    result = await shell.run('pwd; echo "$GREETING ${LOCAL:-unset}"; shopt extdebug; greet')
    assert result.stdout.split() == [b"/workspace/sub", b"hello", b"unset", b"extdebug", b"off"]
    assert b"greet: command not found" in result.stderr


@pytest.mark.anyio
async def test_commands_read_dev_null_so_stdin_readers_do_not_hang(shell: JailedShell) -> None:
    result = await shell.run("cat; read -r line; echo read=$?")
    assert result.exit_code == 0
    assert result.stdout == b"read=1\n"


@pytest.mark.anyio
async def test_workspace_is_shared_with_the_host(shell: JailedShell) -> None:
    (shell.config.workspace / "from_host.txt").write_text("host wrote this")
    result = await shell.run("cat from_host.txt; echo jail > from_jail.txt")
    assert result.stdout == b"host wrote this"
    assert (shell.config.workspace / "from_jail.txt").read_text() == "jail\n"


@pytest.mark.anyio
async def test_a_command_that_outlives_its_timeout_is_killed_and_the_jail_restarts(
    shell: JailedShell,
) -> None:
    await shell.run("export STATE=kept; cd /tmp")
    old_pid = shell.pid
    assert old_pid is not None
    result = await shell.run("echo started; sleep 60", timeout=1)
    assert result.timed_out
    assert result.exit_code is None
    assert result.restart_reason is RestartReason.TIMEOUT
    assert result.stdout == b"started\n"
    assert await anyio.to_thread.run_sync(wait_for_exit, old_pid)
    after = await shell.run('echo "${STATE:-lost}"; pwd')
    assert after.stdout == b"lost\n/workspace\n"
    assert not after.jail_restarted
    assert shell.pid != old_pid


def test_a_requested_timeout_is_clamped_to_the_configured_one(tmp_path: Path) -> None:
    config = make_config(tmp_path, timeout=5.0)
    for asked, given in ((1e6, 5.0), (2.0, 2.0), (-5, 5.0), (0, 5.0), (None, 5.0)):
        assert config.clamp_timeout(asked) == given, asked
    assert config.clamp_timeout(float("inf")) == 5.0
    assert config.clamp_timeout(float("nan")) == 5.0


@pytest.mark.anyio
async def test_a_command_cannot_ask_for_more_time_than_configured(tmp_path: Path) -> None:
    async with JailedShell(make_config(tmp_path, timeout=1.0)) as shell:
        result = await shell.run("sleep 30", timeout=1e6)
    assert result.timed_out
    assert result.duration < 10


@pytest.mark.anyio
async def test_output_beyond_the_cap_is_dropped_and_flagged(tmp_path: Path) -> None:
    config = make_config(tmp_path, output_cap_bytes=1000)
    async with JailedShell(config) as shell:
        result = await shell.run(
            "head -c 3000000 /dev/zero | tr '\\0' a; head -c 5000 /dev/zero >&2"
        )
        assert result.exit_code == 0
        assert result.stdout == b"a" * 1000
        assert result.stdout_truncated
        assert result.stderr == b"\0" * 1000
        assert result.stderr_truncated
        small = await shell.run("echo fine")
        assert small.stdout == b"fine\n"
        assert not small.stdout_truncated


@pytest.mark.anyio
async def test_subscribers_receive_output_while_the_command_is_still_running(
    shell: JailedShell,
) -> None:
    chunks: list[tuple[str, bytes]] = []
    ready = anyio.Event()

    def on_chunk(stream: str, data: bytes) -> None:
        chunks.append((stream, data))
        if b"ready" in data:
            ready.set()

    unsubscribe = shell.subscribe(on_chunk)
    command = "echo ready; echo warn >&2; while [ ! -e go ]; do sleep 0.01; done; echo done"
    async with anyio.create_task_group() as tg:
        results: list[CommandResult] = []

        async def run() -> None:
            results.append(await shell.run(command, timeout=5))

        tg.start_soon(run)
        with anyio.fail_after(3):
            await ready.wait()
        assert not results, "the command must still be running when its output arrives"
        (shell.config.workspace / "go").touch()
    assert results[0].stdout == b"ready\ndone\n"
    assert b"".join(d for s, d in chunks if s == "stdout") == b"ready\ndone\n"
    assert b"".join(d for s, d in chunks if s == "stderr") == b"warn\n"
    unsubscribe()
    await shell.run("echo unheard")
    assert all(b"unheard" not in d for _, d in chunks)


@pytest.mark.anyio
async def test_audit_hook_receives_every_command_including_timeouts(tmp_path: Path) -> None:
    seen: list[CommandResult] = []

    async def record(result: CommandResult) -> None:
        seen.append(result)

    async with JailedShell(make_config(tmp_path), on_command=record) as shell:
        await shell.run("echo one")
        await shell.run("exit 9")
        await shell.run("sleep 60", timeout=1)
    assert [(r.command, r.exit_code, r.timed_out) for r in seen] == [
        ("echo one", 0, False),
        ("exit 9", 9, False),
        ("sleep 60", None, True),
    ]


@pytest.mark.anyio
async def test_a_failing_audit_hook_makes_run_raise(tmp_path: Path) -> None:
    def broken(result: CommandResult) -> None:
        raise RuntimeError("store is down")

    async with JailedShell(make_config(tmp_path), on_command=broken) as shell:
        with pytest.raises(RuntimeError, match="store is down"):
            await shell.run("true")


@pytest.mark.anyio
async def test_exit_in_a_command_reports_its_status_and_keeps_the_state(
    shell: JailedShell,
) -> None:
    await shell.run("export STATE=kept")
    result = await shell.run("echo bye; export LATER=1; exit 3")
    assert result.exit_code == 3
    assert result.stdout == b"bye\n"
    assert not result.jail_restarted
    assert (await shell.run('echo "$STATE $LATER"')).stdout == b"kept 1\n"


@pytest.mark.anyio
async def test_a_shell_found_dead_before_a_command_is_replaced_and_the_caller_told(
    shell: JailedShell,
) -> None:
    pid = shell.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert await anyio.to_thread.run_sync(wait_for_exit, pid)
    result = await shell.run("echo fresh")
    assert result.stdout == b"fresh\n"
    assert result.restart_reason is RestartReason.SHELL_DIED_BEFORE


@pytest.mark.anyio
async def test_a_cancelled_run_kills_its_jail_and_the_next_command_is_told(
    shell: JailedShell,
) -> None:
    await shell.run("export STATE=kept")
    running = anyio.Event()
    shell.subscribe(lambda stream, data: running.set())
    async with anyio.create_task_group() as tg:
        tg.start_soon(shell.run, "echo partial; sleep 60", 30)
        with anyio.fail_after(3):
            await running.wait()
        tg.cancel_scope.cancel()
    result = await shell.run('echo "${STATE:-lost}"')
    assert result.restart_reason is RestartReason.CANCELLED
    assert result.stdout == b"lost\n", "nothing of the cancelled command leaks into this one"


@pytest.mark.anyio
async def test_concurrent_runs_are_serialised(shell: JailedShell) -> None:
    first = shell.run("echo a1; sleep 0.2; echo a2")
    second = shell.run("echo b")
    results = await asyncio.gather(first, second)
    assert [r.stdout for r in results] == [b"a1\na2\n", b"b\n"]


@pytest.mark.anyio
async def test_background_jobs_end_with_their_command_and_close_removes_cgroups(
    tmp_path: Path,
) -> None:
    shell = JailedShell(make_config(tmp_path))
    await shell.start()
    started = await shell.run("sleep 600 & sleep 600 & echo $! > sleeper")
    assert started.exit_code == 0
    dirs = shell.cgroup_dirs
    assert dirs, "this machine has writable cgroups: the jail must use them"
    jail_pids = {int(p) for d in dirs for p in (d / "cgroup.procs").read_text().split()}
    assert len(jail_pids) == 3, "only bwrap, its pid-1 reaper and bash outlive a command"
    gone = await shell.run("kill -0 $(cat sleeper) 2>/dev/null || echo gone; jobs")
    assert gone.stdout == b"gone\n"
    assert gone.stderr == b""
    await shell.close()
    assert all(wait_for_exit(pid) for pid in jail_pids)
    assert all(not d.exists() for d in dirs)
    with pytest.raises(JailClosedError):
        await shell.run("true")


@pytest.mark.anyio
async def test_close_during_a_command_ends_it_promptly(shell: JailedShell) -> None:
    async with anyio.create_task_group() as tg:
        errors: list[BaseException] = []

        async def run() -> None:
            try:
                await shell.run("sleep 60", timeout=30)
            except JailClosedError as exc:
                errors.append(exc)

        tg.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        with anyio.fail_after(3):
            await shell.close()
    assert len(errors) == 1


@pytest.mark.anyio
async def test_cgroup_limits_apply_where_cgroups_are_writable(shell: JailedShell) -> None:
    report = shell.limits
    assert report is not None
    writable = {c: f"cgroup-v{b.version}" for b in _detect() for c in b.controllers}
    assert report.memory == writable.get("memory", "rlimit")
    if "pids" in writable:
        assert report.pids == writable["pids"]
    names = ("pids.max", "memory.limit_in_bytes", "memory.max")
    values = {
        n: (d / n).read_text().strip() for d in shell.cgroup_dirs for n in names if (d / n).exists()
    }
    if "pids" in writable:
        assert values["pids.max"] == "64"
    if "memory" in writable:
        limit = values.get("memory.limit_in_bytes") or values["memory.max"]
        assert int(limit) == 256 * MiB


@pytest.mark.anyio
async def test_prlimit_fallback_bounds_memory_with_rlimit_as(tmp_path: Path) -> None:
    config = make_config(tmp_path, limit_backend="prlimit")
    async with JailedShell(config) as shell:
        assert shell.limits is not None
        assert shell.limits.memory == "rlimit"
        assert shell.cgroup_dirs == ()
        result = await shell.run("python3 -c 'bytearray(800 * 1024 * 1024)'")
        assert result.exit_code == 1
        assert b"MemoryError" in result.stderr
        assert not result.jail_restarted
        assert shell.limits.cpu == "rlimit"
        await shell.run("sleep 600 & sleep 600 &")
        left = await shell.run("echo /proc/[0-9]*")
        assert len(left.stdout.split()) == 3, "leftovers are found without a cgroup too"
        if os.geteuid() == 0:
            assert shell.limits.pids == "none"
            assert "root" in shell.limits.note


@pytest.mark.anyio
async def test_leftover_cgroups_of_dead_drivers_are_swept(tmp_path: Path) -> None:
    bases = _detect()
    if not bases:
        pytest.fail("no writable cgroup hierarchy with memory or pids on this machine")
    dead = await asyncio.create_subprocess_exec("true")
    await dead.wait()
    leftovers = [b.directory / f"piano-jail-{dead.pid}-deadbeef" for b in bases]
    for leftover in leftovers:
        leftover.mkdir()
    async with JailedShell(make_config(tmp_path)):
        assert all(not leftover.exists() for leftover in leftovers)


@pytest.mark.anyio
async def test_missing_bwrap_is_reported_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BwrapNotFoundError, match=r"apt-get install bubblewrap"):
        await JailedShell(make_config(tmp_path)).start()


@pytest.mark.anyio
async def test_a_jail_that_cannot_start_raises_with_bwraps_reason(tmp_path: Path) -> None:
    config = make_config(tmp_path, extra_ro_binds=((tmp_path / "missing", "/opt/missing"),))
    shell = JailedShell(config)
    with pytest.raises(JailStartError, match="missing"):
        await shell.start()
    await shell.close()


@pytest.mark.anyio
async def test_extra_read_only_binds_and_env_are_visible(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "data.txt").write_text("data")
    config = make_config(tmp_path, extra_ro_binds=((shared, "/opt/shared"),), env={"MODE": "x"})
    async with JailedShell(config) as shell:
        result = await shell.run("cat /opt/shared/data.txt; echo $MODE; touch /opt/shared/new")
        assert result.stdout == b"datax\n"
        assert b"Read-only file system" in result.stderr
        assert not (shared / "new").exists()


@pytest.mark.anyio
async def test_a_nul_byte_in_a_command_is_refused(shell: JailedShell) -> None:
    with pytest.raises(ValueError, match="NUL"):
        await shell.run("echo a\0b")
