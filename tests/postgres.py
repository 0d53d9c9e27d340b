"""PostgreSQL for the tests: a database of their own on a real server, never a mock.

`admin_dsn()` is the server `scripts/postgres` chose (``PIANO_TEST_POSTGRES_DSN``: a running
server, or a temporary cluster it started), else the machine's server on 127.0.0.1:5432 as
``postgres``; with neither, the test fails saying how to get one. `fresh_database` creates
``piano_test_<random>`` there and drops it afterwards: tests touch no database they did not
create.

`TempCluster` is a cluster of the test's own (initdb into a temporary directory, on a free
loopback port, as the postgres user when run as root), for what must not happen to a shared
server: a restart mid-run, a tablespace on a tiny filesystem.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = [
    "TempCluster",
    "admin_dsn",
    "database_name",
    "fresh_database",
    "pg_bin",
    "pg_cluster",
    "pg_dsn",
    "small_filesystem",
]

_MACHINE_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
_HOW = (
    "no PostgreSQL server for the tests: run scripts/test (it starts one), or "
    "`source scripts/postgres` first, or export PIANO_TEST_POSTGRES_DSN=postgresql://..."
)


def admin_dsn() -> str:
    dsn = os.environ.get("PIANO_TEST_POSTGRES_DSN") or _MACHINE_DSN
    try:
        with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.fail(f"{_HOW} ({dsn}: {str(exc).strip().splitlines()[0]})")
    return dsn


@contextlib.contextmanager
def fresh_database(server: str | None = None, tablespace: str | None = None) -> Iterator[str]:
    """A new empty database on `server` (default `admin_dsn()`), in `tablespace` if given
    (every table of it then lives there); its DSN. Dropped after."""
    admin = server or admin_dsn()
    name = f"piano_test_{secrets.token_hex(6)}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if tablespace is not None:
        create += sql.SQL(" TABLESPACE {}").format(sql.Identifier(tablespace))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(create)
    try:
        yield make_conninfo(admin, dbname=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def pg_bin() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian's layout)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL is not installed: run scripts/test (or apt-get install postgresql)")
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TempCluster:
    """A PostgreSQL cluster of one test: `start`, `stop` (fast or immediate), `restart`."""

    def __init__(self) -> None:
        self.bin = pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="piano-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self.dir.chmod(0o700)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as, str(self.bin / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def run_as_owner(self, *command: str) -> None:
        """A command as the cluster's owner (e.g. to make a tablespace directory)."""
        subprocess.run([*self._as, *command], check=True)

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-o",
                  options, "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop("immediate")
        self.start()

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def small_filesystem(cluster: TempCluster, size: str) -> Iterator[Path]:
    """A tmpfs of `size` owned by the cluster's user (a tablespace's home), unmounted after the
    block: a disk that fills up for real. Root only; otherwise the test fails saying so."""
    where = cluster.dir / "small"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        pytest.fail(f"a full disk needs a tmpfs mount (run as root): {done.stderr.strip()}")
    try:
        shutil.chown(where, "postgres", "postgres")
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def database_name(dsn: str) -> str:
    return str(conninfo_to_dict(dsn)["dbname"])


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A fresh database on the tests' server, dropped afterwards."""
    with fresh_database() as dsn:
        yield dsn


@pytest.fixture
def pg_cluster() -> Iterator[TempCluster]:
    """A started cluster of the test's own, removed afterwards."""
    cluster = TempCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
