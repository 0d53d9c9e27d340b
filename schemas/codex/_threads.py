"""Client → server requests Piano sends, and the thread/turn objects they return.

Each request params struct subclasses `Request[Response]`: it knows its JSON-RPC `method` and the
struct its result decodes into, so a client can offer one typed `call(params) -> Response`.
Params encode camelCase and omit every field left at its default (codex then applies its config).
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, Literal, TypeAlias, TypeVar

import msgspec

from ._items import ThreadItem, UserInput

R = TypeVar("R")

ApprovalPolicy: TypeAlias = Literal["untrusted", "on-request", "never"]
SandboxMode: TypeAlias = Literal["read-only", "workspace-write", "danger-full-access"]
TurnStatus: TypeAlias = Literal["completed", "interrupted", "failed", "inProgress"]
ThreadActiveFlag: TypeAlias = Literal["waitingOnApproval", "waitingOnUserInput"]
ReasoningSummary: TypeAlias = Literal["auto", "concise", "detailed", "none"]


class Request(msgspec.Struct, Generic[R], rename="camel", omit_defaults=True):
    """Params of a client request; `method` and `response_type` are set by each subclass."""

    method: ClassVar[str]
    response_type: ClassVar[type[Any]]


class _Out(msgspec.Struct, rename="camel", omit_defaults=True):
    """Base of structs Piano only sends."""


class _In(msgspec.Struct, rename="camel"):
    """Base of structs Piano only receives (unknown fields are ignored)."""


# --- sandbox policy (a tagged union both sent in turn/start and received in thread results) ---


class DangerFullAccessPolicy(_Out, tag_field="type", tag="dangerFullAccess"):
    pass


class ReadOnlyPolicy(_Out, tag_field="type", tag="readOnly"):
    network_access: bool = False


class ExternalSandboxPolicy(_Out, tag_field="type", tag="externalSandbox"):
    network_access: Literal["restricted", "enabled"] = "restricted"


class WorkspaceWritePolicy(_Out, tag_field="type", tag="workspaceWrite"):
    writable_roots: list[str] = []
    network_access: bool = False
    exclude_slash_tmp: bool = False
    exclude_tmpdir_env_var: bool = False


SandboxPolicy: TypeAlias = (
    DangerFullAccessPolicy | ReadOnlyPolicy | ExternalSandboxPolicy | WorkspaceWritePolicy
)

# --- thread and turn objects ---


class ThreadStatusNotLoaded(_In, tag_field="type", tag="notLoaded"):
    pass


class ThreadStatusIdle(_In, tag_field="type", tag="idle"):
    pass


class ThreadStatusSystemError(_In, tag_field="type", tag="systemError"):
    pass


class ThreadStatusActive(_In, tag_field="type", tag="active"):
    active_flags: list[ThreadActiveFlag] = []


ThreadStatus: TypeAlias = (
    ThreadStatusNotLoaded | ThreadStatusIdle | ThreadStatusSystemError | ThreadStatusActive
)


class TurnError(_In):
    message: str
    codex_error_info: str | dict[str, Any] | None = None
    additional_details: str | None = None


class Turn(_In):
    id: str
    status: TurnStatus
    items: list[ThreadItem] = []
    error: TurnError | None = None
    started_at: int | None = None
    completed_at: int | None = None
    duration_ms: int | None = None
    items_view: Literal["notLoaded", "summary", "full"] = "full"


class Thread(_In):
    id: str
    cwd: str | None = None
    path: str | None = None
    ephemeral: bool = False
    model: str | None = None
    model_provider: str | None = None
    name: str | None = None
    preview: str = ""
    status: ThreadStatus | None = None
    turns: list[Turn] = []
    created_at: int | None = None
    updated_at: int | None = None
    cli_version: str | None = None


# --- initialize ---


class ClientInfo(_Out):
    name: str
    version: str
    title: str | None = None


class InitializeCapabilities(_Out):
    experimental_api: bool = False
    opt_out_notification_methods: list[str] | None = None


class InitializeResponse(_In):
    user_agent: str
    codex_home: str
    platform_family: str | None = None
    platform_os: str | None = None


class InitializeParams(Request[InitializeResponse]):
    method = "initialize"
    response_type = InitializeResponse
    client_info: ClientInfo
    capabilities: InitializeCapabilities | None = None


# --- thread/start, thread/resume ---


class ThreadStartResponse(_In):
    thread: Thread
    model: str
    model_provider: str
    cwd: str
    approval_policy: str | dict[str, Any]
    sandbox: SandboxPolicy
    reasoning_effort: str | None = None


class ThreadResumeResponse(ThreadStartResponse):
    pass


class ThreadStartParams(Request[ThreadStartResponse]):
    method = "thread/start"
    response_type = ThreadStartResponse
    cwd: str | None = None
    model: str | None = None
    model_provider: str | None = None
    approval_policy: ApprovalPolicy | None = None
    sandbox: SandboxMode | None = None
    ephemeral: bool | None = None
    base_instructions: str | None = None
    developer_instructions: str | None = None
    config: dict[str, Any] | None = None


class ThreadResumeParams(Request[ThreadResumeResponse]):
    method = "thread/resume"
    response_type = ThreadResumeResponse
    thread_id: str
    cwd: str | None = None
    model: str | None = None
    model_provider: str | None = None
    approval_policy: ApprovalPolicy | None = None
    sandbox: SandboxMode | None = None
    base_instructions: str | None = None
    developer_instructions: str | None = None
    config: dict[str, Any] | None = None
    exclude_turns: bool | None = None


class ThreadLoadedListResponse(_In):
    data: list[str]
    next_cursor: str | None = None


class ThreadLoadedListParams(Request[ThreadLoadedListResponse]):
    """The threads this codex process has loaded (their rollouts open for writing)."""

    method = "thread/loaded/list"
    response_type = ThreadLoadedListResponse
    cursor: str | None = None
    limit: int | None = None


class ThreadUnsubscribeResponse(_In):
    status: Literal["notLoaded", "notSubscribed", "unsubscribed"]


class ThreadUnsubscribeParams(Request[ThreadUnsubscribeResponse]):
    """Stop following a thread; codex unloads it (closing its rollout) about a minute later."""

    method = "thread/unsubscribe"
    response_type = ThreadUnsubscribeResponse
    thread_id: str


class ThreadInjectItemsResponse(_In):
    pass


class ThreadInjectItemsParams(Request[ThreadInjectItemsResponse]):
    """Append raw Responses API items (``{"type": "message", "role": ..., "content": [...]}``)
    to a thread's model-visible history."""

    method = "thread/inject_items"
    response_type = ThreadInjectItemsResponse
    thread_id: str
    items: list[dict[str, Any]]


# --- model/list ---


class ReasoningEffortOption(_In):
    reasoning_effort: str
    description: str


class Model(_In):
    """One model of codex's catalogue for a provider (``model/list``)."""

    id: str
    model: str
    display_name: str
    description: str
    hidden: bool
    is_default: bool
    default_reasoning_effort: str
    supported_reasoning_efforts: list[ReasoningEffortOption]


class ModelListResponse(_In):
    data: list[Model]
    next_cursor: str | None = None


class ModelListParams(Request[ModelListResponse]):
    method = "model/list"
    response_type = ModelListResponse
    cursor: str | None = None
    include_hidden: bool | None = None
    limit: int | None = None
    model_provider: str | None = None


# --- turn/start, turn/steer, turn/interrupt ---


class TurnStartResponse(_In):
    turn: Turn


class TurnStartParams(Request[TurnStartResponse]):
    method = "turn/start"
    response_type = TurnStartResponse
    thread_id: str
    input: list[UserInput]
    cwd: str | None = None
    approval_policy: ApprovalPolicy | None = None
    sandbox_policy: SandboxPolicy | None = None
    model: str | None = None
    effort: str | None = None
    summary: ReasoningSummary | None = None
    output_schema: dict[str, Any] | None = None


class TurnSteerResponse(_In):
    turn_id: str


class TurnSteerParams(Request[TurnSteerResponse]):
    method = "turn/steer"
    response_type = TurnSteerResponse
    thread_id: str
    expected_turn_id: str
    input: list[UserInput]


class TurnInterruptResponse(_In):
    pass


class TurnInterruptParams(Request[TurnInterruptResponse]):
    method = "turn/interrupt"
    response_type = TurnInterruptResponse
    thread_id: str
    turn_id: str
