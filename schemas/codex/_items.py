"""Thread items and user input: what a turn is made of.

`ThreadItem` is a tagged union on `"type"`. At runtime fields annotated `ThreadItem` decode through
`dec_hook`, which turns an item whose type this module does not model (or whose shape no longer
matches) into an `UnknownItem` carrying the raw object, so a new item type never breaks decoding
of the notification around it. Every decoder in this package passes `dec_hook`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import msgspec


class _ItemMarker:
    """Runtime stand-in for `ThreadItem`: not a msgspec type, so msgspec defers to `dec_hook`."""

    __slots__ = ()


class _Item(_ItemMarker, msgspec.Struct, tag_field="type", rename="camel"):
    """Base of every modelled item."""


class _Input(msgspec.Struct, tag_field="type", rename="camel", omit_defaults=True):
    """Base of the user-input variants."""


class TextInput(_Input, tag="text"):
    text: str
    text_elements: list[dict[str, Any]] = msgspec.field(default_factory=list, name="text_elements")


class ImageInput(_Input, tag="image"):
    url: str | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high", "original"] | None = None


class LocalImageInput(_Input, tag="localImage"):
    path: str
    detail: Literal["auto", "low", "high", "original"] | None = None


class AudioInput(_Input, tag="audio"):
    url: str | None = None
    file_id: str | None = None


class LocalAudioInput(_Input, tag="localAudio"):
    path: str


class SkillInput(_Input, tag="skill"):
    name: str
    path: str


class MentionInput(_Input, tag="mention"):
    name: str
    path: str


UserInput: TypeAlias = (
    TextInput
    | ImageInput
    | LocalImageInput
    | AudioInput
    | LocalAudioInput
    | SkillInput
    | MentionInput
)

CommandExecutionStatus: TypeAlias = Literal["inProgress", "completed", "failed", "declined"]
PatchApplyStatus: TypeAlias = Literal["inProgress", "completed", "failed", "declined"]
ToolCallStatus: TypeAlias = Literal["inProgress", "completed", "failed"]


class UserMessageItem(_Item, tag="userMessage"):
    id: str
    content: list[UserInput] = []
    client_id: str | None = None


class AgentMessageItem(_Item, tag="agentMessage"):
    id: str
    text: str = ""
    phase: str | None = None


class PlanItem(_Item, tag="plan"):
    id: str
    text: str = ""


class ReasoningItem(_Item, tag="reasoning"):
    id: str
    summary: list[str] = []
    content: list[str] = []


class CommandExecutionItem(_Item, tag="commandExecution"):
    id: str
    command: str
    status: CommandExecutionStatus
    cwd: str | None = None
    aggregated_output: str | None = None
    exit_code: int | None = None
    duration_ms: int | None = None
    process_id: str | None = None
    source: str | None = None
    command_actions: list[dict[str, Any]] = []


class PatchChangeKindAdd(msgspec.Struct, tag_field="type", tag="add"):
    pass


class PatchChangeKindDelete(msgspec.Struct, tag_field="type", tag="delete"):
    pass


class PatchChangeKindUpdate(msgspec.Struct, tag_field="type", tag="update"):
    move_path: str | None = None


class FileUpdateChange(msgspec.Struct):
    path: str
    kind: PatchChangeKindAdd | PatchChangeKindDelete | PatchChangeKindUpdate
    diff: str = ""


class FileChangeItem(_Item, tag="fileChange"):
    id: str
    status: PatchApplyStatus
    changes: list[FileUpdateChange] = []


class McpToolCallError(msgspec.Struct):
    message: str


class McpToolCallResult(msgspec.Struct, rename="camel"):
    content: list[Any] = []
    structured_content: Any = None


class McpToolCallItem(_Item, tag="mcpToolCall"):
    id: str
    server: str
    tool: str
    status: ToolCallStatus
    arguments: Any = None
    result: McpToolCallResult | None = None
    error: McpToolCallError | None = None
    duration_ms: int | None = None


class DynamicToolCallItem(_Item, tag="dynamicToolCall"):
    id: str
    tool: str
    status: ToolCallStatus
    arguments: Any = None
    success: bool | None = None
    duration_ms: int | None = None


class WebSearchItem(_Item, tag="webSearch"):
    id: str
    query: str = ""
    action: dict[str, Any] | None = None


class ImageViewItem(_Item, tag="imageView"):
    id: str
    path: str


class ContextCompactionItem(_Item, tag="contextCompaction"):
    id: str


class EnteredReviewModeItem(_Item, tag="enteredReviewMode"):
    id: str
    review: str


class ExitedReviewModeItem(_Item, tag="exitedReviewMode"):
    id: str
    review: str


class UnknownItem(_ItemMarker, msgspec.Struct):
    """An item this package does not model (or could not decode): kept raw, never an error."""

    type: str | None
    id: str | None
    raw: dict[str, Any]
    error: str | None = None


KnownThreadItem: TypeAlias = (
    UserMessageItem
    | AgentMessageItem
    | PlanItem
    | ReasoningItem
    | CommandExecutionItem
    | FileChangeItem
    | McpToolCallItem
    | DynamicToolCallItem
    | WebSearchItem
    | ImageViewItem
    | ContextCompactionItem
    | EnteredReviewModeItem
    | ExitedReviewModeItem
)

# Type checkers see the closed union (so `match` narrows); msgspec sees the marker base class and
# hands such fields to `dec_hook`, which is what makes the `UnknownItem` fallback possible.
if TYPE_CHECKING:
    ThreadItem: TypeAlias = KnownThreadItem | UnknownItem
else:
    ThreadItem = _ItemMarker

KNOWN_ITEM_TYPES: frozenset[str] = frozenset(
    cls.__struct_config__.tag  # type: ignore[misc]
    for cls in _Item.__subclasses__()
)


def dec_hook(tp: type[Any], obj: Any) -> Any:
    """msgspec `dec_hook`: decodes `ThreadItem` fields, falling back to `UnknownItem`."""
    if tp is not _ItemMarker:
        raise NotImplementedError(f"no decoder for {tp!r}")
    if not isinstance(obj, dict):
        raise msgspec.ValidationError(f"expected a thread item object, got {type(obj).__name__}")
    kind, item_id = obj.get("type"), obj.get("id")
    known = isinstance(kind, str) and kind in KNOWN_ITEM_TYPES
    error = None if known else f"unknown item type {kind!r}"
    if known:
        try:
            return msgspec.convert(obj, KnownThreadItem, dec_hook=dec_hook)
        except msgspec.ValidationError as exc:
            error = str(exc)
    return UnknownItem(
        type=kind if isinstance(kind, str) else None,
        id=item_id if isinstance(item_id, str) else None,
        raw=obj,
        error=error,
    )
