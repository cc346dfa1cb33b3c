"""How long a job would run (``estimated_seconds`` of spec/native.md §9): the service's recent
throughput, in primaries per second of one task, applied to the job's shares of the primaries.

The estimate covers running, not waiting in the queue. Tasks run side by side as far as the
service's executor has slots; an executor that does not count its slots (remote workers) is
taken to run them all at once. Without completed tasks to learn from there is no estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sqlalchemy import select

from cyclotron.domain.states import TaskState
from cyclotron.services.core import Core
from cyclotron.storage.tables import JobRow, TaskRow

# The most recent completed tasks the throughput is measured over.
RECENT_TASKS = 50


def task_throughput(core: Core, service: str) -> float | None:
    """Primaries per second of one task of ``service``, over its recent completed tasks."""
    stmt = (
        select(TaskRow.progress_done, TaskRow.started_at, TaskRow.ended_at)
        .join(JobRow, JobRow.id == TaskRow.job_id)
        .where(
            JobRow.service == service,
            TaskRow.state == TaskState.COMPLETED.value,
            TaskRow.started_at.is_not(None),
            TaskRow.ended_at.is_not(None),
            TaskRow.progress_done > 0,
        )
        .order_by(TaskRow.ended_at.desc())
        .limit(RECENT_TASKS)
    )
    primaries = seconds = 0.0
    with core.db.transaction(write=False) as session:
        for done, started, ended in session.execute(stmt):
            ran = (ended - started).total_seconds() if started and ended else 0.0
            if ran > 0:  # tasks that took copied results ran for no time at all
                primaries += done
                seconds += ran
    return primaries / seconds if seconds > 0 else None


def estimated_seconds(core: Core, service: str, task_primaries: Sequence[int]) -> int | None:
    """Seconds the tasks would run once started (at least 1), or None without history."""
    rate = task_throughput(core, service)
    if rate is None or not task_primaries:
        return None
    executor = core.executor_of(service)
    slots = executor.free_slots() + executor.running() if executor is not None else 0
    waves = math.ceil(len(task_primaries) / slots) if slots > 0 else 1
    return max(1, math.ceil(waves * max(task_primaries) / rate))
