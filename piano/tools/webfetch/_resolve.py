"""Name resolution for fetches, and the vetting resolver that aiohttp connects through.

A ``HostResolver`` turns a host name into IP address strings. ``SystemResolver`` asks the OS;
``StaticResolver`` answers from a mapping (tests, or pinned hosts) and fails for anything else.

``VettingResolver`` is what the aiohttp connector uses: it resolves once, vets every answer with
the ``AddressPolicy`` and hands aiohttp only those vetted addresses, so the socket connects to
exactly the address that was checked (no second lookup that DNS rebinding could change). If any
answer is refused the whole name is refused: a name that points inside is not trusted for its
other answers either.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from aiohttp.abc import AbstractResolver, ResolveResult

from ._guard import AddressPolicy, parse_address


@runtime_checkable
class HostResolver(Protocol):
    """Resolves a host name to IP address strings; raises OSError when it cannot."""

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        """Every address ``host`` resolves to, in preference order."""
        ...


class SystemResolver:
    """Resolves names with the operating system's resolver (``getaddrinfo``)."""

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        """Every address the OS returns for ``host``, deduplicated, in its order."""
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses: dict[str, None] = {}
        for family, _type, _proto, _name, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                addresses[str(sockaddr[0])] = None
        return list(addresses)


class StaticResolver:
    """Answers from a fixed mapping of lowercase host name to addresses; unknown names fail."""

    def __init__(self, answers: Mapping[str, Sequence[str]]) -> None:
        self._answers = {name.lower().rstrip("."): list(addrs) for name, addrs in answers.items()}

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        """The mapped addresses for ``host``; socket.gaierror if it is not in the mapping."""
        try:
            return self._answers[host.lower().rstrip(".")]
        except KeyError:
            raise socket.gaierror(socket.EAI_NONAME, f"unknown host {host!r}") from None


class VettingResolver(AbstractResolver):
    """aiohttp resolver that returns only addresses the policy allows, or raises."""

    def __init__(self, resolver: HostResolver, policy: AddressPolicy) -> None:
        self._resolver = resolver
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host``, vet every answer, and return them for aiohttp to connect to."""
        answers = await self._resolver.resolve(host, port)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, f"no addresses for {host!r}")
        results: list[ResolveResult] = []
        for answer in answers:
            self._policy.check(host, answer)
            address = parse_address(answer)
            addr_family = socket.AF_INET if address.version == 4 else socket.AF_INET6
            if family not in (socket.AF_UNSPEC, addr_family):
                continue
            results.append(
                ResolveResult(
                    hostname=host,
                    host=str(address),
                    port=port,
                    family=addr_family,
                    proto=0,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        if not results:
            raise socket.gaierror(socket.EAI_ADDRFAMILY, f"no usable addresses for {host!r}")
        return results

    async def close(self) -> None:
        """Nothing to release: the wrapped resolver owns no connections."""
