"""The address policy: which IP addresses a fetch may connect to.

By default only globally routable unicast addresses are allowed. Everything that reaches the
machine itself, its local networks or special-purpose infrastructure is refused: loopback,
RFC 1918 private ranges, carrier-grade NAT, link-local (which holds the cloud metadata address
169.254.169.254), unique-local and link-local IPv6, multicast, reserved, documentation and
unspecified ranges. IPv6 forms that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``,
NAT64 ``64:ff9b::a.b.c.d``) are judged by the IPv4 address they carry; the deprecated
IPv4-compatible and 6to4 forms are refused outright.

An explicit allowlist of networks overrides the deny list (tests allow ``127.0.0.1/32``).
The policy judges addresses, never names: callers resolve first and vet every answer.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

_IPV4_DENY: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "this-network (unspecified)"),
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.169.254/32", "cloud metadata service (link-local)"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
    )
)

_NAT64 = IPv6Network("64:ff9b::/96")

_IPV6_DENY: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), reason)
    for net, reason in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible (deprecated)"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments"),
        ("2001:db8::/32", "documentation"),
        ("2002::/16", "6to4 (embeds an IPv4 address)"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing"),
        ("fc00::/7", "unique local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    )
)


class BlockedAddressError(Exception):
    """A URL's host, or one of its DNS answers, is an address the policy refuses."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} -> {address} is refused: {reason}")
        self.host = host
        self.address = address
        self.reason = reason


def parse_address(text: str) -> IPAddress:
    """Parse an IP address, dropping any IPv6 zone (``fe80::1%eth0``); raise ValueError."""
    return ipaddress.ip_address(text.split("%", 1)[0])


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


class AddressPolicy:
    """Decides whether an address may be connected to; immutable and cheap to share."""

    def __init__(self, allowed_networks: Iterable[str] = ()) -> None:
        """``allowed_networks``: CIDR strings that override the deny list; bad ones raise."""
        self.allowed_networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(net, strict=True) for net in allowed_networks
        )

    def _allowed_explicitly(self, address: IPAddress) -> bool:
        return any(
            address.version == net.version and address in net for net in self.allowed_networks
        )

    def refusal(self, address: IPAddress | str) -> str | None:
        """Why ``address`` is refused, or None if a connection to it is allowed."""
        addr = parse_address(address) if isinstance(address, str) else address
        embedded = _embedded_ipv4(addr) if isinstance(addr, IPv6Address) else None
        if self._allowed_explicitly(addr) or (
            embedded is not None and self._allowed_explicitly(embedded)
        ):
            return None
        if embedded is not None:
            inner = self.refusal(embedded)
            return None if inner is None else f"IPv4 inside IPv6 {addr}: {inner}"
        table: Iterable[tuple[IPNetwork, str]] = (
            _IPV4_DENY if isinstance(addr, IPv4Address) else _IPV6_DENY
        )
        for net, reason in table:
            if addr in net:
                return reason
        if not addr.is_global or addr.is_multicast:
            return "not globally routable"
        return None

    def check(self, host: str, address: str) -> None:
        """Raise BlockedAddressError if ``address`` (an answer for ``host``) is refused."""
        reason = self.refusal(address)
        if reason is not None:
            raise BlockedAddressError(host, address, reason)

    def check_literal_host(self, host: str) -> bool:
        """Vet a URL host that is an address literal; return False if it is a name.

        Legacy numeric IPv4 spellings that the OS would still accept (``2130706433``,
        ``0x7f.1``, ``127.1``) are decoded the way the OS would and vetted as that address.
        """
        try:
            address = parse_address(host.strip("[]"))
        except ValueError:
            try:
                packed = socket.inet_aton(host)
            except OSError:
                return False
            address = IPv4Address(packed)
        self.check(host, str(address))
        return True
