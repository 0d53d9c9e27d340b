"""The marker protocol: output found byte-exact whatever the chunking, capped, streamed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from piano.tools.jail._protocol import StreamCollector, frame, new_marker

MARKER = new_marker()


def feed_in_chunks(collector: StreamCollector, data: bytes, cuts: list[int]) -> None:
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        collector.feed(data[start:cut])
        start = cut


@given(
    output=st.binary(max_size=300).filter(lambda b: MARKER not in b),
    status=st.integers(0, 255),
    cap=st.integers(0, 400),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
    trailing=st.binary(max_size=20),
)
def test_stdout_is_found_byte_exact_capped_and_streamed_whatever_the_chunking(
    output: bytes, status: int, cap: int, cuts: list[int], trailing: bytes
) -> None:
    streamed: list[bytes] = []
    collector = StreamCollector(MARKER, cap, streamed.append, status_line=True)
    feed_in_chunks(collector, output + MARKER + b"%d\n" % status + trailing, cuts)
    assert collector.done
    assert collector.status == status
    assert bytes(collector.kept) == output[:cap]
    assert collector.truncated == (len(output) > cap)
    assert b"".join(streamed) == output[:cap]
    assert collector.carry == trailing


@given(
    output=st.binary(max_size=300).filter(lambda b: MARKER not in b),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
)
def test_a_stream_that_ends_without_its_marker_keeps_all_it_carried(
    output: bytes, cuts: list[int]
) -> None:
    collector = StreamCollector(MARKER, 1000, lambda _: None, status_line=False)
    feed_in_chunks(collector, output, cuts)
    collector.feed_eof()
    assert not collector.done
    assert bytes(collector.kept) == output


def test_the_status_line_is_awaited_after_the_marker() -> None:
    collector = StreamCollector(MARKER, 100, lambda _: None, status_line=True)
    collector.feed(b"out" + MARKER + b"12")
    assert not collector.done
    collector.feed(b"7\n")
    assert collector.status == 127


def test_markers_are_fresh_and_quotes_survive_framing() -> None:
    assert new_marker() != new_marker()
    assert b"'it'\\''s'" in frame("it's", MARKER)
