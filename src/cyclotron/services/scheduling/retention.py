"""Retention: remove the files of jobs that ended more than ``max_age`` ago (by stored end time)."""

from __future__ import annotations

import logging
from datetime import timedelta

from cyclotron.services.core import Core
from cyclotron.storage import jobs as repo
from cyclotron.storage.events import append_event
from cyclotron.storage.tables import utcnow

log = logging.getLogger(__name__)


def clean_expired_jobs(core: Core) -> int:
    """Remove expired job directories; running jobs are never touched, however old."""
    now = utcnow()
    removed = 0
    for service in core.catalog:
        max_age = service.settings.max_age
        if max_age is None:
            max_age = core.settings.retention.max_age
        if max_age == 0:
            continue
        with core.db.transaction(write=False) as session:
            expired = [
                j.id
                for j in repo.ended_jobs_not_cleaned(
                    session, service.name, now - timedelta(seconds=max_age)
                )
            ]
        for job_id in expired:
            with core.db.transaction() as session:
                marked = repo.mark_cleaned(session, job_id, utcnow())
                if marked:
                    append_event(session, job_id, "cleaned", {"max_age": max_age})
            # Files go only after the mark is committed: no reader ever sees a job shown
            # Completed whose files are gone.
            if marked:
                core.files.remove_job_dir(job_id)
                removed += 1
    if removed:
        log.info("retention removed the files of %d job(s)", removed)
    return removed
