"""`Transcriber`: voice notes to text with the openai SDK's ``audio.transcriptions.create``.

The endpoint is resolved like an OpenAI agent's: `TranscriptionConfig.base_url`, else the named
provider's `base_url`, else OpenAI's API; the key from `api_key_env`, else the provider's
`env_key`, else ``OPENAI_API_KEY`` (``api_key_env = ""``: a server that needs no key). The key
is read when a note arrives (a rotated key is picked up), never logged. Every failure raises
`TranscriptionFailed` with a message fit to show the user.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any, Protocol

import openai
import structlog

from actors import Secret
from piano.media._config import TranscriptionConfig

__all__ = ["Transcriber", "TranscriptionFailed"]

log = structlog.get_logger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"


class TranscriptionFailed(Exception):
    """A voice note could not be transcribed; the message says why, for the user."""


class _Provider(Protocol):
    """What is read from a `piano.config.ProviderConfig`."""

    base_url: str
    env_key: str | None


class Transcriber:
    """Transcribes audio with the configured provider; see the module documentation."""

    def __init__(
        self,
        config: TranscriptionConfig,
        providers: Mapping[str, _Provider] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.providers = providers or {}
        self.environ = environ
        self.clients: dict[str, openai.AsyncOpenAI] = {}
        """By a hash of (base_url, key): the key itself never sits in inspectable state."""

    def endpoint(self) -> tuple[str, str]:
        """(base_url, key); `TranscriptionFailed` if it is not configured."""
        config = self.config
        provider = None
        if config.provider:
            provider = self.providers.get(config.provider)
            if provider is None:
                raise TranscriptionFailed(
                    f"transcription is set to the provider {config.provider!r}, "
                    "which is not configured"
                )
        base_url = config.base_url or (provider.base_url if provider else None) or DEFAULT_BASE_URL
        key_env = config.api_key_env
        if key_env is None:
            key_env = (provider.env_key if provider else None) or DEFAULT_KEY_ENV
        if not key_env:
            return base_url, "no-key"
        environ = os.environ if self.environ is None else self.environ
        key = environ.get(key_env)
        if not key:
            raise TranscriptionFailed(f"voice notes need a transcription key in ${key_env}")
        return base_url, Secret(key)

    def _client(self) -> openai.AsyncOpenAI:
        base_url, key = self.endpoint()
        cache = hashlib.sha256(f"{base_url}\0{key}".encode()).hexdigest()
        client = self.clients.get(cache)
        if client is None:
            client = openai.AsyncOpenAI(
                base_url=base_url, api_key=key, max_retries=2, timeout=self.config.timeout
            )
            self.clients[cache] = client
        return client

    async def transcribe(self, data: bytes, filename: str, mime: str | None = None) -> str:
        """The text spoken in `data` (an audio file named `filename`)."""
        client = self._client()
        extra: dict[str, Any] = {}
        if self.config.language:
            extra["language"] = self.config.language
        upload: Any = (filename, data, mime) if mime else (filename, data)
        try:
            result = await client.audio.transcriptions.create(
                model=self.config.model, file=upload, **extra
            )
        except openai.APIStatusError as exc:
            body = exc.body
            said = body.get("message") if isinstance(body, Mapping) else None
            raise TranscriptionFailed(
                f"the transcription service answered {exc.status_code}"
                + (f": {said}" if isinstance(said, str) and said else "")
            ) from exc
        except openai.OpenAIError as exc:
            raise TranscriptionFailed(f"the transcription service failed: {exc}") from exc
        text = getattr(result, "text", result if isinstance(result, str) else "")
        log.info("media.transcribed", model=self.config.model, audio_bytes=len(data))
        return str(text).strip()

    async def close(self) -> None:
        clients, self.clients = list(self.clients.values()), {}
        for client in clients:
            await client.close()
