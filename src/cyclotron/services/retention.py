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
                # Marked first: a job shown Cleaned whose removal failed is retried by nobody,
                # but a job whose files vanished while shown Completed would break downloads.
                if not repo.mark_cleaned(session, job_id, utcnow()):
                    continue
                append_event(session, job_id, "cleaned", {"max_age": max_age})
                core.files.remove_job_dir(job_id)
            removed += 1
    if removed:
        log.info("retention removed the files of %d job(s)", removed)
    return removed
