"""What is kept on disk: the files of jobs that ended more than ``max_age`` ago (by stored end
time) are removed, and so are idempotency keys past their day; the data folder is swept of what
crashed processes left (staging leftovers, job directories no row refers to)."""

from __future__ import annotations

import logging
import shutil
from datetime import timedelta

from cyclotron.services.core import Core
from cyclotron.services.leases import local_owner_is_dead
from cyclotron.storage import jobs as repo
from cyclotron.storage.events import append_event
from cyclotron.storage.idempotency import KEY_LIFETIME, purge_keys
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
    with core.db.transaction() as session:
        purge_keys(session, now - KEY_LIFETIME)
    return removed


def sweep_data_dir(core: Core) -> None:
    """At start-up: sweep staging (``sweep_staging``), then move every job directory that no
    job row refers to out of ``jobs/`` into ``unreferenced/``, logging each.

    A job's directory enters ``jobs/`` only after its row is committed, so one without a row
    was left by an older version, a deletion cut short, or a database restored from an older
    backup: it is set aside for the operator, not removed.
    """
    sweep_staging(core)
    names = core.files.job_dir_names()  # listed first: each listed one's row is committed
    with core.db.transaction(write=False) as session:
        known = repo.existing_job_ids(session, names)
    for name in names:
        if name in known:
            continue
        try:
            target = core.files.set_aside(name)
        except FileNotFoundError:  # removed meanwhile (its job deleted by another process)
            continue
        log.warning("job directory %s has no job in the database; moved to %s", name, target)


def sweep_staging(core: Core) -> None:
    """What processes of this host that died left in staging: a job directory whose row was
    committed is moved into ``jobs/`` (the process died between the commit and the move); the
    rest (half-received uploads, directories of jobs never stored) is removed. Another live
    process's work, and another host's, is left alone."""
    for entry in core.files.staging_entries():
        if entry.process == core.files.process:
            continue
        if entry.process is not None and not local_owner_is_dead(entry.process):
            continue
        if entry.job_id is not None:
            with core.db.transaction(write=False) as session:
                stored = repo.find_job(session, entry.job_id) is not None
            if stored and not core.files.job_dir(entry.job_id).exists():
                try:
                    core.files.place_job_dir(entry.path, entry.job_id)
                except OSError:  # another server process of this host moved it first
                    continue
                log.info("moved the directory of job %s into place", entry.job_id)
                continue
        shutil.rmtree(entry.path, ignore_errors=True)
