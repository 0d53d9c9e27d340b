"""Server → client requests Piano answers: command-execution, file-change and MCP tool-call
approvals.

`SERVER_REQUESTS` maps each handled method to its params struct; the answer is the matching
`...Response`. Any other server request must be answered with a JSON-RPC error.

Codex asks whether an MCP tool may run (a server whose ``default_tools_approval_mode`` is
"prompt", or "auto"/"writes" for some tools) with an MCP elicitation: its ``_meta`` says
``codex_approval_kind: "mcp_tool_call"`` and names the tool and its arguments.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import msgspec

SimpleDecision: TypeAlias = Literal["accept", "acceptForSession", "decline", "cancel"]


class CommandExecutionRequestApprovalParams(msgspec.Struct, rename="camel"):
    thread_id: str
    turn_id: str
    item_id: str
    command: str | None = None
    cwd: str | None = None
    reason: str | None = None
    approval_id: str | None = None
    proposed_execpolicy_amendment: list[str] | None = None
    command_actions: list[dict[str, Any]] | None = None
    started_at_ms: int | None = None


class FileChangeRequestApprovalParams(msgspec.Struct, rename="camel"):
    thread_id: str
    turn_id: str
    item_id: str
    reason: str | None = None
    grant_root: str | None = None
    started_at_ms: int | None = None


class ExecpolicyAmendment(msgspec.Struct):
    execpolicy_amendment: list[str]


class AcceptWithExecpolicyAmendment(msgspec.Struct, rename="camel"):
    """Accept, and allow commands starting with this prefix from now on."""

    accept_with_execpolicy_amendment: ExecpolicyAmendment


class CommandExecutionRequestApprovalResponse(msgspec.Struct):
    decision: SimpleDecision | AcceptWithExecpolicyAmendment


class FileChangeRequestApprovalResponse(msgspec.Struct):
    decision: SimpleDecision


class McpServerElicitationRequestParams(msgspec.Struct, rename="camel"):
    """An MCP server (or codex on its behalf) asks the user; see the module documentation."""

    thread_id: str
    server_name: str
    message: str = ""
    mode: str = ""
    turn_id: str | None = None
    meta: Any = msgspec.field(default=None, name="_meta")

    def tool_call(self) -> tuple[str, Any] | None:
        """(tool name, arguments) if this asks whether an MCP tool may run, else None."""
        meta = self.meta
        if not isinstance(meta, dict) or meta.get("codex_approval_kind") != "mcp_tool_call":
            return None
        return str(meta.get("tool_name") or ""), meta.get("tool_params")


class McpServerElicitationRequestResponse(msgspec.Struct):
    action: Literal["accept", "decline", "cancel"]


SERVER_REQUESTS: dict[str, type[Any]] = {
    "item/commandExecution/requestApproval": CommandExecutionRequestApprovalParams,
    "item/fileChange/requestApproval": FileChangeRequestApprovalParams,
    "mcpServer/elicitation/request": McpServerElicitationRequestParams,
}
