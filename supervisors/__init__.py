"""OTP supervision trees for Piano's actor runtime.

A supervisor starts its children, watches them through links, restarts them by the rules of
its strategy and their restart type, and gives up (escalating to its own supervisor) when they
fail too often. `docs/supervision.md` is the guide; each module's docstring is the reference:
`supervisors._spec` (child specs), `supervisors._supervisor` (strategies, intensity, start and
shutdown), `supervisors._dynamic`, `supervisors._partition`, `supervisors._task`,
`supervisors._application`, `supervisors._ops` (operations on a running supervisor).
"""

from supervisors._application import Application
from supervisors._base import SupervisorStatistics
from supervisors._children import (
    AlreadyPresent,
    AlreadyStarted,
    ChildInfo,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    ChildStartError,
    ChildStatus,
    Counts,
    SupervisorError,
)
from supervisors._dynamic import DynamicSupervisor, MaxChildren
from supervisors._ops import (
    count_children,
    delete_child,
    restart_child,
    start_child,
    terminate_child,
    which_children,
)
from supervisors._partition import PartitionSupervisor, partition_for, which_partition
from supervisors._spec import Backoff, ChildSpec, ChildSpecError
from supervisors._supervisor import Supervisor
from supervisors._task import TaskHandle, TaskSupervisor, start_task

__all__ = [
    "AlreadyPresent",
    "AlreadyStarted",
    "Application",
    "Backoff",
    "ChildInfo",
    "ChildNotFound",
    "ChildRestarting",
    "ChildRunning",
    "ChildSpec",
    "ChildSpecError",
    "ChildStartError",
    "ChildStatus",
    "Counts",
    "DynamicSupervisor",
    "MaxChildren",
    "PartitionSupervisor",
    "Supervisor",
    "SupervisorError",
    "SupervisorStatistics",
    "TaskHandle",
    "TaskSupervisor",
    "count_children",
    "delete_child",
    "partition_for",
    "restart_child",
    "start_child",
    "start_task",
    "terminate_child",
    "which_children",
    "which_partition",
]
