"""The security proof of the web-fetch guard: every private, local and special-purpose range is
refused (IPv4, IPv6 and IPv4-in-IPv6 forms), 127.0.0.1 only when explicitly allowed, DNS
answers that point inside are refused, and a redirect into a refused address is stopped at
that hop. An audit hook watches every socket connect and DNS lookup during these tests: it
proves that nothing was attempted towards a refused address, and refuses any connection that
is not to 127.0.0.1 so a broken guard cannot send traffic off the machine."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

from piano.tools.webfetch import (
    AddressPolicy,
    BlockedAddressError,
    FetchConfig,
    FetchErrorKind,
    FetchResult,
    StaticResolver,
    WebFetcher,
)
from tests.test_webfetch import LocalSite

BLOCKED_IPV4 = {
    "0.0.0.0": "this-network",
    "0.1.2.3": "this-network",
    "10.0.0.1": "private",
    "10.255.255.254": "private",
    "100.64.0.1": "carrier-grade NAT",
    "100.127.255.254": "carrier-grade NAT",
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "169.254.0.1": "link-local",
    "169.254.169.254": "cloud metadata",
    "172.16.0.1": "private",
    "172.31.255.254": "private",
    "192.0.0.8": "IETF",
    "192.0.2.1": "documentation",
    "192.88.99.1": "6to4 relay",
    "192.168.0.1": "private",
    "192.168.255.254": "private",
    "198.18.0.1": "benchmarking",
    "198.19.255.254": "benchmarking",
    "198.51.100.7": "documentation",
    "203.0.113.9": "documentation",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "broadcast",
}
BLOCKED_IPV6 = {
    "::": "unspecified",
    "::1": "loopback",
    "::127.0.0.1": "IPv4-compatible",
    "64:ff9b:1::1": "local-use NAT64",
    "100::1": "discard-only",
    "2001::1": "IETF",
    "2001:db8::1": "documentation",
    "2002:7f00:1::1": "6to4",
    "fc00::1": "unique local",
    "fd00::1": "unique local",
    "fd00:ec2::254": "unique local",
    "fe80::1": "link-local",
    "fe80::1%eth0": "link-local",
    "febf:ffff::1": "link-local",
    "fec0::1": "site-local",
    "ff02::1": "multicast",
    "ff05::1:3": "multicast",
}
BLOCKED_EMBEDDED_IPV4 = {
    "::ffff:0.0.0.0": "this-network",
    "::ffff:10.0.0.1": "private",
    "::ffff:100.64.0.1": "carrier-grade NAT",
    "::ffff:127.0.0.1": "loopback",
    "::ffff:7f00:2": "loopback",
    "::ffff:169.254.169.254": "cloud metadata",
    "::ffff:172.16.0.1": "private",
    "::ffff:192.168.1.1": "private",
    "::ffff:224.0.0.1": "multicast",
    "64:ff9b::10.0.0.1": "private",
    "64:ff9b::169.254.169.254": "cloud metadata",
}
BLOCKED = BLOCKED_IPV4 | BLOCKED_IPV6 | BLOCKED_EMBEDDED_IPV4
ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.167.255.255",
    "192.169.0.0",
    "169.253.255.255",
    "223.255.255.255",
    "2606:4700:4700::1111",
    "2a00:1450:4001::1",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
]
LEGACY_LOOPBACK_SPELLINGS = ["2130706433", "0x7f.1", "0x7f000001", "127.1", "017700000001"]


@dataclass
class NetworkWatch:
    """What the process tried on the network while a test ran."""

    active: bool = False
    connects: list[str] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "socket.connect" and isinstance(args[1], tuple):
            host = str(args[1][0])
            self.connects.append(host)
            if host != "127.0.0.1":
                raise PermissionError(f"test network watch: connect to {host} refused")
        elif event == "socket.getaddrinfo":
            self.lookups.append(str(args[0]))


_WATCH = NetworkWatch()
sys.addaudithook(_WATCH.hook)


@pytest.fixture
def watch() -> Iterator[NetworkWatch]:
    _WATCH.connects.clear()
    _WATCH.lookups.clear()
    _WATCH.active = True
    try:
        yield _WATCH
    finally:
        _WATCH.active = False


async def fetch(url: str, **overrides: Any) -> FetchResult:
    values: dict[str, Any] = {"timeout": 10.0, "resolver": StaticResolver({})}
    values.update(overrides)
    async with WebFetcher(FetchConfig(**values)) as fetcher:
        return await fetcher.fetch(url)


def url_for(address: str) -> str:
    host = f"[{address.replace('%', '%25')}]" if ":" in address else address
    return f"http://{host}/latest/meta-data/"


@pytest.mark.parametrize(("address", "reason"), BLOCKED.items())
def test_every_private_local_and_special_range_is_refused_by_default(
    address: str, reason: str
) -> None:
    refusal = AddressPolicy().refusal(address)
    assert refusal is not None
    assert reason in refusal


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_including_range_edges_are_allowed(address: str) -> None:
    assert AddressPolicy().refusal(address) is None


@pytest.mark.anyio
@pytest.mark.parametrize("address", BLOCKED)
async def test_a_url_naming_a_refused_address_is_refused_before_any_connection(
    address: str, watch: NetworkWatch
) -> None:
    result = await fetch(url_for(address))
    assert result.error_kind is FetchErrorKind.BLOCKED_ADDRESS, result.error_message
    assert watch.connects == []
    assert watch.lookups == []


@pytest.mark.anyio
@pytest.mark.parametrize("host", LEGACY_LOOPBACK_SPELLINGS)
async def test_legacy_numeric_spellings_of_loopback_are_refused(
    host: str, watch: NetworkWatch
) -> None:
    result = await fetch(f"http://{host}/")
    assert result.error_kind is FetchErrorKind.BLOCKED_ADDRESS, result.error_message
    assert "loopback" in (result.error_message or "")
    assert watch.connects == []


@pytest.mark.anyio
async def test_the_metadata_address_is_refused_by_address_and_by_name(watch: NetworkWatch) -> None:
    resolver = StaticResolver({"metadata.google.internal": ["169.254.169.254"]})
    by_address = await fetch("http://169.254.169.254/latest/meta-data/iam/")
    by_name = await fetch("http://metadata.google.internal/computeMetadata/v1/", resolver=resolver)
    for result in (by_address, by_name):
        assert result.error_kind is FetchErrorKind.BLOCKED_ADDRESS
        assert "cloud metadata" in (result.error_message or "")
    assert watch.connects == []


@pytest.fixture
async def site() -> AsyncIterator[LocalSite]:
    local = LocalSite()
    local.page(
        "/ok", "<html><body><article><p>Local content that is allowed.</p></article></body></html>"
    )

    async def redirect_to(request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": request.query["to"]})

    local.route("/go", redirect_to)
    async with local:
        yield local


@pytest.mark.anyio
async def test_loopback_is_refused_unless_explicitly_allowed(
    site: LocalSite, watch: NetworkWatch
) -> None:
    refused = await fetch(site.url("/ok"))
    assert refused.error_kind is FetchErrorKind.BLOCKED_ADDRESS
    assert watch.connects == []
    assert site.hits == []

    allowed = await fetch(site.url("/ok"), allowed_networks=["127.0.0.1/32"])
    assert allowed.ok, allowed.error_message
    assert "Local content that is allowed." in allowed.content
    assert watch.connects == ["127.0.0.1"]

    for neighbour in ("http://127.0.0.2/", "http://[::1]/", "http://10.0.0.1/"):
        other = await fetch(neighbour, allowed_networks=["127.0.0.1/32"])
        assert other.error_kind is FetchErrorKind.BLOCKED_ADDRESS, neighbour
    assert watch.connects == ["127.0.0.1"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        (["10.0.0.7"], "private"),
        (["192.168.1.20"], "private"),
        (["100.100.100.200"], "carrier-grade NAT"),
        (["169.254.169.254"], "cloud metadata"),
        (["127.0.0.1"], "loopback"),
        (["0.0.0.0"], "this-network"),
        (["::1"], "loopback"),
        (["fd00::1"], "unique local"),
        (["fe80::1"], "link-local"),
        (["::ffff:127.0.0.1"], "loopback"),
        (["::ffff:10.1.2.3"], "private"),
        (["93.184.216.34", "10.0.0.7"], "private"),
        (["2606:4700:4700::1111", "fd12:3456::1"], "unique local"),
    ],
)
async def test_a_name_whose_dns_answer_points_inside_is_refused(
    answers: list[str], reason: str, watch: NetworkWatch
) -> None:
    resolver = StaticResolver({"intranet.example.com": answers})
    result = await fetch("http://intranet.example.com/admin", resolver=resolver)
    assert result.error_kind is FetchErrorKind.BLOCKED_ADDRESS, result.error_message
    assert reason in (result.error_message or "")
    assert watch.connects == []
    assert watch.lookups == []


@pytest.mark.anyio
async def test_a_name_pointing_inside_stays_refused_even_when_another_answer_is_allowed(
    site: LocalSite, watch: NetworkWatch
) -> None:
    resolver = StaticResolver({"mixed.test": ["127.0.0.1", "10.0.0.8"]})
    result = await fetch(
        f"http://mixed.test:{site.port}/ok", resolver=resolver, allowed_networks=["127.0.0.1/32"]
    )
    assert result.error_kind is FetchErrorKind.BLOCKED_ADDRESS
    assert "10.0.0.8" in (result.error_message or "")
    assert watch.connects == []
    assert site.hits == []


class CountingResolver:
    """Answers from a list that changes on every lookup, like a rebinding DNS server."""

    def __init__(self, answers: Sequence[Sequence[str]]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


@pytest.mark.anyio
async def test_the_socket_connects_to_the_vetted_answer_without_a_second_lookup(
    site: LocalSite, watch: NetworkWatch
) -> None:
    resolver = CountingResolver([["127.0.0.1"], ["10.0.0.9"]])
    result = await fetch(
        f"http://rebind.test:{site.port}/ok", resolver=resolver, allowed_networks=["127.0.0.1/32"]
    )
    assert result.ok, result.error_message
    assert resolver.calls == ["rebind.test"]
    assert watch.connects == ["127.0.0.1"]
    assert watch.lookups == []


@pytest.mark.anyio
async def test_a_rebinding_name_is_refused_once_its_answer_points_inside(
    site: LocalSite, watch: NetworkWatch
) -> None:
    resolver = CountingResolver([["127.0.0.1"], ["169.254.169.254"]])
    url = f"http://rebind.test:{site.port}/ok"
    first = await fetch(url, resolver=resolver, allowed_networks=["127.0.0.1/32"])
    second = await fetch(url, resolver=resolver, allowed_networks=["127.0.0.1/32"])
    assert first.ok
    assert second.error_kind is FetchErrorKind.BLOCKED_ADDRESS
    assert "cloud metadata" in (second.error_message or "")
    assert resolver.calls == ["rebind.test", "rebind.test"]
    assert watch.connects == ["127.0.0.1"]
    assert site.hits == ["/ok"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("target", "kind", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", FetchErrorKind.BLOCKED_ADDRESS, "metadata"),
        ("http://10.0.0.1/", FetchErrorKind.BLOCKED_ADDRESS, "private"),
        ("http://[::1]/", FetchErrorKind.BLOCKED_ADDRESS, "loopback"),
        ("http://[::ffff:169.254.169.254]/", FetchErrorKind.BLOCKED_ADDRESS, "metadata"),
        ("http://127.0.0.2/", FetchErrorKind.BLOCKED_ADDRESS, "loopback"),
        ("http://intranet.test/", FetchErrorKind.BLOCKED_ADDRESS, "private"),
        ("file:///etc/passwd", FetchErrorKind.BLOCKED_SCHEME, "file"),
        ("gopher://127.0.0.1:6379/_INFO", FetchErrorKind.BLOCKED_SCHEME, "gopher"),
    ],
)
async def test_a_redirect_from_an_allowed_server_into_a_refused_target_is_stopped_at_the_hop(
    site: LocalSite, watch: NetworkWatch, target: str, kind: FetchErrorKind, reason: str
) -> None:
    resolver = StaticResolver({"intranet.test": ["10.20.30.40"]})
    start = str(URL(site.url("/go")).with_query(to=target))
    result = await fetch(start, resolver=resolver, allowed_networks=["127.0.0.1/32"])
    assert result.error_kind is kind, result.error_message
    assert reason in (result.error_message or "")
    assert result.redirects == 1
    assert result.status == 302
    assert result.final_url.startswith(target.split("/")[0])
    assert result.final_url != start
    assert len(site.hits) == 1
    assert site.hits[0].startswith("/go?to=")
    assert set(watch.connects) == {"127.0.0.1"}


def test_the_policy_raises_a_typed_error_naming_host_address_and_reason() -> None:
    with pytest.raises(BlockedAddressError) as caught:
        AddressPolicy().check("metadata.internal", "169.254.169.254")
    assert caught.value.host == "metadata.internal"
    assert caught.value.address == "169.254.169.254"
    assert "metadata" in caught.value.reason


def test_an_allowlist_entry_overrides_only_its_own_network() -> None:
    policy = AddressPolicy(["127.0.0.1/32", "fd00:1::/64"])
    assert policy.refusal("127.0.0.1") is None
    assert policy.refusal("::ffff:127.0.0.1") is None
    assert policy.refusal("fd00:1::5") is None
    assert policy.refusal("127.0.0.2") is not None
    assert policy.refusal("fd00:2::5") is not None
    assert policy.refusal("169.254.169.254") is not None


@pytest.mark.anyio
async def test_an_unknown_name_is_a_dns_error_result_from_the_injected_resolver(
    watch: NetworkWatch,
) -> None:
    result = await fetch("http://nowhere.test/")
    assert result.error_kind is FetchErrorKind.DNS_ERROR
    assert watch.lookups == []
    assert watch.connects == []
