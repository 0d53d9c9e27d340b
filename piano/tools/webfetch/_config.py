"""FetchConfig: the limits and policy of one web-fetch tool; invalid values raise at once."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from ._guard import AddressPolicy
from ._resolve import HostResolver, SystemResolver


class OutputFormat(enum.StrEnum):
    """What the extracted page is rendered as."""

    MARKDOWN = "markdown"
    TEXT = "text"


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchConfig:
    """Limits and address policy for fetches.

    ``allowed_networks`` (CIDR strings, e.g. ``["127.0.0.1/32"]``) is an explicit allowlist that
    overrides the deny list of the address guard. ``inline_limit`` is the longest extracted
    content (in characters) returned inline; longer content is written to a file in the
    caller's workspace and only its first ``preview_chars`` characters are returned.
    ``resolver`` resolves host names (default: the OS resolver); every answer is vetted.
    """

    max_bytes: int = 5 * 1024 * 1024
    timeout: float = 30.0
    max_redirects: int = 5
    allowed_networks: Sequence[str] = ()
    output_format: OutputFormat = OutputFormat.MARKDOWN
    inline_limit: int = 20_000
    preview_chars: int = 2_000
    user_agent: str = "PianoWebFetch/0.1 (+https://github.com/piano)"
    resolver: HostResolver = field(default_factory=SystemResolver)
    policy: AddressPolicy = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {self.max_bytes}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        if self.max_redirects < 0:
            raise ValueError(f"max_redirects must be >= 0, got {self.max_redirects}")
        if self.inline_limit <= 0 or self.preview_chars <= 0:
            raise ValueError("inline_limit and preview_chars must be positive")
        if self.preview_chars > self.inline_limit:
            raise ValueError("preview_chars must not exceed inline_limit")
        if not self.user_agent or any(c in self.user_agent for c in "\r\n"):
            raise ValueError("user_agent must be a non-empty single line")
        if not isinstance(self.resolver, HostResolver):
            raise TypeError(f"resolver must implement HostResolver, got {self.resolver!r}")
        networks = (
            (self.allowed_networks,)
            if isinstance(self.allowed_networks, str)
            else tuple(self.allowed_networks)
        )
        object.__setattr__(self, "allowed_networks", networks)
        object.__setattr__(self, "output_format", OutputFormat(self.output_format))
        object.__setattr__(self, "policy", AddressPolicy(networks))
