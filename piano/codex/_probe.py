"""Ask a model provider one real question and report what it answered, in its own words.

Codex does not say which address it could not reach, and for an HTTP 5xx it shows a canned
"We're currently experiencing high demand…" instead of what the provider said (the provider's
body only reaches codex's log). So when a turn fails because of its provider, and in
`piano doctor`, Piano makes one small request itself — ``POST {base_url}/responses`` (or
``/chat/completions`` for ``wire_api = "chat"``) with the provider's key, as codex would — and
keeps the answer: the address, the HTTP status and the provider's own message, or why no
connection could be made. The key is sent, never logged or put in the answer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from piano.config import ProviderConfig

__all__ = ["ProviderAnswer", "probe_provider"]

_MESSAGE_LIMIT = 500


@dataclass(frozen=True, slots=True)
class ProviderAnswer:
    """What one request to a provider got: `ok` for an HTTP 2xx; `detail` says what happened
    (``POST <url>: HTTP 500: <the provider's message>``, or why it could not connect)."""

    ok: bool
    detail: str


def _message(body: bytes) -> str:
    """The provider's message: ``error.message`` of a JSON error body, else the body text."""
    text = body.decode(errors="replace").strip()
    try:
        data: Any = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            text = error["message"]
        elif isinstance(error, str):
            text = error
    text = " ".join(text.split())
    return text[:_MESSAGE_LIMIT] + ("…" if len(text) > _MESSAGE_LIMIT else "") or "(empty body)"


async def probe_provider(
    provider: ProviderConfig,
    model: str | None,
    *,
    environ: Mapping[str, str] = os.environ,
    timeout: float = 10.0,
) -> ProviderAnswer:
    """Make one small request to `provider` for `model` and say what it answered."""
    chat = provider.wire_api == "chat"
    url = provider.base_url.rstrip("/") + ("/chat/completions" if chat else "/responses")
    prompt = "Reply with OK."
    body: dict[str, Any] = {"model": model or "gpt-5.5", "stream": False}
    if chat:
        body |= {"messages": [{"role": "user", "content": prompt}], "max_tokens": 16}
    else:
        body |= {"input": prompt, "max_output_tokens": 16, "store": False}
    headers = {"Content-Type": "application/json"}
    if provider.env_key and (key := environ.get(provider.env_key)):
        headers["Authorization"] = f"Bearer {key}"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.post(url, json=body, headers=headers) as response,
        ):
            if 200 <= response.status < 300:
                return ProviderAnswer(True, f"POST {url}: HTTP {response.status}")
            message = _message(await response.content.read(64 * 1024))
            return ProviderAnswer(False, f"POST {url}: HTTP {response.status}: {message}")
    except TimeoutError:
        return ProviderAnswer(False, f"POST {url}: no answer within {timeout:g} s")
    except (aiohttp.ClientError, OSError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return ProviderAnswer(False, f"POST {url}: cannot connect: {reason}")
