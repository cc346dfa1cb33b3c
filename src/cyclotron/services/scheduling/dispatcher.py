"""The dispatcher: admits jobs, prepares them, hands tasks to executors, recovers lost ones.

It runs in one background thread, woken whenever a job arrives or ends (in memory, and on
PostgreSQL from other server processes through LISTEN/NOTIFY), and at least once every
``dispatch.interval`` seconds, the safety net for a wake-up that was lost.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from datetime import timedelta

from sqlalchemy.orm import Session

from cyclotron.domain.ports import TaskOutcome, TaskRun
from cyclotron.domain.records import ErrorKind
from cyclotron.domain.states import JobStage, JobState, TaskState
from cyclotron.errors import PluginError
from cyclotron.services.core import WAKE_CHANNEL, Core
from cyclotron.services.leases import local_owner_is_dead, this_host
from cyclotron.services.running.lifecycle import TaskLifecycle, settle_job
from cyclotron.services.running.merges import (
    drain_merges,
    merge_job,
    recover_lost_merges,
    resume_merges,
)
from cyclotron.services.scheduling.admission import admit
from cyclotron.services.scheduling.retention import (
    clean_expired_jobs,
    sweep_data_dir,
    sweep_staging,
)
from cyclotron.storage import counts
from cyclotron.storage import jobs as repo
from cyclotron.storage.database import Listener
from cyclotron.storage.tables import TaskRow, utcnow
from cyclotron.storage.transitions import (
    LEASE_RELEASED,
    Held,
    change_job_stage,
    change_job_state,
    change_task_state,
    end_job,
    end_open_tasks,
)

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.lifecycle = TaskLifecycle(core)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: Listener | None = None
        self._last_cleaning = float("-inf")
        self._last_recovery = float("-inf")
        self._counts_folded = 0  # the job_counts row up to which this process folded

    def start(self) -> None:
        sweep_data_dir(self.core)
        for executor in self.core.executors.values():
            executor.start(self.lifecycle)
        self._thread = threading.Thread(target=self._loop, name="dispatcher", daemon=True)
        self._thread.start()
        self._listener = self.core.db.listen(WAKE_CHANNEL, self.core.woken_elsewhere)
        self.core.wake()

    def stop(self) -> None:
        running = sum(executor.running() for executor in self.core.executors.values())
        log.info("stopping; %d running task(s) will be queued again", running)
        self._stop.set()
        if self._listener is not None:
            self._listener.stop()
        self.core.wake()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for executor in self.core.executors.values():
            executor.stop()
        drain_merges(self.core, timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the loop must survive a passing database error
                log.exception("dispatcher pass failed")
                time.sleep(0.5)
            self.core.wait_for_wake(self.core.settings.dispatch.interval)

    def run_once(self) -> None:
        """A pass: housekeeping when its interval has passed, then admit, prepare and start.

        A wake-up (a job arrived or ended) only needs the second half, so it stays cheap.
        """
        now = time.monotonic()
        if now - self._last_recovery >= self.core.settings.dispatch.interval:
            self._last_recovery = now
            recover_lost_tasks(self.core)
            recover_lost_merges(self.core)
            sweep_staging(self.core)
            resume_merges(self.core)
            self._counts_folded = fold_job_counts(self.core, self._counts_folded)
        if now - self._last_cleaning >= self.core.settings.retention.interval:
            self._last_cleaning = now
            clean_expired_jobs(self.core)
        with self.core.db.transaction(write=False) as session:
            backlog = repo.dispatch_backlog(session)
        admitted = []
        if backlog.services_with_queued:
            admitted = admit(self.core, backlog.services_with_queued)
        prepared = 0
        if backlog.preparing:  # jobs admitted before this pass (or elsewhere) too
            prepared = prepare_admitted_jobs(self.core)
        elif admitted:
            prepared = prepare_admitted_jobs(self.core, admitted)
        if prepared or backlog.runnable_services:
            self.start_tasks()

    def start_tasks(self) -> None:
        """Claim as many runnable tasks as each executor has free slots, and start them."""
        for name, executor in self.core.executors.items():
            services = self.core.catalog.served_by(name)
            slots = executor.free_slots()
            if executor.counts_in_database and services and slots > 0:
                with self.core.db.transaction(write=False) as session:
                    slots -= repo.count_running_tasks(session, services)
            lease = executor.claim_lease_seconds(self.core.settings.dispatch.lease_seconds)
            for run, _ in claim_tasks(self.core, services, slots, lease):
                service = self.core.catalog.get(run.service)
                try:
                    executor.submit(run, service.plugin.progress_parser())
                except Exception as exc:
                    log.exception("executor %s refused %s/%s", name, run.job_id, run.task_index)
                    self.lifecycle.task_finished(
                        run, TaskOutcome(exit_code=None, error=f"could not start the task: {exc}")
                    )


def fold_job_counts(core: Core, after_id: int) -> int:
    """Fold the job totals' rows appended since ``after_id`` (storage/counts.py), so a total
    reads a few rows per key; the mark for the next fold."""
    with core.db.transaction(write=False) as session:
        if not counts.changed_since(session, after_id):
            return after_id
    with core.db.transaction() as session:
        return counts.fold(session, after_id)


def prepare_admitted_jobs(core: Core, admitted: list[tuple[str, str]] | None = None) -> int:
    """Let each newly admitted job's plug-in check its input; refused input ends it Invalid.

    ``admitted``: the jobs (id, service) to prepare, when the caller knows they are all there
    are; by default every job in the PREPARING stage."""
    jobs = admitted
    if jobs is None:
        with core.db.transaction(write=False) as session:
            jobs = [
                (j.id, j.service)
                for j in repo.jobs_in_stage(session, JobStage.PREPARING, JobState.PENDING)
            ]
    if not jobs:
        return 0
    # A job whose row was committed a moment ago may still have its directory in staging.
    jobs = [(job_id, service) for job_id, service in jobs if not core.files.is_staged(job_id)]
    refused: dict[str, str] = {}
    for job_id, service_name in jobs:
        try:
            core.catalog.get(service_name).plugin.validate(core.files.input_dir(job_id))
        except PluginError as exc:
            refused[job_id] = str(exc)
    with core.db.transaction() as session:
        for job_id, _ in jobs:
            if job_id in refused:
                reject_job(session, job_id, refused[job_id])
            else:
                change_job_stage(session, job_id, JobStage.SUBMITTED)
    if refused:
        core.wake()
    if len(jobs) > len(refused):  # runnable now, by whichever server has a free slot
        core.wake_others()
    return len(jobs) - len(refused)


def reject_job(session: Session, job_id: str, reason: str) -> None:
    """End a job whose input its plug-in refused (shown as Invalid), with its tasks."""
    repo.lock_job_tasks(session, job_id)
    if end_job(session, job_id, JobState.FAILED, error=reason, error_kind=ErrorKind.INVALID):
        end_open_tasks(
            session, job_id, TaskState.FAILED, error=reason, error_kind=ErrorKind.INVALID
        )


def claim_tasks(
    core: Core, services: list[str], slots: int, lease_seconds: float | None = None
) -> list[tuple[TaskRun, bool]]:
    """Take up to ``slots`` runnable tasks under a lease held by this process.

    Each comes with whether it ran before (its working directory must then be made anew).
    """
    if slots <= 0 or not services:
        return []
    now = utcnow()
    lease = core.settings.dispatch.lease_seconds if lease_seconds is None else lease_seconds
    lease_until = now + timedelta(seconds=lease)
    runs: list[tuple[TaskRun, bool]] = []
    with core.db.transaction() as session:
        for task in repo.runnable_tasks(session, services, slots):
            attempt = task.attempt + 1
            ran_before = task.started_at is not None
            won = change_task_state(
                session,
                task.job_id,
                task.index,
                TaskState.RUNNING,
                held=Held(task.attempt),
                attempt=attempt,
                lease_owner=core.lease_owner,
                lease_expires_at=lease_until,
                started_at=now,
                ended_at=None,
                pgid=None,
                error=None,
                error_kind=None,
                stage=None,
            )
            if not won:
                continue
            job = repo.find_job(session, task.job_id)
            assert job is not None
            change_job_state(
                session, job.id, JobState.RUNNING, stage=JobStage.RUNNING, started_at=now
            )
            if ran_before:  # before the plug-in prepares its command in the directory
                core.files.reset_task_dir(job.id, task.index)
            run = _task_run(core, job.id, job.service, job.ntasks, task.index, task.seed, attempt)
            runs.append((run, ran_before))
    return runs


def _task_run(
    core: Core, job_id: str, service_name: str, ntasks: int, index: int, seed: int, attempt: int
) -> TaskRun:
    service = core.catalog.get(service_name)
    workdir = core.files.task_dir(job_id, index)
    command = service.plugin.task_command(workdir, index, ntasks, seed=seed)
    env = {
        **command.env,
        "CYCLOTRON_JOB_ID": job_id,
        "CYCLOTRON_TASK_INDEX": str(index),
        "CYCLOTRON_NTASKS": str(ntasks),
        "CYCLOTRON_SEED": str(seed),
    }
    return TaskRun(
        job_id=job_id,
        service=service_name,
        task_index=index,
        attempt=attempt,
        workdir=workdir,
        stdout_path=core.files.log_path(job_id, index, "stdout"),
        stderr_path=core.files.log_path(job_id, index, "stderr"),
        command=replace(command, env=env),
        time_limit=service.settings.time_limit,
        limits=service.task_limits(),
    )


def recover_lost_tasks(core: Core) -> None:
    """Tasks whose lease expired, or whose server process on this host died, run again or fail."""
    now = utcnow()
    max_attempts = core.settings.dispatch.max_attempts
    settled: list[str] = []
    with core.db.transaction() as session:
        dead = [
            o for o in repo.local_lease_owners(session, this_host() + ":") if local_owner_is_dead(o)
        ]
        lost = {t.id: t for t in repo.expired_leases(session, now)}
        lost.update({t.id: t for t in repo.leases_held_by(session, dead)})
        for task in lost.values():
            _reap_orphan(core, session, task)
            held = (TaskRow.attempt == task.attempt, TaskRow.lease_owner == task.lease_owner)
            if task.attempt < max_attempts:
                change_task_state(
                    session,
                    task.job_id,
                    task.index,
                    TaskState.PENDING,
                    only_if=held,
                    reason=f"lost after attempt {task.attempt} of {max_attempts}; queued again",
                    **LEASE_RELEASED,
                )
                continue
            message = (
                f"lost: the task stopped reporting (server restart or crash) "
                f"on attempt {task.attempt} of {max_attempts}"
            )
            if change_task_state(
                session,
                task.job_id,
                task.index,
                TaskState.FAILED,
                only_if=held,
                reason=message,
                error=message,
                error_kind=ErrorKind.LOST,
                ended_at=now,
                **LEASE_RELEASED,
            ) and settle_job(core, session, task.job_id):
                settled.append(task.job_id)
    for job_id in settled:
        merge_job(core, job_id)
    if lost:
        core.wake()


def _reap_orphan(core: Core, session: Session, task: TaskRow) -> None:
    """Kill what is left of a lost attempt on this host, so two attempts never run at once."""
    job = repo.find_job(session, task.job_id)
    if (
        job is None
        or task.pgid is None
        or not (task.lease_owner or "").startswith(this_host() + ":")
    ):
        return
    executor = core.executor_of(job.service)
    if executor is not None:
        executor.reap_orphan(f"{task.job_id}/{task.index}/{task.attempt}", task.pgid)
