"""Where an OpenAI agent's requests go: its endpoint, resolved from its options and provider.

Resolution order for each setting: the agent's ``openai`` options, then its provider
(``[providers.<name>]``: `base_url`, `wire_api`, `env_key`), then OpenAI's own API with the
key in ``OPENAI_API_KEY``. The key is read from the environment when a turn starts, so a
rotated key is picked up without a restart; it is never logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from actors import Secret
from piano.config import OpenAIAgentConfig

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_KEY_ENV",
    "Endpoint",
    "EndpointError",
    "MissingKey",
    "resolve_endpoint",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
NO_KEY = "no-key"
"""Sent as the key to servers configured with ``api_key_env = ""`` (the SDK requires one)."""


class EndpointError(Exception):
    """The agent cannot be used as configured (no model, no key); the message says why."""


class MissingKey(EndpointError):
    """The environment variable that should hold the agent's API key is not set."""


class _Provider(Protocol):
    """What is read from a `piano.config.ProviderConfig`."""

    base_url: str
    wire_api: Literal["responses", "chat"]
    env_key: str | None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A resolved endpoint; `api_key` is secret (not shown in repr)."""

    base_url: str
    api: Literal["responses", "chat"]
    key_env: str
    api_key: str = field(repr=False)


def resolve_endpoint(
    options: OpenAIAgentConfig,
    provider: _Provider | None,
    environ: Mapping[str, str] | None = None,
) -> Endpoint:
    """The endpoint the agent's requests go to; `MissingKey` names the unset variable."""
    environ = os.environ if environ is None else environ
    base_url = options.base_url or (provider.base_url if provider else None) or DEFAULT_BASE_URL
    api = options.api or (provider.wire_api if provider else None) or "responses"
    key_env = options.api_key_env
    if key_env is None:
        key_env = (provider.env_key if provider else None) or DEFAULT_KEY_ENV
    if not key_env:
        return Endpoint(base_url, api, "", NO_KEY)
    key = environ.get(key_env)
    if not key:
        raise MissingKey(
            f"the API key variable {key_env} is not set in Piano's environment "
            '(set it, or set api_key_env = "" for a server that needs no key)'
        )
    return Endpoint(base_url, api, key_env, Secret(key))
