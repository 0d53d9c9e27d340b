"""Crash safety and concurrency: a killed writer loses nothing it acknowledged and never leaves
a torn database or a half batch; readers run beside the writer without blocking it."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import apsw
import pytest

from piano.store import StoreReader, Writer, open_connection
from schemas.events import Notice
from tests.store import crash_writer

ROOT = Path(__file__).resolve().parents[2]
KILL_AFTER = 8


@pytest.fixture
def backend_kind() -> str:
    """SQLite's own guarantees (its file, WAL snapshots, locks): not parametrised."""
    return "sqlite"


def test_a_writer_killed_mid_write_leaves_an_intact_database_with_every_acknowledged_batch(
    path: Path,
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.store.crash_writer", str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acknowledged = -1
    try:
        assert child.stdout is not None
        while acknowledged < KILL_AFTER:
            line = child.stdout.readline()
            if not line:
                raise AssertionError(f"the writer died on its own: {child.stderr.read()}")  # type: ignore[union-attr]
            if line.startswith("committed "):
                acknowledged = int(line.split()[1])
        child.send_signal(signal.SIGKILL)  # it is writing batch KILL_AFTER + 1 by now
    finally:
        child.kill()
        child.wait(timeout=10)
        child.stdout.close()  # type: ignore[union-attr]
        child.stderr.close()  # type: ignore[union-attr]
    assert child.returncode == -signal.SIGKILL

    connection = open_connection(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        connection.close()
    with Writer(path):  # the writer reopens it as it is
        pass
    with StoreReader(path) as reader:
        for t in range(crash_writer.THREADS):
            items = {item.id for item in reader.thread_items(f"t{t}")}
            for k in range(acknowledged + 1):
                assert {f"b{k}-t{t}-{n}" for n in range(crash_writer.EVENTS_PER_THREAD)} <= items
            journal = reader.last_seq(f"t{t}")
            assert (journal - 1) % crash_writer.EVENTS_PER_THREAD == 0  # whole batches only
            assert journal - 1 >= (acknowledged + 1) * crash_writer.EVENTS_PER_THREAD
            assert len(items) == journal - 1


def test_a_reader_keeps_its_snapshot_while_the_writer_commits_without_waiting(
    writer: Writer, path: Path
) -> None:
    snapshot = open_connection(path, query_only=True)
    try:
        snapshot.execute("BEGIN")
        (before,) = snapshot.execute("SELECT count(*) FROM events").fetchone()  # type: ignore[misc]

        for n in range(5):
            writer.write_batch([Notice(thread_id="t1", level="info", message=str(n))] * 10)

        (during,) = snapshot.execute("SELECT count(*) FROM events").fetchone()  # type: ignore[misc]
        snapshot.execute("COMMIT")
        (after,) = snapshot.execute("SELECT count(*) FROM events").fetchone()  # type: ignore[misc]
    finally:
        snapshot.close()
    assert (before, during, after) == (0, 0, 50)


def test_readers_on_other_threads_only_ever_see_whole_batches_while_the_writer_writes(
    writer: Writer, path: Path
) -> None:
    batches, size = 200, 25
    done = threading.Event()
    seen: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def read(observations: list[int]) -> None:
        try:
            with StoreReader(path) as reader:
                while True:
                    finished = done.is_set()
                    observations.append(reader.last_seq("t1"))
                    if finished:
                        return
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read, args=(seen[i],)) for i in range(2)]
    for thread in readers:
        thread.start()
    try:
        for n in range(batches):
            writer.write_batch([Notice(thread_id="t1", level="info", message=str(n))] * size)
    finally:
        done.set()
        for thread in readers:
            thread.join(timeout=30)

    assert errors == []
    for observations in seen:
        assert observations[-1] == batches * size
        assert all(seq % size == 0 for seq in observations)
        assert observations == sorted(observations)


def test_a_busy_writer_does_not_stop_a_reader_from_opening(writer: Writer, path: Path) -> None:
    blocker = apsw.Connection(str(path))
    blocker.execute("BEGIN IMMEDIATE")  # a write transaction in progress, as during a batch
    try:
        with StoreReader(path) as reader:
            assert reader.thread("t1") is not None
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
