"""One model round (one streamed model response) as both wire APIs report it.

`_responses.responses_round` and `_chat.chat_round` stream a response, hand text and
reasoning deltas to a `RoundSink` as they arrive, and return a `Round`: the final text, the
tool calls, why the model stopped and the tokens it used. A stream that ends without saying
how it finished (no ``finish_reason``, no ``response.completed``) raises `StreamTruncated` —
the openai SDK raises nothing there, and the text so far must not pass for a whole answer.
A provider that reports failure inside the stream raises `ModelFailed` with its message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from piano.agents.openai._history import ToolCall

__all__ = ["ModelFailed", "Round", "RoundSink", "StreamTruncated", "Usage"]


class StreamTruncated(Exception):
    """The model's stream ended before the model said it had finished."""


class ModelFailed(Exception):
    """The provider reported a failure in the stream (``response.failed``, an error event)."""


class RoundSink(Protocol):
    async def text(self, delta: str) -> None: ...

    async def reasoning(self, delta: str) -> None: ...


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0


@dataclass(slots=True)
class Round:
    """A finished model response. `finish` is ``stop``, ``tool_calls``, ``length`` (cut by
    the output limit) or what the server said (``content_filter``...)."""

    text: str = ""
    reasoning: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    finish: str = "stop"
    usage: Usage | None = None
