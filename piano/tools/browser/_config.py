"""`BrowserConfig`: where Chromium and its driver are, how many sessions, and their timeouts."""

from __future__ import annotations

import msgspec

from piano.tools.webfetch import AddressPolicy

__all__ = ["BrowserConfig"]


class BrowserConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """The browser tool's settings (the ``[tools.browser]`` section).

    `chromium` and `chromedriver` default to Debian's ``chromium`` and ``chromium-driver``
    packages; both run in a bubblewrap sandbox (``bubblewrap``, /usr/bin/bwrap) with a network
    of its own, so none of their ports is reachable from the host; selenium talks to the
    driver over a unix socket, so Selenium Manager never runs (it would try to download a
    driver). `max_sessions` bounds live sessions across all threads
    (each headless Chromium costs about 150-250 MiB; CPU is the real limit, 2-4 pages loading at
    once on 2 cores). A session unused for `idle_timeout` seconds closes. `block_dns` maps every
    host name except localhost to "not found" inside Chromium (for offline tests only: the
    agent's browser needs the web). Every request goes through the session's guard proxy, which
    refuses loopback, private, link-local and metadata addresses as web fetch does;
    `allowed_networks` (CIDR strings, e.g. ``["127.0.0.1/32"]``) lets the browser reach them.
    A daemon run as root runs the sandbox as `sandbox_uid` (and the same gid), a uid no user
    or other service may have: whoever has it could reach the sandbox's chromedriver. The
    default lies in the range systemd leaves unused (above nspawn's container ranges).
    """

    chromium: str = "/usr/bin/chromium"
    chromedriver: str = "/usr/bin/chromedriver"
    max_sessions: int = 4
    idle_timeout: float = 600.0
    start_timeout: float = 60.0
    page_load_timeout: float = 30.0
    script_timeout: float = 10.0
    action_timeout: float = 60.0
    window_size: str = "1280,900"
    text_limit: int = 20_000
    extra_args: list[str] = msgspec.field(default_factory=list)
    block_dns: bool = False
    allowed_networks: list[str] = msgspec.field(default_factory=list)
    sandbox_uid: int = 1_900_000_000

    def __post_init__(self) -> None:
        if self.max_sessions < 1:
            raise ValueError("tools.browser.max_sessions must be at least 1")
        for name in ("idle_timeout", "start_timeout", "page_load_timeout", "script_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"tools.browser.{name} must be a positive number")
        if not 0 < self.sandbox_uid < 2**31 or self.sandbox_uid == 65534:
            raise ValueError(
                "tools.browser.sandbox_uid must be a uid of its own: 1 to 2147483647, not nobody"
            )
        try:
            AddressPolicy(self.allowed_networks)
        except ValueError as exc:
            raise ValueError(f"tools.browser.allowed_networks: {exc}") from None
