"""Stored events as the progress messages of spec/native.md §11 (WebSocket and SSE alike)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

from cyclotron.api.native.status import count, job_percent, job_stage, job_status, task_percent
from cyclotron.domain.records import JobRecord
from cyclotron.domain.states import JobStage, JobState, TaskState
from cyclotron.services.jobs.progress import EventRecord

TERMINAL_TYPES = frozenset({"completed", "failed", "cancelled"})
# Counters AlphaFold 3 progress messages add (spec/native.md §11).
PROGRESS_COUNTERS = ("recycling_iteration", "recycling_total", "diffusion_step", "diffusion_total")
_TERMINAL_STATES = {
    JobState.COMPLETED.value: "completed",
    JobState.FAILED.value: "failed",
    JobState.CANCELED.value: "cancelled",
}
_TASK_WORDS = {
    TaskState.PENDING.value: "pending",
    TaskState.RUNNING.value: "running",
    TaskState.COMPLETED.value: "completed",
    TaskState.FAILED.value: "failed",
    TaskState.CANCELED.value: "cancelled",
}


def _with_percent(message: dict[str, Any], percent: float) -> dict[str, Any]:
    message["percent"] = percent
    message["percent_complete"] = percent  # the AlphaFold 3 app's name for it
    return message


def snapshot(job: JobRecord) -> dict[str, Any]:
    """The job as it is now; ``seq`` is the last event it reflects."""
    tasks = [
        {
            "index": t.index,
            "state": _TASK_WORDS[t.state.value],
            "percent": round(task_percent(t), 2),
            "simulated_primaries": count(t.progress_done),
            "requested_primaries": count(t.progress_total),
        }
        for t in job.tasks
    ]
    message = {
        "type": "snapshot",
        "seq": job.last_event_seq,
        "status": job_status(job),
        "stage": job_stage(job),
        "tasks": tasks,
    }
    return _with_percent(message, job_percent(job))


def message_for(event: EventRecord, job: JobRecord) -> dict[str, Any] | None:
    """The message for one stored event, or None for bookkeeping events clients do not see.

    ``percent`` is the job's percent when the message is built (events store no percent).
    """
    data = event.data
    base: dict[str, Any] = {"seq": event.seq}
    percent = job_percent(job)
    if event.kind == "state":
        terminal = _TERMINAL_STATES.get(data.get("state", ""))
        if terminal == "completed":
            return _with_percent({"type": "completed", **base}, 100.0)
        if terminal == "failed":
            failed = {"type": "failed", **base, "error": data.get("reason") or job.error}
            return _with_percent(failed, percent)
        if terminal == "cancelled":
            return _with_percent({"type": "cancelled", **base}, percent)
        if "stage" not in data:
            return None
        return _with_percent({"type": "stage_change", **base, "stage": data["stage"]}, percent)
    if event.kind in ("stage", "submitted"):
        stage = data.get("stage", "queued")
        return _with_percent({"type": "stage_change", **base, "stage": stage}, percent)
    if event.kind == "task_state":
        state = _TASK_WORDS.get(data.get("state", ""), "pending")
        error = data.get("reason") if state == "failed" else None
        return {
            "type": "task_state",
            **base,
            "task_index": event.task_index,
            "state": state,
            "error": error,
        }
    if event.kind == "progress":
        done, total = float(data.get("done", 0)), float(data.get("total", 0))
        message = {
            "type": "progress",
            **base,
            "stage": data.get("stage") or job_stage(job),
            "task_index": event.task_index,
            "task_percent": round(100.0 * done / total, 2) if total > 0 else 0.0,
            "simulated_primaries": count(done),
            "requested_primaries": count(total),
            "eta_seconds": data.get("eta_seconds"),
        }
        message.update({k: data[k] for k in PROGRESS_COUNTERS if k in data})
        return _with_percent(message, percent)
    return None


class ProgressView:
    """The job as its event log says it was at each event, folded event by event.

    Messages are built from this view, not from the job as it is when they are built, so a
    message is the same live, replayed or resumed, for every subscriber: its ``stage`` and
    ``percent`` are those of the moment the event happened.
    """

    def __init__(self, job: JobRecord) -> None:
        self.job = job

    @classmethod
    def before_any_event(cls, job: JobRecord) -> ProgressView:
        """The view before the job's first event: pending, queued, no progress."""
        tasks = tuple(
            replace(t, state=TaskState.PENDING, progress_done=0.0, progress_total=0.0, stage=None)
            for t in job.tasks
        )
        return cls(
            replace(
                job,
                state=JobState.PENDING,
                stage=JobStage.QUEUED,
                error=None,
                tasks=tasks,
                last_event_seq=0,
            )
        )

    def message(self, event: EventRecord) -> dict[str, Any] | None:
        """Fold the event in; its message as of that moment (None for bookkeeping events)."""
        self.job = replace(self._applied(event), last_event_seq=event.seq)
        return message_for(event, self.job)

    def _applied(self, event: EventRecord) -> JobRecord:
        data, job = event.data, self.job
        if event.kind in ("state", "stage", "submitted"):
            submitted = event.kind == "submitted"  # a submission says no stage: queued
            state = _member(JobState, data.get("state")) or job.state
            stage = _member(JobStage, data.get("stage", "queued" if submitted else None))
            return replace(job, state=state, stage=stage or job.stage)
        tasks = list(job.tasks)
        at = next((i for i, t in enumerate(tasks) if t.index == event.task_index), None)
        if at is None:
            return job
        task = tasks[at]
        if event.kind == "task_state":
            task_state = _member(TaskState, data.get("state")) or task.state
            # A task that goes back to pending is retried from the start.
            done = 0.0 if task_state == TaskState.PENDING else task.progress_done
            restarted = task_state in (TaskState.PENDING, TaskState.RUNNING)
            reported = None if restarted else task.stage
            tasks[at] = replace(task, state=task_state, progress_done=done, stage=reported)
        elif event.kind == "progress":
            done, total = float(data.get("done", 0)), float(data.get("total", 0))
            tasks[at] = replace(
                task,
                progress_done=done,
                progress_total=total,
                stage=data.get("stage") or task.stage,
                last_update_at=event.created_at,
            )
        return replace(job, tasks=tuple(tasks))


_E = TypeVar("_E", JobState, JobStage, TaskState)


def _member(kind: type[_E], value: object) -> _E | None:
    """The enum member named by a stored value; None for a value this version does not know."""
    if not isinstance(value, str):
        return None
    try:
        return kind(value)
    except ValueError:
        return None


def terminal_message(job: JobRecord, events: list[EventRecord]) -> dict[str, Any] | None:
    """The message of the event that ended the job, found in ``events`` (the whole log) and
    built as it was sent live."""
    view = ProgressView.before_any_event(job)
    final = None
    for event in events:
        message = view.message(event)
        if message is not None and message["type"] in TERMINAL_TYPES:
            final = message
    return final
