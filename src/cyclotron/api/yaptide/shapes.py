"""How jobs look on the YAPTIDE face: task statuses, status messages, list items."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cyclotron.api.yaptide.http import http_date
from cyclotron.domain.records import JobRecord, TaskRecord
from cyclotron.domain.states import JOB_TERMINAL, JobState, TaskState
from cyclotron.services.intake.request import Answer


def task_status(task: TaskRecord, job: JobRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        "task_id": task.index + 1,
        "task_state": task.state.value,
        "requested_primaries": task.requested_primaries or 0,
        "simulated_primaries": task.simulated_primaries,
        "last_update_time": http_date(task.last_update_at or job.created_at),
    }
    if task.started_at is not None:
        item["start_time"] = http_date(task.started_at)
    if task.ended_at is not None:
        item["end_time"] = http_date(task.ended_at)
    eta = task.estimated_seconds
    if eta and task.ended_at is None and task.state not in (TaskState.COMPLETED, TaskState.FAILED):
        hours, rest = divmod(int(eta), 3600)
        item["estimated_time"] = {"hours": hours, "minutes": rest // 60, "seconds": rest % 60}
    return item


def status_message(job: JobRecord) -> str:
    message = f"Job state: {job.state.value}"
    summary = job.task_summary
    failed = summary.tally(TaskState.FAILED).count
    if job.state == JobState.COMPLETED and failed:
        merged = summary.tally(TaskState.COMPLETED).count
        message += (
            f" ({failed} of {summary.count} tasks failed; results merged from {merged} tasks)"
        )
    elif job.state == JobState.FAILED and job.error:
        message += f" ({job.error.splitlines()[0][:300]})"
    return message


def job_status(job: JobRecord) -> dict[str, Any]:
    return {
        "message": status_message(job),
        "job_state": job.state.value,
        "job_tasks_status": [task_status(t, job) for t in job.tasks],
    }


def submission_answer(batch: bool) -> Callable[[JobRecord, bool], Answer]:
    """How a submission is answered (§3.9); the answer is kept with its idempotency key."""
    message = "Job waiting for submission" if batch else "Job submitted"
    return lambda job, _reused: Answer(202, {"message": message, "job_id": job.yaptide_id})


def progress(job: JobRecord) -> dict[str, Any]:
    tallies = [job.task_summary.tally(state) for state in TaskState]
    counts = {state: tally.count for state, tally in zip(TaskState, tallies, strict=True)}
    return {
        "job_state": job.state.value,
        "requested_primaries": sum(t.requested_primaries for t in tallies),
        "simulated_primaries": sum(t.simulated_primaries for t in tallies),
        "tasks_total": sum(counts.values()),
        "tasks_pending": counts[TaskState.PENDING],
        "tasks_running": counts[TaskState.RUNNING],
        "tasks_completed": counts[TaskState.COMPLETED],
        "tasks_failed": counts[TaskState.FAILED],
        "tasks_canceled": counts[TaskState.CANCELED],
    }


def list_item(job: JobRecord, server_name: str) -> dict[str, Any]:
    input_type = str(job.attrs.get("input_type", "files"))
    platform = str(job.attrs.get("platform", "DIRECT"))
    item: dict[str, Any] = {
        "job_id": job.yaptide_id,
        "title": job.attrs.get("title", job.name),
        "start_time": http_date(job.created_at),
        "end_time": http_date(job.ended_at),
        "sim_type": job.service,
        "input_type": input_type.lower(),
        "platform": platform.lower(),
        "ntasks": job.ntasks,
        "metadata": {
            "platform": platform.upper(),
            "server": server_name,
            "input_type": input_type.upper(),
            "sim_type": job.service,
        },
        "progress": progress(job),
    }
    if job.attrs.get("stands_in_for") and job.attrs.get("engine"):
        # A job another engine ran in place of its sim_type's: the web UI shows each entry
        # of metadata as a label, so the substitution is in sight (a departure from the four
        # keys of yaptide.md §3.18, for such jobs only).
        item["metadata"]["engine"] = str(job.attrs["engine"])
    # Only a final state is safe in the list: the web UI lays list fields over later polls.
    if job.state in JOB_TERMINAL:
        item["job_state"] = job.state.value
    return item
