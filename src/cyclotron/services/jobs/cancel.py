"""Cancelling a job: a conditional state change, then the executor stops its processes."""

from __future__ import annotations

from dataclasses import dataclass

from cyclotron.domain.records import Caller, JobRecord
from cyclotron.domain.states import JOB_TERMINAL, JobState, TaskState
from cyclotron.errors import ConflictError, TransitionRefused
from cyclotron.services.core import Core
from cyclotron.services.jobs.queries import JobRef, get_job, visible_job_row
from cyclotron.storage import jobs as repo
from cyclotron.storage.transitions import end_job, end_open_tasks


@dataclass(frozen=True)
class CancelResult:
    job: JobRecord
    processes_stopped: bool


def cancel_job(core: Core, caller: Caller, ref: JobRef, wait: float = 10.0) -> CancelResult:
    """Cancel an active job. ConflictError if it had already ended; TransitionRefused if it
    ended between the read and the change (the conditional update lost)."""
    with core.db.transaction() as session:
        row = visible_job_row(session, caller, ref)
        job_id, service = row.id, row.service
        if JobState(row.state) in JOB_TERMINAL:
            raise ConflictError(f"Job is already {row.state}")
        repo.lock_job_tasks(session, job_id)
        won = end_job(session, job_id, JobState.CANCELED, error="cancelled on request")
        if not won:
            session.refresh(row)
            raise TransitionRefused("Job already finished", current=row.state)
        end_open_tasks(session, job_id, TaskState.CANCELED)
    stopped = True
    executor = core.executor_of(service)
    if executor is not None:
        executor.cancel(job_id)
        stopped = executor.wait_stopped(job_id, wait)
    core.wake()
    return CancelResult(job=get_job(core, caller, JobRef(job_id=job_id)), processes_stopped=stopped)


def termination_in_progress(core: Core, job: JobRecord) -> bool:
    """A cancelled job whose processes have not all ended yet."""
    executor = core.executor_of(job.service)
    return executor is not None and not executor.wait_stopped(job.id, 0.0)
