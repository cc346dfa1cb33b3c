"""Job and task states, a job's stage, and the tables of their allowed transitions."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class JobState(StrEnum):
    UNKNOWN = "UNKNOWN"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    MERGING_QUEUED = "MERGING_QUEUED"
    MERGING_RUNNING = "MERGING_RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class TaskState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class JobStage(StrEnum):
    """The finer position of a job inside its state (shown by the faces, never decisive)."""

    QUEUED = "queued"
    PREPARING = "preparing"
    SUBMITTED = "submitted"
    RUNNING = "running"
    MERGING_QUEUED = "merging_queued"
    MERGING = "merging"
    DONE = "done"


_J = JobState
_T = TaskState
_S = JobStage

JOB_TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    _J.UNKNOWN: frozenset(JobState) - {_J.UNKNOWN},
    # PENDING and RUNNING reach COMPLETED directly when a worker stores the final results
    # (a batch job's collect step), and the merge states when workers report them.
    _J.PENDING: frozenset({_J.RUNNING, _J.MERGING_QUEUED, _J.COMPLETED, _J.FAILED, _J.CANCELED}),
    _J.RUNNING: frozenset(
        {_J.MERGING_QUEUED, _J.MERGING_RUNNING, _J.COMPLETED, _J.FAILED, _J.CANCELED}
    ),
    _J.MERGING_QUEUED: frozenset({_J.MERGING_RUNNING, _J.COMPLETED, _J.FAILED, _J.CANCELED}),
    # MERGING_RUNNING -> MERGING_QUEUED is the re-queue of a merge cut short by a crash.
    _J.MERGING_RUNNING: frozenset({_J.MERGING_QUEUED, _J.COMPLETED, _J.FAILED, _J.CANCELED}),
    _J.COMPLETED: frozenset(),
    _J.FAILED: frozenset(),
    _J.CANCELED: frozenset(),
}

TASK_TRANSITIONS: Mapping[TaskState, frozenset[TaskState]] = {
    # RUNNING -> PENDING is the re-queue of a task whose lease expired.
    # PENDING -> COMPLETED: a worker that reports only the end of a task.
    _T.PENDING: frozenset({_T.RUNNING, _T.COMPLETED, _T.FAILED, _T.CANCELED}),
    _T.RUNNING: frozenset({_T.PENDING, _T.COMPLETED, _T.FAILED, _T.CANCELED}),
    _T.COMPLETED: frozenset(),
    _T.FAILED: frozenset(),
    _T.CANCELED: frozenset(),
}

STAGE_TRANSITIONS: Mapping[JobStage, frozenset[JobStage]] = {
    # A stage only moves forward, and any stage may end. QUEUED and PREPARING skip ahead for
    # jobs run elsewhere: a worker's report may arrive before admission (a job with its own
    # executor is never admitted) or before the batch submission is recorded.
    _S.QUEUED: frozenset({_S.PREPARING, _S.RUNNING, _S.MERGING_QUEUED, _S.DONE}),
    _S.PREPARING: frozenset({_S.SUBMITTED, _S.RUNNING, _S.MERGING_QUEUED, _S.DONE}),
    _S.SUBMITTED: frozenset({_S.RUNNING, _S.MERGING_QUEUED, _S.DONE}),
    _S.RUNNING: frozenset({_S.MERGING_QUEUED, _S.MERGING, _S.DONE}),
    _S.MERGING_QUEUED: frozenset({_S.MERGING, _S.DONE}),
    # MERGING -> MERGING_QUEUED follows the job state's re-queue of a merge cut short.
    _S.MERGING: frozenset({_S.MERGING_QUEUED, _S.DONE}),
    _S.DONE: frozenset(),
}

JOB_TERMINAL = frozenset(s for s, nxt in JOB_TRANSITIONS.items() if not nxt)
TASK_TERMINAL = frozenset(s for s, nxt in TASK_TRANSITIONS.items() if not nxt)
JOB_ACTIVE = frozenset(JobState) - JOB_TERMINAL - {JobState.UNKNOWN}


def job_predecessors(target: JobState) -> frozenset[JobState]:
    """The states a job may be in for a change to ``target`` to be allowed."""
    return frozenset(s for s, nxt in JOB_TRANSITIONS.items() if target in nxt)


def task_predecessors(target: TaskState) -> frozenset[TaskState]:
    """The states a task may be in for a change to ``target`` to be allowed."""
    return frozenset(s for s, nxt in TASK_TRANSITIONS.items() if target in nxt)


def stage_predecessors(target: JobStage) -> frozenset[JobStage]:
    """The stages a job may be in for a move to stage ``target`` to be allowed."""
    return frozenset(s for s, nxt in STAGE_TRANSITIONS.items() if target in nxt)
