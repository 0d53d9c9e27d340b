"""The jail's seccomp filter: no set-uid or set-gid bit can be put on a file.

Files the jail writes belong, on the host, to the jail's host uid (root when the daemon runs
as root). A set-id bit on one of them would lend that uid to whoever runs it, so every system
call that sets a file's mode is refused (EPERM) when the mode carries S_ISUID or S_ISGID:
chmod, fchmod, fchmodat, fchmodat2, and the creating calls open, openat, creat, mknod,
mknodat (a mode is only used with O_CREAT, but a set-id mode is refused either way). openat2
(its mode is inside a struct the filter cannot read) and io_uring_setup (whose operations the
filter cannot see) answer ENOSYS, which makes libc and runtimes fall back to openat. x32
system calls are refused, and so is every 32-bit (i386, `int 0x80`) system call, whose numbers
differ: a jail has no use for them. The filter is classic BPF for x86_64, handed to bwrap's
`--seccomp` on a memfd; on other architectures `filter_program` returns None and the driver
instead strips set-id bits from the workspace after every command (`_procs.strip_setid`).
"""

from __future__ import annotations

import errno
import os
import platform
import struct

__all__ = ["filter_fd", "filter_program"]

_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_BIT = 0x40000000
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_SETID = 0o6000

_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

# x86_64 system call number -> index of its mode argument
_MODE_ARG = {
    2: 2,  # open(path, flags, mode)
    85: 1,  # creat(path, mode)
    90: 1,  # chmod(path, mode)
    91: 1,  # fchmod(fd, mode)
    133: 1,  # mknod(path, mode, dev)
    257: 3,  # openat(dirfd, path, flags, mode)
    259: 2,  # mknodat(dirfd, path, mode, dev)
    268: 2,  # fchmodat(dirfd, path, mode)
    452: 2,  # fchmodat2(dirfd, path, mode, flags)
}
_NOSYS = (437, 425)  # openat2, io_uring_setup


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def filter_program() -> bytes | None:
    """The filter as bwrap reads it (struct sock_filter[]), or None off x86_64."""
    if platform.machine() != "x86_64":
        return None
    arg_indexes = sorted(set(_MODE_ARG.values()))
    dispatch = [(nr, f"arg{index}") for nr, index in _MODE_ARG.items()]
    dispatch += [(nr, "nosys") for nr in _NOSYS]
    # layout: 4 head instructions, one JEQ per dispatched call, RET allow, then for each mode
    # argument position a 3-instruction check, then RET EPERM and RET ENOSYS
    allow = 4 + len(dispatch)
    targets = {f"arg{index}": allow + 1 + 3 * i for i, index in enumerate(arg_indexes)}
    deny = allow + 1 + 3 * len(arg_indexes)
    targets["nosys"] = deny + 1
    program = [
        _insn(_LD_W_ABS, 4),  # arch
        _insn(_JEQ_K, _AUDIT_ARCH_X86_64, 0, targets["nosys"] - 2),  # i386 (int 0x80) too
        _insn(_LD_W_ABS, 0),  # system call number
        _insn(_JGE_K, _X32_BIT, deny - 4, 0),
    ]
    for here, (nr, target) in enumerate(dispatch, start=4):
        program.append(_insn(_JEQ_K, nr, targets[target] - here - 1, 0))
    program.append(_insn(_RET_K, _RET_ALLOW))
    for index in arg_indexes:
        here = targets[f"arg{index}"]
        program.append(_insn(_LD_W_ABS, 16 + 8 * index))  # the argument's low 32 bits
        program.append(_insn(_JSET_K, _SETID, deny - here - 2, 0))
        program.append(_insn(_RET_K, _RET_ALLOW))
    program.append(_insn(_RET_K, _RET_ERRNO | errno.EPERM))
    program.append(_insn(_RET_K, _RET_ERRNO | errno.ENOSYS))
    return b"".join(program)


def filter_fd() -> int | None:
    """A memfd holding the filter, positioned at its start, for bwrap's `--seccomp FD`
    (the caller passes it to the child and closes it); None off x86_64."""
    program = filter_program()
    if program is None:
        return None
    fd = os.memfd_create("piano-jail-seccomp", 0)  # no MFD_CLOEXEC: the child inherits it
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
