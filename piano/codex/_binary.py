"""Where the codex binary is: `PIANO_CODEX_BIN`, the repo's pinned install, then PATH."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_NATIVE = {
    "x86_64": ("codex-linux-x64", "x86_64-unknown-linux-musl"),
    "aarch64": ("codex-linux-arm64", "aarch64-unknown-linux-musl"),
}


def find_codex_binary() -> Path:
    """The codex executable to run.

    Prefers the native binary inside the pinned npm install over the `.bin/codex` Node wrapper:
    on Node < 22 the wrapper spawns the binary as a child, so a signal sent to the wrapper would
    not reach codex itself.
    """
    if env := os.environ.get("PIANO_CODEX_BIN"):
        return Path(env)
    modules = REPO / ".codex" / "node_modules"
    candidates = []
    if platform.system() == "Linux" and (native := _NATIVE.get(platform.machine())):
        package, triple = native
        candidates.append(modules / "@openai" / package / "vendor" / triple / "bin" / "codex")
    candidates.append(modules / ".bin" / "codex")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    if found := shutil.which("codex"):
        return Path(found)
    raise FileNotFoundError(
        "codex binary not found: run scripts/bootstrap (installs the pinned @openai/codex into "
        ".codex/) or set PIANO_CODEX_BIN"
    )
