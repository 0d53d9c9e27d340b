"""Piano's web-fetch tool: fetch a URL, return its main content as Markdown or text.

``WebFetcher(FetchConfig(...))`` is a plain asyncio component (``start()``/``close()`` or
``async with``); ``await fetcher.fetch(url, workspace=path)`` returns a ``FetchResult``. In the
daemon it runs as the ``WebFetchTool`` actor (``_actor``), many fetches in flight at once.

Guarantees
- Only http(s) URLs are fetched, and only from globally routable addresses: loopback, private,
  CGNAT, link-local (incl. the 169.254.169.254 metadata service), IPv6 ULA/link-local,
  IPv4-mapped forms of those, multicast, reserved and unspecified addresses are refused unless
  ``FetchConfig.allowed_networks`` explicitly allows them. The check runs on the addresses a
  name resolves to, the connection goes to the checked address, and every redirect hop is
  checked again (at most ``max_redirects`` hops).
- The body is capped at ``max_bytes`` while streaming; one deadline (``timeout``) covers the
  whole fetch.
- Extraction (trafilatura, in a worker thread) yields content plus title, author, date, site
  name, description and canonical URL. Content longer than ``inline_limit`` is written to
  ``<workspace>/webfetch/`` and a preview is returned with ``saved_path`` set.
- Whatever the page or network does comes back as a ``FetchResult`` with ``error_kind`` set
  (``FetchErrorKind``); only misconfiguration or misuse raises.
"""

from __future__ import annotations

from ._actor import Fetch, WebFetchTool
from ._config import FetchConfig, OutputFormat
from ._fetch import WebFetcher
from ._guard import AddressPolicy, BlockedAddressError
from ._resolve import HostResolver, StaticResolver, SystemResolver, VettingResolver
from ._result import FetchErrorKind, FetchResult

__all__ = [
    "AddressPolicy",
    "BlockedAddressError",
    "Fetch",
    "FetchConfig",
    "FetchErrorKind",
    "FetchResult",
    "HostResolver",
    "OutputFormat",
    "StaticResolver",
    "SystemResolver",
    "VettingResolver",
    "WebFetchTool",
    "WebFetcher",
]
