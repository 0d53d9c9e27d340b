"""The security proof of the jail: each escape attempt is shown contained.

After every attempt the host is unaffected (its files, its processes, its loopback listeners)
and the jail either still works or has been restarted cleanly (and the caller told).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import stat
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from piano.tools.jail import JailConfig, JailedShell, JailStartError, RestartReason
from piano.tools.jail._procs import strip_setid
from tests.test_jail import make_config, wait_for_exit


@pytest.fixture
async def shell(tmp_path: Path) -> AsyncIterator[JailedShell]:
    async with JailedShell(make_config(tmp_path)) as jailed:
        yield jailed


async def assert_jail_works(shell: JailedShell) -> None:
    """The jail answers a command that needs a fork."""
    result = await shell.run("/bin/echo ok")
    assert result.exit_code == 0
    assert result.stdout == b"ok\n"


async def assert_host_can_fork() -> None:
    proc = await asyncio.create_subprocess_exec("true")
    assert await proc.wait() == 0


def cgroup_pids(shell: JailedShell) -> set[int]:
    return {int(p) for d in shell.cgroup_dirs for p in (d / "cgroup.procs").read_text().split()}


@pytest.mark.anyio
async def test_host_files_outside_the_workspace_are_invisible(
    shell: JailedShell, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    (shell.config.workspace / "link").symlink_to(secret)
    for path in (str(secret), "/root", "/etc/shadow", "/etc/passwd", "/work", "/home", "/sys"):
        result = await shell.run(f"ls -d {path} || cat {path}")
        assert result.exit_code != 0, path
        assert b"No such file or directory" in result.stderr, path
    followed = await shell.run("cat link")
    assert followed.exit_code == 1
    assert b"host secret" not in followed.stdout
    root = await shell.run("ls -A /")
    assert set(root.stdout.split()) == {
        b".piano-shell",
        b"bin",
        b"dev",
        b"etc",
        b"lib",
        b"lib64",
        b"proc",
        b"sbin",
        b"tmp",
        b"usr",
        b"workspace",
    }
    etc = await shell.run("ls -A /etc /etc/ssl")
    assert set(etc.stdout.split()) <= {
        b"/etc:",
        b"/etc/ssl:",
        b"alternatives",
        b"ld.so.cache",
        b"ssl",
        b"certs",
    }


@pytest.mark.anyio
async def test_writes_outside_the_workspace_fail_or_stay_inside_the_jail(
    shell: JailedShell,
) -> None:
    for target in ("/usr/bin/evil", "/evil", "/etc/evil", "/dev/evil", "/proc/evil"):
        result = await shell.run(f"echo x > {target}")
        assert result.exit_code != 0, target
        assert not await anyio.Path(target).exists(), target
    name = f"piano-escape-{secrets.token_hex(8)}"
    inside = await shell.run(f"echo x > /tmp/{name} && echo x > /dev/shm/{name} && ls /tmp")
    assert inside.exit_code == 0
    assert name.encode() in inside.stdout
    assert not (Path("/tmp") / name).exists()
    assert not (Path("/dev/shm") / name).exists()
    control = await shell.run("echo x > kept.txt")
    assert control.exit_code == 0
    assert (shell.config.workspace / "kept.txt").read_text() == "x\n"


@pytest.mark.anyio
async def test_the_jail_runs_unprivileged_without_capabilities(shell: JailedShell) -> None:
    result = await shell.run(
        "id -u; grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs)' /proc/self/status"
    )
    assert result.stdout.split(b"\n")[0] == b"1000"
    status = dict(line.split(b":\t") for line in result.stdout.splitlines()[1:])
    assert status == {
        b"CapPrm": b"0000000000000000",
        b"CapEff": b"0000000000000000",
        b"CapBnd": b"0000000000000000",
        b"NoNewPrivs": b"1",
    }
    nested = await shell.run("unshare --user --map-root-user true")
    assert nested.exit_code != 0


@pytest.mark.anyio
async def test_no_set_id_bit_can_be_put_on_a_file_in_any_way(shell: JailedShell) -> None:
    attempts = (
        "cp /usr/bin/bash a; chmod 4755 a",
        "chmod u+s a",
        "chmod g+s a",
        "python3 -c \"import os; os.chmod('a', 0o6755)\"",
        "python3 -c \"import os; os.close(os.open('b', os.O_CREAT | os.O_WRONLY, 0o4755))\"",
        "install -m 2755 /usr/bin/true c",
        "mkdir d; chmod 2775 d",
        "cp -a /usr/bin/passwd e",
    )
    for attempt in attempts:
        result = await shell.run(attempt)
        assert b"Operation not permitted" in result.stderr, attempt
    allowed = await shell.run("chmod 0755 a && chmod u=rwx,go= a && stat -c %a a")
    assert allowed.stdout == b"700\n", "ordinary modes are untouched"
    for path in shell.config.workspace.rglob("*"):
        mode = path.lstat().st_mode
        assert not mode & (stat.S_ISUID | stat.S_ISGID), path


INT80_CHMOD = r"""
import ctypes, os, struct
libc = ctypes.CDLL(None)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long]
page = libc.mmap(None, 4096, 7, 0x22 | 0x40, -1, 0)  # rwx, private, anonymous, below 4 GiB
path = os.path.abspath("target").encode() + b"\0"
ctypes.memmove(page + 256, path, len(path))
code = (b"\x53\xb8" + struct.pack("<I", 15)  # push rbx; mov eax, 15 (i386 chmod)
        + b"\xbb" + struct.pack("<I", page + 256) + b"\xb9" + struct.pack("<I", 0o4755)
        + b"\xcd\x80\x5b\xc3")  # int 0x80; pop rbx; ret
ctypes.memmove(page, code, len(code))
print(ctypes.CFUNCTYPE(ctypes.c_int)(page)())
"""


@pytest.mark.anyio
async def test_a_32_bit_system_call_cannot_slip_a_set_id_mode_past_the_filter(
    shell: JailedShell,
) -> None:
    (shell.config.workspace / "int80.py").write_text(INT80_CHMOD)
    result = await shell.run("touch target; python3 int80.py")
    assert result.stdout == b"-38\n", result.stderr  # ENOSYS: no i386 call gets through
    assert not (shell.config.workspace / "target").stat().st_mode & stat.S_ISUID


def test_set_id_bits_are_swept_where_seccomp_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name, mode in (("suid", 0o4755), ("sub/sgid", 0o2711), ("plain", 0o755)):
        (tmp_path / name).touch()
        os.chmod(tmp_path / name, mode)
    os.chmod(tmp_path / "sub", 0o2775)
    (tmp_path / "link").symlink_to("/usr/bin/passwd")  # set-uid root there: never followed
    assert sorted(strip_setid(tmp_path)) == ["sub", "sub/sgid", "suid"]
    assert {p.name: stat.S_IMODE(p.lstat().st_mode) for p in tmp_path.rglob("*")} == {
        "sub": 0o775,
        "sgid": 0o711,
        "suid": 0o755,
        "plain": 0o755,
        "link": 0o777,
    }
    assert os.stat("/usr/bin/passwd").st_mode & stat.S_ISUID


@pytest.mark.anyio
async def test_no_variable_of_the_drivers_environment_reaches_any_jail_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = secrets.token_hex(16)
    monkeypatch.setenv("PIANO_TEST_SECRET", secret)
    async with JailedShell(make_config(tmp_path, env={"EXTRA": "named"})) as shell:
        result = await shell.run("cat /proc/[0-9]*/environ | tr '\\0' '\\n'; env")
    assert b"PATH=/usr/local/bin:/usr/bin:/bin" in result.stdout
    assert b"EXTRA=named" in result.stdout
    assert secret.encode() not in result.stdout
    names = {line.split(b"=")[0] for line in result.stdout.splitlines() if b"=" in line}
    assert names <= {b"PATH", b"HOME", b"LANG", b"TERM", b"EXTRA", b"PWD", b"SHLVL", b"_"}


RIG = r"""
__rig() {
  case $BASH_COMMAND in
    eval*) return 1 ;;
    *__PIANO_*) m=${BASH_COMMAND##*"' "}; m=${m%% *}; builtin printf 'invented\n%s0\n' "$m"
                builtin printf '%s' "$m" >&2; return 1 ;;
  esac
}
shopt -s extdebug expand_aliases; trap __rig DEBUG; export -f __rig
eval() { builtin echo invented; }; builtin() { command echo invented; }; alias echo='echo invented'
"""


@pytest.mark.anyio
async def test_a_command_cannot_rig_the_shell_to_forge_a_later_result(shell: JailedShell) -> None:
    (shell.config.workspace / "rig.sh").write_text(RIG)
    await shell.run(". ./rig.sh; export -f eval builtin")
    later = await shell.run("echo real; touch ran")
    assert later.stdout == b"real\n"
    assert later.exit_code == 0
    assert (shell.config.workspace / "ran").exists(), "the later command did run"


@pytest.mark.anyio
async def test_the_driver_shell_cannot_be_read_traced_or_reopened(shell: JailedShell) -> None:
    probe = (
        "import ctypes, os, sys\n"
        "stat = open(f'/proc/{os.getppid()}/stat').read()\n"  # python -> bash -> driver shell
        "ppid = int(stat.rsplit(')', 1)[1].split()[1])\n"
        "print(open(f'/proc/{ppid}/comm').read().strip())\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print(libc.ptrace(16, ppid, 0, 0), ctypes.get_errno())\n"  # PTRACE_ATTACH
        "for name in ('mem', 'environ', 'fd/0'):\n"
        "    try:\n"
        "        open(f'/proc/{ppid}/{name}', 'rb').read(1)\n"
        "        print(name, 'readable')\n"
        "    except PermissionError:\n"
        "        print(name, 'denied')\n"
    )
    (shell.config.workspace / "probe.py").write_text(probe)
    result = await shell.run("python3 probe.py")
    expected = b".piano-shell\n-1 1\nmem denied\nenviron denied\nfd/0 denied\n"  # 1: EPERM
    assert result.stdout == expected, result.stderr


@pytest.mark.anyio
async def test_external_network_is_unreachable_at_once(shell: JailedShell) -> None:
    result = await shell.run("exec 3<>/dev/tcp/1.1.1.1/80", timeout=2)
    assert not result.timed_out
    assert result.exit_code != 0
    assert b"Network is unreachable" in result.stderr
    interfaces = await shell.run("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
    assert interfaces.stdout == b"lo\n"


@pytest.mark.anyio
async def test_the_hosts_loopback_listeners_cannot_be_reached(shell: JailedShell) -> None:
    accepted: list[str] = []
    first = anyio.Event()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append("connection")
        first.set()
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    abstract = f"\0piano-escape-{secrets.token_hex(8)}"
    unix_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix_listener.bind(abstract)
    unix_listener.listen()
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        control.connect(abstract)
        control.close()
        tcp = await shell.run(f"exec 3<>/dev/tcp/127.0.0.1/{port}", timeout=2)
        assert tcp.exit_code != 0
        assert b"Connection refused" in tcp.stderr
        unix = await shell.run(
            "python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX);"
            f" s.connect(sys.argv[1])' '@{abstract[1:]}'"
            "; python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX);"
            f" s.connect(chr(0)+sys.argv[1])' {abstract[1:]}",
            timeout=2,
        )
        assert unix.stderr.count(b"ConnectionRefusedError") == 1
        assert b"FileNotFoundError" in unix.stderr
        with anyio.fail_after(2):
            await first.wait()
        assert accepted == ["connection"], "only the host's own control connection arrived"
    finally:
        server.close()
        await server.wait_closed()
        unix_listener.close()


@pytest.mark.anyio
async def test_a_fork_bomb_is_bounded_by_the_process_limit(shell: JailedShell) -> None:
    assert shell.limits is not None
    assert shell.limits.pids.startswith("cgroup"), f"pids not bounded here: {shell.limits}"
    result = await shell.run(":(){ :|:& };:", timeout=2)
    assert result.timed_out or result.exit_code is not None
    assert len(cgroup_pids(shell)) == 3, "the bomb's processes ended with its command"
    left = await shell.run("echo /proc/[0-9]*", timeout=2)
    assert len(left.stdout.split()) == 3  # bwrap's init, the driver shell, this command
    bounded = await shell.run("/bin/ls /proc | grep -c '^[0-9]'", timeout=2)
    await assert_host_can_fork()
    for directory in shell.cgroup_dirs:
        if (directory / "pids.max").exists():
            assert int((directory / "pids.current").read_text()) <= 64
    assert bounded.timed_out or bounded.exit_code is not None
    dirs = shell.cgroup_dirs
    await shell.restart()
    assert all(not d.exists() for d in dirs), "every bomb process was killed"
    await assert_jail_works(shell)


@pytest.mark.anyio
async def test_a_fork_bomb_is_bounded_by_rlimit_nproc_under_an_unprivileged_host_uid(
    tmp_path: Path,
) -> None:
    reachable = Path(tempfile.mkdtemp(prefix="piano-jail-"))  # tmp_path is 0700: nobody can't enter
    os.chmod(reachable, 0o755)
    workspace = reachable / "workspace"
    workspace.mkdir()
    config = make_config(reachable, limit_backend="prlimit", host_uid=65534, host_gid=65534)
    if os.geteuid() != 0:
        with pytest.raises(JailStartError, match="root"):
            await JailedShell(config).start()
        return
    os.chown(workspace, 65534, 65534)
    async with JailedShell(config) as shell:
        assert shell.limits is not None
        assert shell.limits.pids == "rlimit"
        await shell.run(":(){ :|:& };:", timeout=2)
        await assert_host_can_fork()
        count = await shell.run("echo /proc/[0-9]*", timeout=2)
        assert len(count.stdout.split()) <= 64
        await shell.run("kill -9 -1")
        await assert_jail_works(shell)
        await shell.run("touch made-here")
    try:
        assert (workspace / "made-here").stat().st_uid == 65534
    finally:
        shutil.rmtree(reachable)


@pytest.mark.anyio
async def test_a_memory_bomb_is_killed_and_the_shell_survives(shell: JailedShell) -> None:
    await shell.run("export STATE=kept")
    bomb = await shell.run("python3 -c 'bytearray(1024 * 1024 * 1024)'")
    assert bomb.exit_code in (1, 137)  # OOM-killed under a cgroup, MemoryError under RLIMIT_AS
    assert not bomb.jail_restarted
    assert (await shell.run('echo "$STATE"')).stdout == b"kept\n"
    tmpfs = await shell.run("head -c 64M /dev/zero > /tmp/f; head -c 64M /dev/zero > /dev/shm/f")
    assert tmpfs.stderr.count(b"No space left on device") == 2
    shell_itself = await shell.run("x=$(head -c 600M /dev/zero | tr '\\0' a); echo ${#x}")
    assert shell_itself.exit_code != 0
    assert shell_itself.stdout == b""
    await assert_jail_works(shell)


@pytest.mark.anyio
async def test_an_output_flood_is_capped_and_a_never_ending_one_is_killed(
    shell: JailedShell,
) -> None:
    cap = shell.config.output_cap_bytes
    finite = await shell.run("head -c 50M /dev/zero; head -c 50M /dev/zero >&2")
    assert finite.exit_code == 0
    assert len(finite.stdout) == len(finite.stderr) == cap
    assert finite.stdout_truncated
    assert finite.stderr_truncated
    endless = await shell.run("yes", timeout=1)
    assert endless.timed_out
    assert endless.restart_reason is RestartReason.TIMEOUT
    assert len(endless.stdout) == cap
    assert endless.stdout_truncated
    await assert_jail_works(shell)


@pytest.mark.anyio
async def test_a_command_that_never_ends_is_killed_after_its_timeout_and_the_jail_restarts(
    shell: JailedShell,
) -> None:
    await shell.run("sleep 600 & sleep 600 &")
    before = cgroup_pids(shell)
    assert before
    for command in ("while :; do :; done", "kill -STOP $$", "exec >/dev/null; sleep 600"):
        result = await shell.run(command, timeout=1)
        assert result.timed_out, command
        assert result.exit_code is None
        assert result.restart_reason is RestartReason.TIMEOUT
        await assert_jail_works(shell)
    assert all(wait_for_exit(pid) for pid in before), "the old jail and its jobs are gone"


@pytest.mark.anyio
async def test_syntax_errors_do_not_kill_the_persistent_shell(shell: JailedShell) -> None:
    await shell.run("export STATE=kept")
    pid = shell.pid
    for broken in ("if then fi", 'echo "unterminated', ")", "f() {", "done; esac"):
        result = await shell.run(broken)
        assert result.exit_code == 2, broken
        assert b"syntax error" in result.stderr or b"unexpected" in result.stderr, broken
        assert not result.jail_restarted
    assert shell.pid == pid
    assert (await shell.run('echo "$STATE"')).stdout == b"kept\n"


@pytest.mark.anyio
async def test_exit_in_a_command_ends_only_that_command(shell: JailedShell) -> None:
    pid = shell.pid
    result = await shell.run("exit 3")
    assert result.exit_code == 3
    assert not result.jail_restarted
    assert shell.pid == pid
    await assert_jail_works(shell)


@pytest.mark.anyio
async def test_signals_from_the_jail_cannot_reach_its_parent_or_the_host(
    shell: JailedShell,
) -> None:
    host_sleeper = await asyncio.create_subprocess_exec("sleep", "60")
    try:
        await shell.run("export STATE=kept")
        pid = shell.pid
        init = await shell.run("kill -9 1; echo $PPID")
        assert init.stdout == b"2\n", "a command's parent is the driver shell, after pid 1"
        assert (await shell.run('echo "$STATE"')).stdout == b"kept\n", "pid 1 shrugged it off"
        unseen = await shell.run(f"kill -0 {host_sleeper.pid}; kill -9 {os.getpid()}")
        assert unseen.exit_code != 0
        assert unseen.stderr.count(b"No such process") == 2
        suicide = await shell.run("kill -9 $$")
        assert suicide.exit_code == 137
        assert not suicide.jail_restarted, "a command that kills itself ends only itself"
        assert shell.pid == pid
        assert (await shell.run('echo "$STATE"')).stdout == b"kept\n"
        everyone = await shell.run("sleep 600 & kill -9 -1")
        assert everyone.restart_reason is RestartReason.SHELL_EXITED, "the driver shell died"
        assert everyone.exit_code == 137
        await assert_jail_works(shell)
        assert host_sleeper.returncode is None
        assert not wait_for_exit(host_sleeper.pid, 0.1)
    finally:
        host_sleeper.kill()
        await host_sleeper.wait()


@pytest.mark.anyio
async def test_a_dead_driver_leaves_nothing_running(tmp_path: Path) -> None:
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from piano.tools.jail import JailConfig, JailedShell\n"
        "async def main():\n"
        "    shell = JailedShell(JailConfig(workspace=Path(sys.argv[1])))\n"
        "    await shell.start()\n"
        "    print('DIRS', *shell.cgroup_dirs, flush=True)\n"
        "    await shell.run('sleep 600 & sleep 600')\n"
        "asyncio.run(main())\n"
    )
    driver = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        str(tmp_path / "workspace"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=Path(__file__).parent.parent,
    )
    assert driver.stdout is not None
    try:
        with anyio.fail_after(10):
            line = b""
            while not line.startswith(b"DIRS "):
                line = await driver.stdout.readline()
        dirs = [Path(p) for p in line.decode().split()[1:]]
        assert dirs
        jail_pids: set[int] = set()
        with anyio.fail_after(10):
            while len(jail_pids) < 5:  # bwrap, its pid 1, bash, the two sleeps of the command
                await anyio.sleep(0.01)
                jail_pids = {int(p) for d in dirs for p in (d / "cgroup.procs").read_text().split()}
    finally:
        driver.kill()
        await driver.wait()
    exited = [await anyio.to_thread.run_sync(wait_for_exit, pid) for pid in jail_pids]
    assert all(exited), "--die-with-parent took the whole jail down with the driver"
    async with JailedShell(make_config(tmp_path)):
        assert all(not d.exists() for d in dirs), "the dead driver's cgroups were swept"


def test_config_rejects_a_half_specified_host_user(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="host_uid"):
        JailConfig(workspace=tmp_path, host_uid=65534)
