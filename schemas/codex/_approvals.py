"""Server → client requests Piano answers: command-execution and file-change approvals.

`SERVER_REQUESTS` maps each handled method to its params struct; the answer is the matching
`...ApprovalResponse`. Any other server request must be answered with a JSON-RPC error.
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


SERVER_REQUESTS: dict[str, type[Any]] = {
    "item/commandExecution/requestApproval": CommandExecutionRequestApprovalParams,
    "item/fileChange/requestApproval": FileChangeRequestApprovalParams,
}
