"""The event stream's protocol over real WebSockets on 127.0.0.1 (no Codex: tests publish)."""

from __future__ import annotations

import aiohttp
import pytest

from piano.web import rotate_token, stream_stats
from schemas import events as ev
from schemas import stream as st
from schemas.alerts import Alert
from tests.web.conftest import TOKEN, Client, Web

pytestmark = pytest.mark.anyio


def notice(thread_id: str, n: int, size: int = 0) -> ev.Notice:
    return ev.Notice(thread_id=thread_id, level="info", message=f"{n}:" + "x" * size)


def numbers(client: Client, thread_id: str | None = None) -> list[int]:
    return [
        int(e.data.message.split(":")[0])
        for e in client.received
        if isinstance(e.data, ev.Notice) and (thread_id is None or e.thread_id == thread_id)
    ]


async def still_serving(web: Web) -> None:
    """A fresh client still gets events: the server carried on."""
    other = await web.connect(subscribe="*")
    web.publish(notice("alive", 1))
    envelope = await other.until(lambda e: e.type == "notice")
    assert envelope.thread_id == "alive"
    await other.ws.close()


async def test_events_arrive_in_versioned_envelopes_with_increasing_seq(web: Web) -> None:
    client = await web.connect(subscribe="*")
    for n in range(5):
        web.publish(notice("t1", n))
    envelopes = [await client.until(lambda e: e.seq > 0) for _ in range(5)]
    assert [e.seq for e in envelopes] == [1, 2, 3, 4, 5]
    assert {(e.version, e.type, e.thread_id) for e in envelopes} == {(1, "notice", "t1")}
    assert numbers(client) == [0, 1, 2, 3, 4]


async def test_a_thread_subscription_receives_only_that_threads_events(web: Web) -> None:
    only_t2 = await web.connect(subscribe="t2")
    for n in range(6):
        web.publish(notice(f"t{n % 3 + 1}", n))
    web.publish(notice("t2", 6))
    await only_t2.until(lambda e: isinstance(e.data, ev.Notice) and e.data.message.startswith("6:"))
    assert numbers(only_t2) == [1, 4, 6]
    seqs = [e.seq for e in only_t2.received if e.seq]
    assert seqs == sorted(seqs)
    assert seqs[0] == 2


async def test_a_bad_token_gets_an_unauthorized_error_and_a_close_with_the_reason(
    web: Web,
) -> None:
    in_header = Client(
        await web.session.ws_connect(
            f"{await web.base()}/stream", headers={"Authorization": "Bearer wrong"}
        )
    )
    in_frame = await web.connect(None)
    await in_frame.send({"type": "auth", "token": "wrong"})
    for client in (in_header, in_frame):
        error = await client.of_type("error")
        assert (error.code, error.message, error.fatal) == ("unauthorized", "invalid token", True)
        closed = await client.closed()
        assert (closed.code, closed.reason) == (4001, "unauthorized: invalid token")
    await still_serving(web)


async def test_a_first_frame_that_is_not_auth_is_refused(web: Web) -> None:
    client = await web.connect(None)
    await client.send({"type": "subscribe"})
    error = await client.of_type("error")
    assert error.code == "unauthorized"
    assert "first frame must be auth" in error.message
    assert (await client.closed()).code == 4001


async def test_the_token_may_be_sent_in_the_first_frame(web: Web) -> None:
    client = await web.connect(TOKEN, header=False, subscribe="*")
    web.publish(notice("t1", 7))
    assert (await client.of_type("notice")).message == "7:"


@pytest.mark.parametrize("web_options", [{"dashboard_interval": 0.05}])
async def test_a_rotated_token_works_until_its_grace_ends_then_is_refused_as_expired(
    web: Web,
) -> None:
    old_client = await web.connect(TOKEN, subscribe="*")
    first = await rotate_token(web.surface, 3600.0)
    assert first != TOKEN
    both = [await web.connect(TOKEN), await web.connect(first)]
    assert all(not c.errors() for c in both)
    second = await rotate_token(web.surface, 0.0)
    for token in (TOKEN, first):
        ws = await web.session.ws_connect(
            f"{await web.base()}/stream", headers={"Authorization": f"Bearer {token}"}
        )
        refused = Client(ws)
        error = await refused.of_type("error")
        assert error.code == "token_expired"
        assert (await refused.closed()).code == 4002
    dropped = await old_client.until(lambda e: e.type == "error", timeout=10)
    assert isinstance(dropped.data, st.StreamError)
    assert dropped.data.code == "token_expired"
    assert (await old_client.closed()).code == 4002
    await web.connect(second)


async def test_a_foreign_browser_origin_is_refused_before_the_upgrade(web: Web) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await web.connect(origin="http://evil.example")
    assert refused.value.status == 403
    host_port = (await web.base()).removeprefix("http://")
    own = await web.connect(origin=f"http://{host_port}")
    assert not own.errors()
    await still_serving(web)


@pytest.mark.parametrize(
    ("frame", "code", "says"),
    [
        ("{not json", "bad_json", "not valid JSON"),
        ('["a list"]', "bad_frame", 'string "type"'),
        ('{"type": "teleport"}', "unknown_type", "unknown frame type 'teleport'"),
        ('{"type": "resume", "stream": "s"}', "bad_frame", "last_seq"),
        ('{"type": "subscribe", "thread_id": 5}', "bad_frame", "thread_id"),
        ('{"type": "subscribe", "color": "red"}', "bad_frame", "color"),
    ],
)
async def test_a_bad_frame_gets_a_clear_error_and_the_connection_carries_on(
    web: Web, frame: str, code: str, says: str
) -> None:
    client = await web.connect(subscribe="*")
    await client.send(frame)
    error = await client.of_type("error")
    assert error.code == code
    assert says in error.message
    assert not error.fatal
    web.publish(notice("t1", 1))
    assert (await client.of_type("notice")).message == "1:"


@pytest.mark.parametrize("web_options", [{"max_frame": 1024}])
async def test_an_oversize_frame_is_refused_and_one_past_the_hard_limit_closes_only_its_client(
    web: Web,
) -> None:
    client = await web.connect(subscribe="*")
    await client.send({"type": "message", "text": "x" * 2000, "ref": "big"})
    error = await client.of_type("error")
    assert error.code == "frame_too_large"
    assert "limit is 1024" in error.message
    web.publish(notice("t1", 1))
    assert (await client.of_type("notice")).message == "1:"
    await client.send("y" * (1024 * 17))
    closed = await client.closed()
    assert closed.code == 1009
    await still_serving(web)


async def test_a_reconnecting_client_gets_what_it_missed_from_the_replay_buffer(web: Web) -> None:
    first = await web.connect(subscribe="*")
    welcome = first.received[0].data
    assert isinstance(welcome, st.Welcome)
    for n in range(3):
        web.publish(notice("t1", n))
    last = await first.until(lambda e: e.seq == 3)
    await first.ws.close()
    for n in range(3, 8):
        web.publish(notice("t1" if n % 2 else "t2", n))
    again = await web.connect()
    await again.send({"type": "subscribe", "thread_id": "*", "snapshot": False})
    await again.send({"type": "resume", "stream": welcome.stream, "last_seq": last.seq})
    resumed = await again.of_type("resumed")
    assert (resumed.after, resumed.seq, resumed.replayed) == (3, 8, 5)
    assert [e.seq for e in again.received if e.seq] == [4, 5, 6, 7, 8]
    assert numbers(again) == [3, 4, 5, 6, 7]
    web.publish(notice("t1", 8))
    assert (await again.until(lambda e: e.seq > 0)).seq == 9


@pytest.mark.parametrize("web_options", [{"replay_buffer": 5}])
async def test_a_gap_that_left_the_buffer_or_another_stream_gets_a_snapshot(web: Web) -> None:
    client = await web.connect(subscribe="*")
    welcome = client.received[0].data
    assert isinstance(welcome, st.Welcome)
    stream = welcome.stream
    web.publish(
        ev.TurnStarted(
            thread_id="t1",
            interaction_id="i1",
            turn_id="u1",
            agent="default",
            interaction=ev.Interaction(id="i1", text="hello"),
        )
    )
    await client.until(lambda e: e.seq == 1)
    await client.ws.close()
    for n in range(10):
        web.publish(notice("t1", n))
    for resume_from, reason in ((1, "gap"), (0, "gap"), (99, "gap")):
        again = await web.connect()
        await again.send({"type": "subscribe", "snapshot": False})
        await again.send({"type": "resume", "stream": stream, "last_seq": resume_from})
        snapshot = await again.of_type("snapshot")
        assert (snapshot.reason, snapshot.seq) == (reason, 11)
        [thread] = snapshot.threads
        assert thread.thread_id == "t1"
        assert thread.running
        assert [i.text for i in thread.interactions] == ["hello"]
        await again.ws.close()
    other = await web.connect()
    await other.send({"type": "subscribe", "snapshot": False})
    await other.send({"type": "resume", "stream": "another-run", "last_seq": 3})
    assert (await other.of_type("snapshot")).reason == "new_stream"


@pytest.mark.parametrize("web_options", [{"client_queue": 16}])
async def test_a_slow_client_is_dropped_with_a_reason_while_a_fast_one_gets_every_event_in_order(
    web: Web,
) -> None:
    fast = await web.connect(subscribe="*")
    slow = await web.connect(subscribe="*")
    sent = 0
    for _ in range(200):
        for _ in range(10):
            web.publish(notice("t1", sent, size=64 * 1024))
            sent += 1
        target = sent
        await fast.until(lambda e: e.seq == target, timeout=20)  # noqa: B023 (awaited here)
        stats = await stream_stats(web.surface)
        if stats.dropped:
            break
    assert stats.dropped == 1
    assert stats.clients == 1
    closed = await slow.closed(timeout=30)
    assert closed.code == 4008
    [error] = slow.errors()
    assert error.code == "too_slow"
    assert "more than 16 frames" in error.message
    got = [e.seq for e in slow.received if e.seq]
    assert got == list(range(1, len(got) + 1))
    assert len(got) < sent
    web.publish(notice("t1", sent))
    await fast.until(lambda e: e.seq == sent + 1)
    assert numbers(fast) == list(range(sent + 1))


async def test_an_alert_reaches_every_stream_client_whatever_it_watches(web: Web) -> None:
    watching_t1 = await web.connect(subscribe="t1")
    watching_nothing = await web.connect()
    alert = Alert(
        incident="codex",
        kind="codex",
        state="opened",
        text="Codex keeps failing",
        opened_at=1,
        at=1,
    )
    web.surface.send(alert)
    for client in (watching_t1, watching_nothing):
        envelope = await client.until(lambda e: e.type == "alert")
        assert envelope.seq == 0  # not a thread event: never replayed
        assert envelope.data == st.Alerted(alert=alert)
