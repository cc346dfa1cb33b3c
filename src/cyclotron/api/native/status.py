"""Core states as the five status words of this face, and the error codes it shows."""

from __future__ import annotations

from collections.abc import Iterable

from cyclotron.domain.records import ErrorKind, JobRecord, TaskRecord
from cyclotron.domain.states import JobStage, JobState, TaskState

STATUS_STATES: dict[str, frozenset[JobState]] = {
    "pending": frozenset({JobState.UNKNOWN, JobState.PENDING}),
    "running": frozenset({JobState.RUNNING, JobState.MERGING_QUEUED, JobState.MERGING_RUNNING}),
    "completed": frozenset({JobState.COMPLETED}),
    "failed": frozenset({JobState.FAILED}),
    "cancelled": frozenset({JobState.CANCELED}),
}
_STATUS_OF = {state: word for word, states in STATUS_STATES.items() for state in states}
TASK_STATUS = {
    TaskState.PENDING: "pending",
    TaskState.RUNNING: "running",
    TaskState.COMPLETED: "completed",
    TaskState.FAILED: "failed",
    TaskState.CANCELED: "cancelled",
}
_ERROR_CODES = {
    ErrorKind.INVALID: "invalid_input",
    ErrorKind.EXIT: "task_failed",
    ErrorKind.TIME_LIMIT: "task_failed",
    ErrorKind.LIMIT: "task_failed",
    ErrorKind.MERGE: "merge_failed",
    ErrorKind.EXECUTOR: "executor_error",
    ErrorKind.LOST: "lost",
}


def count(value: float) -> int | float:
    """A count of primaries as this face writes it: a whole number as an integer (2500, not
    2500.0); a fraction (a service counting something else) as it is."""
    return int(value) if float(value).is_integer() else value


def job_status(job: JobRecord) -> str:
    return _STATUS_OF[job.state]


def task_status(task: TaskRecord) -> str:
    return TASK_STATUS[task.state]


def states_for(statuses: Iterable[str]) -> frozenset[JobState]:
    """The core states behind status words (KeyError for a word that is not one)."""
    found: set[JobState] = set()
    for word in statuses:
        found |= STATUS_STATES[word]
    return frozenset(found)


def task_percent(task: TaskRecord) -> float:
    if task.state == TaskState.COMPLETED:
        return 100.0
    if task.progress_total > 0:
        return min(100.0, 100.0 * task.progress_done / task.progress_total)
    return 0.0


def job_stage(job: JobRecord) -> str:
    """The job's stage; while it runs, the stage its running tasks last reported, if they do
    (the most recently updated one's: AlphaFold 3's ``data_pipeline``, ``diffusion``…)."""
    if job.state != JobState.RUNNING or job.stage != JobStage.RUNNING:
        return job.stage.value
    return job.task_summary.stage or job.stage.value


def job_percent(job: JobRecord) -> float:
    """Weighted by work units when tasks report them; capped at 99 until the job completes."""
    if job.state == JobState.COMPLETED:
        return 100.0
    summary = job.task_summary
    completed = summary.tally(TaskState.COMPLETED)
    # Live tasks: all but the failed ones; a completed one counts whole.
    ended = (TaskState.COMPLETED, TaskState.FAILED)
    unfinished = [summary.tally(s) for s in TaskState if s not in ended]
    live = [completed, *unfinished]
    count = sum(t.count for t in live)
    if not count:
        return 0.0
    total = sum(t.progress_total for t in live)
    if total > 0 and sum(t.with_total for t in live) == count:
        done = completed.progress_total + sum(t.progress_done for t in unfinished)
        percent = 100.0 * done / total
    else:
        percent = (100.0 * completed.count + sum(t.percent for t in unfinished)) / count
    return round(min(percent, 99.0), 2)


def job_error(job: JobRecord) -> dict[str, str] | None:
    if job.state != JobState.FAILED:
        return None
    failed = job.task_summary.tally(TaskState.FAILED).count
    code = _ERROR_CODES.get(job.error_kind or "", "task_failed")
    if code == "task_failed" and failed > 1:
        code = "tasks_failed"
    return {"code": code, "message": job.error or "failed"}
