"""Merges: the plug-in's merge of a job's completed tasks, the one step that ends a job.

A merge runs in a merge slot of its server process (``[dispatch] max_merges``) and under a
lease of that process, renewed while it works, like a task's; a job past the slots waits in
MERGING_QUEUED. A merge whose lease runs out or whose process died is queued again by the
dispatcher (``recover_lost_merges``), then run again (``resume_merges``): plug-ins write their
results atomically (a temporary file, then a rename) and a merge run again starts from an empty
results directory, so merging twice gives the same results.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from cyclotron.domain.records import ErrorKind
from cyclotron.domain.states import JobStage, JobState, TaskState
from cyclotron.errors import PluginError
from cyclotron.services.core import Core
from cyclotron.services.leases import local_owner_is_dead
from cyclotron.storage import jobs as repo
from cyclotron.storage.tables import JobRow, utcnow
from cyclotron.storage.transitions import change_job_state, end_job

log = logging.getLogger(__name__)


def merge_job(core: Core, job_id: str) -> None:
    """Run the plug-in's merge for a job queued for it, when this process has a merge slot
    free; else the job waits in MERGING_QUEUED for the dispatcher (``resume_merges``)."""
    if core.merge_slots.acquire(blocking=False):
        run_merge(core, job_id)


def run_merge(core: Core, job_id: str) -> None:
    """The merge of a job queued for it, in a merge slot the caller took (given back here);
    the one caller that wins MERGING_RUNNING does the work.

    A job sent to another executor (a SLURM batch job) is merged where its tasks ran (the
    collect step), which reports the results: it stays queued for that here.
    """
    try:
        _merge(core, job_id)
    finally:
        core.merge_slots.release()
        core.wake()


def _merge_lease_until(core: Core) -> datetime:
    return utcnow() + timedelta(seconds=core.settings.dispatch.lease_seconds)


def _merge(core: Core, job_id: str) -> None:
    owner = core.lease_owner
    with core.db.transaction() as session:
        row = repo.find_job(session, job_id)
        if row is None or row.executor is not None:
            return
        attempt = row.merge_attempts + 1
        won = change_job_state(
            session,
            job_id,
            JobState.MERGING_RUNNING,
            stage=JobStage.MERGING,
            merge_owner=owner,
            merge_expires_at=_merge_lease_until(core),
            merge_attempts=attempt,
        )
        completed = [
            t.index for t in repo.job_tasks(session, job_id) if t.state == TaskState.COMPLETED.value
        ]
    if not won:
        return
    if attempt > 1:  # what an attempt cut short wrote is not this one's to build on
        core.files.reset_results_dir(job_id)
    service = core.catalog.get(row.service)
    error: str | None = None
    with _MergeLease(core, job_id):
        try:
            service.plugin.merge(core.files.job_dir(job_id), completed)
        except PluginError as exc:
            error = str(exc)
        except Exception as exc:
            log.exception("merge of job %s failed", job_id)
            error = f"merge failed: {exc}"
    held = (JobRow.merge_owner == owner,)  # a merge presumed lost records nothing
    with core.db.transaction() as session:
        if error is None:
            end_job(session, job_id, JobState.COMPLETED, only_if=held)
        else:
            kind = ErrorKind.MERGE
            end_job(session, job_id, JobState.FAILED, error=error, error_kind=kind, only_if=held)


class _MergeLease:
    """Renews the lease of a merge this process runs every third of its length, until the
    merge returns (or another process took it over)."""

    def __init__(self, core: Core, job_id: str) -> None:
        self.core = core
        self.job_id = job_id
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._renew, name=f"merge-lease-{job_id[:8]}", daemon=True
        )

    def __enter__(self) -> _MergeLease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _renew(self) -> None:
        interval = self.core.settings.dispatch.lease_seconds / 3
        while not self._done.wait(interval):
            try:
                with self.core.db.transaction() as session:
                    held = repo.renew_merge_lease(
                        session, self.job_id, self.core.lease_owner, _merge_lease_until(self.core)
                    )
            except Exception:  # a passing database error: the next renewal may succeed
                log.warning("renewing the merge lease of job %s failed", self.job_id)
                continue
            if not held:
                log.warning("the merge of job %s was taken over by another process", self.job_id)
                return


def recover_lost_merges(core: Core) -> None:
    """Merges whose lease expired, or whose server process on this host died, are queued
    again (``resume_merges`` runs them) or, after ``max_attempts`` merges, fail with a reason."""
    now = utcnow()
    max_attempts = core.settings.dispatch.max_attempts
    requeued = False
    with core.db.transaction() as session:
        for job in repo.merges_held(session):
            owner = job.merge_owner or ""
            if owner == core.lease_owner:  # this process runs it, and renews its lease
                continue
            expired = job.merge_expires_at is None or job.merge_expires_at < now
            if not (expired or local_owner_is_dead(owner)):
                continue
            held = (JobRow.merge_owner == owner,)
            attempt = job.merge_attempts
            if attempt < max_attempts:
                requeued |= change_job_state(
                    session,
                    job.id,
                    JobState.MERGING_QUEUED,
                    stage=JobStage.MERGING_QUEUED,
                    only_if=held,
                    reason=f"merge lost after attempt {attempt} of {max_attempts}; queued again",
                    merge_owner=None,
                    merge_expires_at=None,
                )
                continue
            message = (
                f"lost: the merge stopped reporting (server restart or crash) "
                f"on attempt {attempt} of {max_attempts}"
            )
            end_job(
                session,
                job.id,
                JobState.FAILED,
                error=message,
                error_kind=ErrorKind.LOST,
                only_if=held,
            )
    if requeued:
        core.wake()


def resume_merges(core: Core) -> None:
    """Merges queued and not running: the server stopped between the last task and the merge,
    a lost merge was queued again, or every merge slot was taken when the last task ended.
    Each runs in a thread of its own while this process has merge slots free."""
    with core.db.transaction(write=False) as session:
        waiting = [
            j.id
            for j in repo.jobs_in_stage(session, JobStage.MERGING_QUEUED, JobState.MERGING_QUEUED)
            if j.executor is None
        ]
    for job_id in waiting:
        if not core.merge_slots.acquire(blocking=False):
            return
        thread = threading.Thread(
            target=run_merge, args=(core, job_id), name=f"merge-{job_id[:8]}", daemon=True
        )
        thread.start()


def drain_merges(core: Core, timeout: float) -> None:
    """Wait (at most ``timeout`` seconds) for the merges this process runs, taking every slot
    so that no new one starts: a merge cut by a stop would cost the job an attempt."""
    deadline = time.monotonic() + timeout
    for _ in range(core.settings.dispatch.max_merges):
        if not core.merge_slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
            log.warning("stopping with a merge still running; it will be run again")
            return
    for _ in range(core.settings.dispatch.max_merges):
        core.merge_slots.release()
