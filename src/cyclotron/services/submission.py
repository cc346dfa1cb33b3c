"""Submitting jobs: one transaction stores the job, its tasks and its input."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from cyclotron.domain.records import JobRecord
from cyclotron.domain.states import JobStage, JobState
from cyclotron.services.core import Core
from cyclotron.storage import jobs as repo
from cyclotron.storage.events import append_event
from cyclotron.storage.tables import JobRow, utcnow


def submit_staged_files(
    core: Core,
    *,
    owner_id: int,
    service_name: str,
    staged_input: Path,
    name_prefix: str = "upload",
    ntasks: int = 1,
    priority: int = 0,
) -> JobRecord:
    """Create a job from files already staged on disk (they are moved, not copied).

    Nothing runs yet; the dispatcher is woken to consider it.
    """
    core.catalog.require_available(service_name)
    job_id = uuid.uuid4().hex
    try:
        with core.db.transaction() as session:
            row = repo.add_job(
                session,
                JobRow(
                    id=job_id,
                    owner_id=owner_id,
                    service=service_name,
                    name=name_prefix,
                    state=JobState.PENDING.value,
                    stage=JobStage.QUEUED.value,
                    priority=priority,
                    ntasks=ntasks,
                    created_at=utcnow(),
                ),
                ntasks,
            )
            row.name = f"{name_prefix}-{row.number}"
            append_event(session, job_id, "submitted", {"service": service_name, "ntasks": ntasks})
            core.files.create_job_dir(job_id, staged_input, ntasks)
            record = repo.job_record(row, repo.job_tasks(session, job_id))
    except BaseException:
        shutil.rmtree(core.files.job_dir(job_id), ignore_errors=True)
        raise
    core.wake()
    return record
