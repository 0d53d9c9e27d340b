"""JSON-RPC framing of `codex app-server`: one JSON object per line, no `"jsonrpc"` member.

`decode_message(line)` turns one stdout line into an `RpcRequest` (server → client, params typed
for the methods in `SERVER_REQUESTS`), an `RpcResponse` (`result` left as `msgspec.Raw` for the
caller to decode with `decode_result`) or an `RpcNotification` (params typed for the methods in
`NOTIFICATIONS`, a plain dict otherwise). Unknown fields are ignored everywhere. A line that is
not a valid message raises `InvalidMessage`, whose `request_id` is set when the line was a request
that can still be answered with an error. `encode_message` is the inverse, newline included.
"""

from __future__ import annotations

from typing import Any, TypeAlias, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from ._approvals import SERVER_REQUESTS
from ._items import dec_hook
from ._notifications import NOTIFICATIONS, ThreadStartedNotification

T = TypeVar("T")
RequestId: TypeAlias = int | str

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class RpcErrorBody(msgspec.Struct, omit_defaults=True):
    code: int
    message: str
    data: Any = None


def _thread_id_of(params: Any) -> str | None:
    if isinstance(params, ThreadStartedNotification):
        return params.thread.id
    tid = params.get("threadId") if isinstance(params, dict) else getattr(params, "thread_id", None)
    return tid if isinstance(tid, str) else None


class RpcRequest(msgspec.Struct, omit_defaults=True):
    id: RequestId
    method: str
    params: Any = None

    @property
    def thread_id(self) -> str | None:
        return _thread_id_of(self.params)


class RpcNotification(msgspec.Struct, omit_defaults=True):
    method: str
    params: Any = None

    @property
    def thread_id(self) -> str | None:
        return _thread_id_of(self.params)


class RpcResponse(msgspec.Struct):
    id: RequestId
    result: Any | UnsetType = UNSET
    error: RpcErrorBody | UnsetType = UNSET


Message: TypeAlias = RpcRequest | RpcResponse | RpcNotification


class InvalidMessage(ValueError):
    """A stdout line that is not a usable message."""

    def __init__(
        self, reason: str, *, request_id: RequestId | None = None, method: str | None = None
    ) -> None:
        super().__init__(reason)
        self.request_id = request_id
        self.method = method


class _Envelope(msgspec.Struct):
    id: RequestId | None = None
    method: str | None = None
    params: msgspec.Raw | UnsetType = UNSET
    result: msgspec.Raw | UnsetType = UNSET
    error: RpcErrorBody | UnsetType = UNSET


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_encoder = msgspec.json.Encoder()
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decoder(tp: Any) -> msgspec.json.Decoder[Any]:
    dec = _decoders.get(tp)
    if dec is None:
        dec = _decoders[tp] = msgspec.json.Decoder(tp, dec_hook=dec_hook)
    return dec


def decode_result(raw: msgspec.Raw | bytes, tp: type[T]) -> T:
    """Decode a response `result` (or any params) into `tp`; raises `msgspec.ValidationError`."""
    result: T = _decoder(tp).decode(raw)
    return result


def _params(raw: msgspec.Raw | UnsetType, tp: Any) -> Any:
    return None if raw is UNSET else _decoder(tp).decode(raw)


def decode_message(line: bytes) -> Message:
    """Decode one line of `codex app-server` stdout; raises `InvalidMessage`."""
    try:
        env = _envelope_decoder.decode(line)
    except msgspec.DecodeError as exc:
        raise InvalidMessage(f"not a JSON-RPC message: {exc}") from exc
    method, msg_id = env.method, env.id
    if method is not None:
        typed = (SERVER_REQUESTS if msg_id is not None else NOTIFICATIONS).get(method, Any)
        try:
            params = _params(env.params, typed)
        except msgspec.ValidationError as exc:
            raise InvalidMessage(
                f"invalid params for {method}: {exc}", request_id=msg_id, method=method
            ) from exc
        if msg_id is None:
            return RpcNotification(method=method, params=params)
        return RpcRequest(id=msg_id, method=method, params=params)
    if msg_id is None or (env.result is UNSET and env.error is UNSET):
        raise InvalidMessage("neither a request, a response nor a notification")
    return RpcResponse(id=msg_id, result=env.result, error=env.error)


def encode_message(msg: Message) -> bytes:
    """Encode a message as one line (trailing newline included)."""
    return _encoder.encode(msg) + b"\n"
