"""Chat Completions (``POST /v1/chat/completions``, streamed): one model round, for servers
that have only this API (llama.cpp, older vLLM, Ollama's OpenAI endpoint).

The instructions go first as a ``system`` message, tool calls as the assistant's
``tool_calls`` and their results as ``tool`` messages, a user message's images as
``image_url`` parts with ``data:`` URLs. Tool-call deltas are put together by
``index`` (id and name in the first, arguments in pieces). Usage is asked for with
``stream_options.include_usage`` (the last chunk). Reasoning deltas (``reasoning_content``,
as vLLM and DeepSeek send them) become reasoning. A stream that ends without any
``finish_reason`` raises `StreamTruncated`: the SDK raises nothing when a server or proxy
drops the connection between chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openai import AsyncOpenAI

from piano.agents.openai._history import Message, ToolCall
from piano.agents.openai._round import Round, RoundSink, StreamTruncated, Usage
from piano.agents.openai._tools import ToolSpec
from piano.media import image_data_url

__all__ = ["chat_messages", "chat_round"]


def chat_messages(instructions: str | None, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The neutral history as Chat Completions messages."""
    out: list[dict[str, Any]] = []
    if instructions:
        out.append({"role": "system", "content": instructions})
    for message in messages:
        if message.role == "tool":
            out.append({"role": "tool", "tool_call_id": message.call_id, "content": message.text})
        elif message.role == "assistant" and message.calls:
            out.append(
                {
                    "role": "assistant",
                    "content": message.text or None,
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments},
                        }
                        for c in message.calls
                    ],
                }
            )
        elif message.images:
            out.append({"role": message.role, "content": _with_images(message)})
        else:
            out.append({"role": message.role, "content": message.text})
    return out


def _with_images(message: Message) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.text}]
    for path in message.images:
        url = image_data_url(path)
        if url is None:
            parts.append({"type": "text", "text": f"(The image {path} is gone.)"})
        else:
            parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


def _tools(specs: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {"name": s.name, "description": s.description, "parameters": s.parameters},
        }
        for s in specs
    ]


def _usage(raw: Any) -> Usage:
    cached = getattr(getattr(raw, "prompt_tokens_details", None), "cached_tokens", 0) or 0
    details = getattr(raw, "completion_tokens_details", None)
    return Usage(
        input_tokens=getattr(raw, "prompt_tokens", 0) or 0,
        cached_input_tokens=cached,
        output_tokens=getattr(raw, "completion_tokens", 0) or 0,
        reasoning_tokens=getattr(details, "reasoning_tokens", 0) or 0,
        total_tokens=getattr(raw, "total_tokens", 0) or 0,
    )


async def chat_round(
    client: AsyncOpenAI,
    *,
    model: str,
    instructions: str | None,
    messages: Sequence[Message],
    tools: Sequence[ToolSpec],
    sink: RoundSink,
    options: dict[str, Any],
) -> Round:
    """Stream one completion; see the module documentation."""
    request: dict[str, Any] = {
        "model": model,
        "messages": chat_messages(instructions, messages),
        "stream_options": {"include_usage": True},
        **options,
    }
    if tools:
        request["tools"] = _tools(tools)
    result = Round()
    text: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    finish: str | None = None
    stream = await client.chat.completions.create(stream=True, **request)
    async with stream:
        async for chunk in stream:
            if getattr(chunk, "usage", None) is not None:
                result.usage = _usage(chunk.usage)
            for choice in getattr(chunk, "choices", None) or []:
                delta = choice.delta
                if delta is not None:
                    if delta.content:
                        text.append(delta.content)
                        await sink.text(delta.content)
                    reasoning = getattr(delta, "reasoning_content", None)
                    if isinstance(reasoning, str) and reasoning:
                        result.reasoning += reasoning
                        await sink.reasoning(reasoning)
                    for part in delta.tool_calls or []:
                        call = calls.setdefault(part.index, {"id": "", "name": "", "args": ""})
                        call["id"] = part.id or call["id"]
                        if part.function is not None:
                            call["name"] = part.function.name or call["name"]
                            call["args"] += part.function.arguments or ""
                if choice.finish_reason:
                    finish = choice.finish_reason
    if finish is None:
        raise StreamTruncated(
            "the model's stream ended without a finish reason: the answer is incomplete"
        )
    result.text = "".join(text)
    result.calls = [
        ToolCall(id=c["id"] or f"call_{i}", name=c["name"], arguments=c["args"])
        for i, c in sorted(calls.items())
    ]
    result.finish = "tool_calls" if result.calls and finish == "stop" else finish
    return result
