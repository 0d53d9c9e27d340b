"""Voice notes, images and files from the chat surfaces, for any of them (Telegram, the web).

```python
media = build_media(config.media, config.agents, config.providers)
refusal = media.too_large("image", announced_size)            # a sentence, or None
received = await media.receive("image", agent, data, name="cat.jpg", caption="What is it?")
Interaction(id=..., text=received.text, attachments=received.attachments)
```

Modules: `_config` (`MediaConfig`, `TranscriptionConfig`), `_media` (`Media`: limits, what the
agent is told), `_files` (safe names, saving into a workspace, image data URLs),
`_transcribe` (`Transcriber`). This package imports neither piano.config nor piano.threads.
"""

from __future__ import annotations

from piano.media._config import MediaConfig, TranscriptionConfig
from piano.media._files import (
    IMAGE_TYPES,
    SavedFile,
    UnsafeInbox,
    human_size,
    image_data_url,
    image_type,
    safe_filename,
    save_file,
)
from piano.media._media import Kind, Media, MediaRefused, Received, build_media
from piano.media._transcribe import Transcriber, TranscriptionFailed

__all__ = [
    "IMAGE_TYPES",
    "Kind",
    "Media",
    "MediaConfig",
    "MediaRefused",
    "Received",
    "SavedFile",
    "Transcriber",
    "TranscriptionConfig",
    "TranscriptionFailed",
    "UnsafeInbox",
    "build_media",
    "human_size",
    "image_data_url",
    "image_type",
    "safe_filename",
    "save_file",
]
