"""How jobs look on the YAPTIDE face: task statuses, status messages, list items."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from cyclotron.api.yaptide.http import http_date
from cyclotron.domain.records import JobRecord, primaries_done
from cyclotron.domain.states import JOB_TERMINAL, JobState, TaskState
from cyclotron.services.intake.request import Answer

_TASK_STATES = {state.value: state for state in TaskState}
_ENDED = (TaskState.COMPLETED, TaskState.FAILED)


def task_statuses(job: JobRecord, tasks: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Each task's status from its row of ``storage.jobs.task_statuses`` (a job may have
    1,000 tasks, and its status is polled every second)."""
    created = job.created_at
    items = []
    for index, name, requested, done, total, started, ended, eta, updated in tasks:
        state = _TASK_STATES[name]
        item: dict[str, Any] = {
            "task_id": index + 1,
            "task_state": name,
            "requested_primaries": requested or 0,
            "simulated_primaries": primaries_done(state, requested, done, total),
            "last_update_time": http_date(updated or created),
        }
        if started is not None:
            item["start_time"] = http_date(started)
        if ended is not None:
            item["end_time"] = http_date(ended)
        if eta and ended is None and state not in _ENDED:
            hours, rest = divmod(int(eta), 3600)
            item["estimated_time"] = {"hours": hours, "minutes": rest // 60, "seconds": rest % 60}
        items.append(item)
    return items


def status_message(job: JobRecord, states: Counter[str]) -> str:
    """The status's message; ``states`` counts the job's tasks by state name."""
    message = f"Job state: {job.state.value}"
    failed = states[TaskState.FAILED.value]
    if job.state == JobState.COMPLETED and failed:
        merged = states[TaskState.COMPLETED.value]
        total = states.total()
        message += f" ({failed} of {total} tasks failed; results merged from {merged} tasks)"
    elif job.state == JobState.FAILED and job.error:
        message += f" ({job.error.splitlines()[0][:300]})"
    return message


def job_status(job: JobRecord, tasks: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """``GET /jobs/direct`` of a job and its tasks' rows (``storage.jobs.task_statuses``)."""
    states = Counter(row[1] for row in tasks) if job.state == JobState.COMPLETED else Counter()
    return {
        "message": status_message(job, states),
        "job_state": job.state.value,
        "job_tasks_status": task_statuses(job, tasks),
    }


def submission_answer(batch: bool) -> Callable[[JobRecord, bool], Answer]:
    """How a submission is answered (§3.9); the answer is kept with its idempotency key."""
    message = "Job waiting for submission" if batch else "Job submitted"
    return lambda job, _reused: Answer(202, {"message": message, "job_id": job.yaptide_id})


def progress(job: JobRecord) -> dict[str, Any]:
    tallies = [job.task_summary.tally(state) for state in TaskState]
    return progress_body(
        job.state.value,
        {state: tally.count for state, tally in zip(TaskState, tallies, strict=True)},
        sum(t.requested_primaries for t in tallies),
        sum(t.simulated_primaries for t in tallies),
    )


def progress_body(
    job_state: str, counts: Mapping[TaskState, int], requested: int, simulated: int
) -> dict[str, Any]:
    """A list item's ``progress``: the job's tasks counted by state, their primaries summed."""
    return {
        "job_state": job_state,
        "requested_primaries": requested,
        "simulated_primaries": simulated,
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
