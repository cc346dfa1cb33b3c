"""Deleting ended jobs: the row, its tasks and events, and its directory."""

from __future__ import annotations

from cyclotron.domain.records import Caller, JobRecord
from cyclotron.domain.states import JOB_TERMINAL, JobState
from cyclotron.errors import ConflictError
from cyclotron.services.core import Core
from cyclotron.services.jobs.queries import JobRef, visible_job_row
from cyclotron.storage import jobs as repo


def delete_job(core: Core, caller: Caller, ref: JobRef) -> JobRecord:
    """Remove a terminal job (its number is never reused); ConflictError while it is active."""
    with core.db.transaction() as session:
        row = visible_job_row(session, caller, ref)
        if JobState(row.state) not in JOB_TERMINAL:
            raise ConflictError("the job is still active")
        record = repo.job_record(row)
        repo.delete_job(session, row.id)
    # After the commit: a failed commit must not leave a job without its files.
    core.files.remove_job_dir(record.id)
    return record
