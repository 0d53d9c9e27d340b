"""Memory, process and CPU limits of a jail: cgroups where writable, rlimits otherwise.

Each jail start gets fresh cgroups named `piano-jail-<driver pid>-<random>`; a tiny `sh` wrapper
writes its own pid into their `cgroup.procs` and then execs the rest of the chain
(`[setpriv] prlimit ... -- bwrap ...`), so every process of the jail is inside them from its
first instruction. On close they are emptied (SIGKILL) and removed; leftovers of dead drivers are
swept when the next jail starts.

What is enforced where (`LimitReport` says which case applies to a running jail):

- cgroup v2 (a `cgroup2` mount whose own cgroup offers the `memory` and `pids` controllers, and
  whose own cgroup or parent has them enabled in `cgroup.subtree_control` and is writable):
  `memory.max` (+ `memory.swap.max` 0) and `pids.max`. Over the memory limit the kernel OOM-kills
  a process of the jail (usually the hog: exit 137); over pids, fork fails with EAGAIN.
- cgroup v1 (hierarchies `memory` and `pids` mounted writable, as on the project VM):
  `memory.limit_in_bytes` (+ `memory.memsw.limit_in_bytes` where swap accounting exists) and
  `pids.max`, same behaviour. Each controller falls back on its own if only one is writable.
  Measured on the VM: a 1 GiB allocation under 256 MiB is OOM-killed (137) and the shell lives
  on; a shell that itself outgrows the limit is killed (the driver restarts the jail); a fork
  bomb stays at `pids.max` and the host keeps forking; bash may exit when it cannot fork, which
  the driver reports as a restart.
- CPU (`cpu_limit`, in cores): cgroup v2 `cpu.max`, cgroup v1 `cpu.cfs_quota_us` over a 100 ms
  `cpu.cfs_period_us`: the whole jail, whatever it forks, gets at most that many cores.
  Measured on the VM (cgroup v1, 1 core): two busy loops share one core (~50% each).
- rlimit fallback (prlimit): CPU -> RLIMIT_CPU of `timeout` seconds per process (a process that
  computes longer than any command may last is killed, SIGXCPU). Either way nothing a command
  starts outlives it (`_procs.stop_leftovers`), so a command's CPU is bounded by its timeout.
  Memory -> RLIMIT_AS (allocations fail with ENOMEM/MemoryError
  instead of an OOM kill; programs reserving large virtual ranges, e.g. node, JVM, Go, Chromium,
  may refuse to start). Processes -> RLIMIT_NPROC, which the kernel ignores when the jail's host
  uid is root: then nothing bounds processes unless `JailConfig.host_uid` runs the jail as an
  unprivileged host user (RLIMIT_NPROC then counts every process of that user; measured: a
  fork bomb then stays under the limit).
- Always: RLIMIT_NOFILE, RLIMIT_CORE 0, RLIMIT_FSIZE (largest single file); /tmp and /dev/shm
  are tmpfs capped at `tmpfs_size_bytes`. The workspace itself has no size quota.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
import secrets
import signal
from dataclasses import dataclass
from pathlib import Path

import structlog

from piano.tools.jail._types import JailConfig, JailStartError

log = structlog.get_logger(__name__)

_PREFIX = "piano-jail-"
_CPU_PERIOD_US = 100_000
_JOIN_SCRIPT = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; '
    'exec "$@"'
)


@dataclass(frozen=True)
class LimitReport:
    """How each limit is enforced for one jail: "cgroup-v1", "cgroup-v2", "rlimit" or "none"."""

    memory: str
    pids: str
    note: str = ""
    cpu: str = "none"


@dataclass(frozen=True)
class _Base:
    """A cgroup directory under which jail cgroups can be created for some controllers."""

    version: int
    directory: Path
    controllers: frozenset[str]


def _mountinfo() -> list[tuple[str, str, str, str]]:
    """(mount root, mount point, fs type, super options) of every mount."""
    rows = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) >= 5 and len(rfields) >= 3:
            rows.append((fields[3], fields[4], rfields[0], rfields[2]))
    return rows


def _own_cgroups() -> dict[str, str]:
    """Controller name ("" for the v2 hierarchy) -> this process's cgroup path."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            own[name] = path
    return own


def _under_mount(mount_root: str, mount_point: str, path: str) -> Path | None:
    if mount_root == "/":
        return Path(mount_point + path)
    if path == mount_root or path.startswith(mount_root + "/"):
        return Path(mount_point + path[len(mount_root) :])
    return None


def _read_words(path: Path) -> set[str]:
    try:
        return set(path.read_text().split())
    except OSError:
        return set()


def _v2_base(mount: tuple[str, str, str, str], own: str) -> _Base | None:
    here = _under_mount(mount[0], mount[1], own)
    if here is None:
        return None
    wanted = {"memory", "pids", "cpu"} & _read_words(here / "cgroup.controllers")
    if not wanted:
        return None
    if wanted <= _read_words(here / "cgroup.subtree_control"):
        return _Base(2, here, frozenset(wanted))
    with contextlib.suppress(OSError):
        (here / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in sorted(wanted)))
        return _Base(2, here, frozenset(wanted))
    parent = here.parent
    if own != "/" and wanted <= _read_words(parent / "cgroup.subtree_control"):
        return _Base(2, parent, frozenset(wanted))
    return None


def _detect() -> list[_Base]:
    """Where jail cgroups can go, v2 preferred, one base per controller at most."""
    own = _own_cgroups()
    mounts = _mountinfo()
    bases: list[_Base] = []
    for mount in mounts:
        if mount[2] == "cgroup2" and "" in own:
            base = _v2_base(mount, own[""])
            if base is not None:
                bases.append(base)
                break
    covered = {c for b in bases for c in b.controllers}
    for controller in ("memory", "pids", "cpu"):
        if controller in covered or controller not in own:
            continue
        for root, point, fstype, opts in mounts:
            if fstype == "cgroup" and controller in opts.split(","):
                here = _under_mount(root, point, own[controller])
                if here is not None and os.access(here, os.W_OK):
                    bases.append(_Base(1, here, frozenset({controller})))
                    covered.add(controller)
                    break
    return bases


def _pids_in(directory: Path) -> list[int]:
    try:
        return [int(p) for p in (directory / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def _kill_cgroup(directory: Path) -> None:
    kill_file = directory / "cgroup.kill"
    if kill_file.exists():
        with contextlib.suppress(OSError):
            kill_file.write_text("1")
            return
    for pid in _pids_in(directory):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_leftovers(base: Path) -> None:
    """Remove jail cgroups left behind by drivers that are no longer running."""
    with contextlib.suppress(OSError):
        for child in base.glob(f"{_PREFIX}*"):
            owner = child.name[len(_PREFIX) :].split("-", 1)[0]
            if owner.isdigit() and not _pid_alive(int(owner)):
                _kill_cgroup(child)
                with contextlib.suppress(OSError):
                    child.rmdir()
                    log.info("jail.cgroup_swept", path=str(child))


def _write_limits(directory: Path, version: int, controller: str, config: JailConfig) -> None:
    if controller == "memory" and config.memory_limit_bytes is not None:
        limit = str(config.memory_limit_bytes)
        if version == 2:
            (directory / "memory.max").write_text(limit)
            with contextlib.suppress(OSError):
                (directory / "memory.swap.max").write_text("0")
        else:
            (directory / "memory.limit_in_bytes").write_text(limit)
            with contextlib.suppress(OSError):
                (directory / "memory.memsw.limit_in_bytes").write_text(limit)
    if controller == "cpu" and config.cpu_limit is not None:
        quota = max(1000, round(config.cpu_limit * _CPU_PERIOD_US))
        if version == 2:
            (directory / "cpu.max").write_text(f"{quota} {_CPU_PERIOD_US}")
        else:
            (directory / "cpu.cfs_period_us").write_text(str(_CPU_PERIOD_US))
            (directory / "cpu.cfs_quota_us").write_text(str(quota))
    if controller == "pids" and config.pids_limit is not None:
        (directory / "pids.max").write_text(str(config.pids_limit))


class JailLimits:
    """The limits of one jail instance: `create()`, put `prefix` before bwrap, `remove()`."""

    def __init__(self, config: JailConfig, dirs: list[Path], report: LimitReport) -> None:
        self._config = config
        self.cgroup_dirs: tuple[Path, ...] = tuple(dirs)
        self.report = report

    @classmethod
    def create(cls, config: JailConfig) -> JailLimits:
        wanted = set()
        if config.memory_limit_bytes is not None:
            wanted.add("memory")
        if config.pids_limit is not None:
            wanted.add("pids")
        if config.cpu_limit is not None:
            wanted.add("cpu")
        dirs: list[Path] = []
        enforced: dict[str, str] = {}
        if config.limit_backend != "prlimit" and wanted:
            name = f"{_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
            for base in _detect():
                controllers = (base.controllers & wanted) - enforced.keys()
                if not controllers:
                    continue
                _sweep_leftovers(base.directory)
                directory = base.directory / name
                try:
                    directory.mkdir()
                    for controller in controllers:
                        _write_limits(directory, base.version, controller, config)
                except OSError as exc:
                    log.warning("jail.cgroup_unusable", path=str(directory), error=str(exc))
                    with contextlib.suppress(OSError):
                        directory.rmdir()
                    continue
                dirs.append(directory)
                enforced.update(dict.fromkeys(controllers, f"cgroup-v{base.version}"))
        missing = wanted - enforced.keys()
        if config.limit_backend == "cgroup" and missing:
            for directory in dirs:
                with contextlib.suppress(OSError):
                    directory.rmdir()
            raise JailStartError(f"no writable cgroup for: {', '.join(sorted(missing))}")
        host_root = os.geteuid() == 0 and config.host_uid is None
        note = ""
        if "pids" in missing and host_root:
            note = "RLIMIT_NPROC is ignored for root: processes are not bounded"
        report = LimitReport(
            memory=enforced.get("memory", "rlimit" if "memory" in wanted else "none"),
            pids=enforced.get("pids", "none" if host_root or "pids" not in wanted else "rlimit"),
            note=note,
            cpu=enforced.get("cpu", "rlimit" if "cpu" in wanted else "none"),
        )
        return cls(config, dirs, report)

    @property
    def prefix(self) -> list[str]:
        """The argv to run before bwrap: join cgroups, drop to host_uid, set rlimits."""
        config = self._config
        argv: list[str] = []
        if self.cgroup_dirs:
            procs = [str(d / "cgroup.procs") for d in self.cgroup_dirs]
            argv += ["/bin/sh", "-c", _JOIN_SCRIPT, "piano-jail-join", str(len(procs)), *procs]
        if config.host_uid is not None:
            if os.geteuid() != 0:
                raise JailStartError("host_uid needs the driver to run as root")
            argv += [
                "setpriv",
                f"--reuid={config.host_uid}",
                f"--regid={config.host_gid}",
                "--clear-groups",
                "--",
            ]
        argv += [
            "prlimit",
            f"--nofile={config.open_files_limit}",
            "--core=0",
            f"--fsize={config.file_size_limit_bytes}",
        ]
        if self.report.memory == "rlimit":
            argv.append(f"--as={config.memory_limit_bytes}")
        if self.report.cpu == "rlimit":
            argv.append(f"--cpu={math.ceil(config.timeout)}")
        if config.pids_limit is not None and not self.report.pids.startswith("cgroup"):
            argv.append(f"--nproc={config.pids_limit}")
        argv.append("--")
        return argv

    def kill_all(self) -> None:
        """SIGKILL every process still in the jail's cgroups."""
        for directory in self.cgroup_dirs:
            _kill_cgroup(directory)

    async def remove(self, deadline: float = 2.0) -> None:
        """Empty the cgroups and remove them (waits for killed processes to leave)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        for directory in self.cgroup_dirs:
            while True:
                _kill_cgroup(directory)
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or loop.time() > end:
                        log.warning("jail.cgroup_not_removed", path=str(directory), error=str(exc))
                        break
                await asyncio.sleep(0.005)
        self.cgroup_dirs = ()
