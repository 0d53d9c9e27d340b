"""`MediaConfig`: what surfaces accept besides text, and `TranscriptionConfig`: where voice notes
are transcribed.

```toml
[media]
inbox = "inbox"                          # files are saved under <agent workspace>/<inbox>/
max_voice_bytes = 20_000_000             # a voice note or audio file past this is refused
max_voice_seconds = 1200                 # ... as is one that lasts longer (when it is known)
max_image_bytes = 10_000_000
max_file_bytes = 20_000_000              # (the Telegram Bot API serves at most 20 MB anyway)

[media.transcription]                    # the openai SDK's audio.transcriptions.create
provider = "openai"                      # a [providers.<name>]: its base_url and env_key
base_url = ""                            # or the server's own address (wins over provider)
model = "whisper-1"
api_key_env = "OPENAI_API_KEY"           # unset: the provider's env_key, then OPENAI_API_KEY;
                                         # "" for a server that needs no key
```
"""

from __future__ import annotations

import msgspec

__all__ = ["MediaConfig", "TranscriptionConfig"]


class TranscriptionConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Where voice notes are transcribed; see the module documentation."""

    provider: str | None = None
    base_url: str | None = None
    model: str = "whisper-1"
    api_key_env: str | None = None
    language: str | None = None
    timeout: float = 120.0


class MediaConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Voice notes, images and files from the chat surfaces; see the module documentation."""

    enabled: bool = True
    inbox: str = "inbox"
    max_voice_bytes: int = 20_000_000
    max_voice_seconds: int = 1200
    max_image_bytes: int = 10_000_000
    max_file_bytes: int = 20_000_000
    download_timeout: float = 120.0
    transcription: TranscriptionConfig = msgspec.field(default_factory=TranscriptionConfig)
