"""The Responses API (``POST /v1/responses``, streamed): one model round.

The conversation is sent whole each time (``store`` is not used, so servers that keep no
state work): user and assistant messages as input messages, tool calls as ``function_call``
items and their results as ``function_call_output``; a user message's images (and a tool
result's: a screenshot) as ``input_image`` parts with ``data:`` URLs. The stream must end with
``response.completed`` (or ``response.incomplete``: cut short by the output limit);
``response.failed`` and ``error`` events raise `ModelFailed`, and a stream that just stops
raises `StreamTruncated`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openai import AsyncOpenAI

from piano.agents.openai._history import Message, ToolCall
from piano.agents.openai._round import ModelFailed, Round, RoundSink, StreamTruncated, Usage
from piano.agents.openai._tools import ToolSpec
from piano.media import image_data_url

__all__ = ["responses_input", "responses_round"]


def responses_input(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The neutral history as Responses API input items."""
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            output: str | list[dict[str, Any]] = message.text
            if message.images:
                output = _with_images(message)
            items.append(
                {"type": "function_call_output", "call_id": message.call_id, "output": output}
            )
            continue
        if message.images:
            items.append({"role": message.role, "content": _with_images(message)})
        elif message.text or not message.calls:
            items.append({"role": message.role, "content": message.text})
        items.extend(
            {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}
            for c in message.calls
        )
    return items


def _with_images(message: Message) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": message.text}]
    for path in message.images:
        url = image_data_url(path)
        if url is None:
            parts.append({"type": "input_text", "text": f"(The image {path} is gone.)"})
        else:
            parts.append({"type": "input_image", "image_url": url, "detail": "auto"})
    return parts


def _tools(specs: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "name": s.name,
            "description": s.description,
            "parameters": s.parameters,
            "strict": False,
        }
        for s in specs
    ]


def _usage(raw: Any) -> Usage | None:
    if raw is None:
        return None
    cached = getattr(getattr(raw, "input_tokens_details", None), "cached_tokens", 0) or 0
    reasoning = getattr(getattr(raw, "output_tokens_details", None), "reasoning_tokens", 0) or 0
    return Usage(
        input_tokens=getattr(raw, "input_tokens", 0) or 0,
        cached_input_tokens=cached,
        output_tokens=getattr(raw, "output_tokens", 0) or 0,
        reasoning_tokens=reasoning,
        total_tokens=getattr(raw, "total_tokens", 0) or 0,
    )


def _message_text(item: Any) -> str | None:
    parts = getattr(item, "content", None) or []
    texts = [getattr(p, "text", "") for p in parts if getattr(p, "type", "") == "output_text"]
    return "".join(texts) if texts else None


async def responses_round(
    client: AsyncOpenAI,
    *,
    model: str,
    instructions: str | None,
    messages: Sequence[Message],
    tools: Sequence[ToolSpec],
    sink: RoundSink,
    options: dict[str, Any],
) -> Round:
    """Stream one response; see the module documentation."""
    request: dict[str, Any] = {"model": model, "input": responses_input(messages), **options}
    if instructions:
        request["instructions"] = instructions
    if tools:
        request["tools"] = _tools(tools)
    result = Round()
    streamed: list[str] = []
    finished = False
    stream = await client.responses.create(stream=True, **request)
    async with stream:
        async for event in stream:
            kind = getattr(event, "type", "")
            if kind == "response.output_text.delta":
                streamed.append(event.delta)
                await sink.text(event.delta)
            elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
                result.reasoning += event.delta
                await sink.reasoning(event.delta)
            elif kind == "response.output_item.done":
                item = event.item
                if getattr(item, "type", "") == "function_call":
                    result.calls.append(
                        ToolCall(id=item.call_id, name=item.name, arguments=item.arguments or "")
                    )
                elif getattr(item, "type", "") == "message":
                    text = _message_text(item)
                    if text is not None:
                        result.text += text
            elif kind in ("response.completed", "response.incomplete"):
                finished = True
                response = event.response
                result.usage = _usage(getattr(response, "usage", None))
                if kind == "response.incomplete":
                    details = getattr(response, "incomplete_details", None)
                    result.finish = getattr(details, "reason", None) or "length"
                    if result.finish == "max_output_tokens":
                        result.finish = "length"
                break
            elif kind == "response.failed":
                error = getattr(event.response, "error", None)
                raise ModelFailed(getattr(error, "message", None) or "the response failed")
            elif kind == "error":
                raise ModelFailed(getattr(event, "message", None) or "the provider sent an error")
    if not finished:
        raise StreamTruncated(
            "the model's stream ended before response.completed: the answer is incomplete"
        )
    if not result.text:
        result.text = "".join(streamed)
    if result.calls and result.finish == "stop":
        result.finish = "tool_calls"
    return result
