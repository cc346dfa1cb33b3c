"""YAPTIDE batch jobs on SLURM clusters (spec/yaptide.md §6): submission, status, cancel.

A batch job is stored like any simulation, with ``executor = "slurm"``, so the dispatcher
leaves it alone. This module's runner, one thread per server process, drives the ``slurm``
executor, which runs whole jobs (``Executor.runs_whole_jobs``):

- submits each new job once (the stage moves QUEUED → PREPARING under a compare-and-set, so
  one server process wins) and keeps where the executor put it (the job directory, the task
  array's and the collect job's ids) in the job's ``batch`` attributes;
- polls every ``[executors.slurm] poll_interval`` seconds with one call per cluster covering
  all of its active jobs, applies what the executor observed to the tasks and the merge, and
  never calls a cluster for a client's request.

The executor talks to the clusters (one connection per cluster, kept open) and reports what
it saw; the states are decided here. What the tasks and the collect step report (progress,
results) arrives through the worker routes with the job's update key.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from cyclotron.domain.batches import (
    BatchHandle,
    BatchSubmission,
    ClusterAccess,
    CollectObservation,
    JobBatch,
    JobObservation,
)
from cyclotron.domain.ports import Executor
from cyclotron.domain.records import ErrorKind
from cyclotron.domain.states import JOB_ACTIVE, TASK_TERMINAL, JobStage, JobState, TaskState
from cyclotron.errors import ConfigError, CyclotronError, InputError
from cyclotron.plugins import executor_class
from cyclotron.services.core import Core
from cyclotron.services.jobs.logs import store_log_texts
from cyclotron.services.running import reports as worker_reports
from cyclotron.services.yaptide.simulations import SLURM, update_key_for
from cyclotron.signing import SigningKeys
from cyclotron.storage import jobs as repo
from cyclotron.storage.tables import ClusterRow, JobRow, TaskRow
from cyclotron.storage.transitions import change_job_stage, end_job, end_open_tasks

log = logging.getLogger(__name__)

# What a job's ``batch`` attributes hold besides the executor's checked options.
_PLACEMENT = ("cluster", "job_dir", "array_id", "collect_id")


def _executor_type(core: Core) -> type[Executor]:
    built = core.executors.get(SLURM)
    return type(built) if built is not None else executor_class(SLURM)


def batch_request(core: Core, raw_options: Any, cluster_name: str) -> dict[str, Any]:
    """What a batch job keeps about its cluster: validated options (400 naming a bad item)."""
    return {"cluster": cluster_name, **_executor_type(core).job_options(raw_options)}


def _handle(batch: Mapping[str, Any]) -> BatchHandle:
    return BatchHandle(
        cluster=str(batch["cluster"]),
        job_dir=str(batch.get("job_dir") or ""),
        array_id=str(batch["array_id"]),
        collect_id=str(batch["collect_id"]),
    )


class BatchRunner:
    """Submits and watches batch jobs; one per server process, in a thread of its own."""

    def __init__(self, core: Core, default_api: str) -> None:
        self.core = core
        self.settings = core.settings.executors.slurm
        self.default_api = default_api
        self.keys = SigningKeys.of_server(core.settings)
        built = core.executors.get(SLURM)
        self.executor = built if built is not None else executor_class(SLURM)(core.settings)
        self._owns_executor = built is None
        if not self.executor.runs_whole_jobs:
            raise ConfigError(f"the {SLURM!r} executor does not run whole jobs")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_poll = float("-inf")

    # -- the thread ----------------------------------------------------------------------

    def start(self) -> None:
        self.executor.start_jobs(self)
        self._thread = threading.Thread(target=self._loop, name="batch", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._owns_executor:
            self.executor.stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("batch pass failed")
            self._wake.wait(min(1.0, self.settings.poll_interval))
            self._wake.clear()

    def run_once(self) -> None:
        self.submit_new()
        now = time.monotonic()
        if now - self._last_poll >= self.settings.poll_interval:
            self._last_poll = now
            self.poll()

    # -- clusters --------------------------------------------------------------------------

    def command_sent(self, cluster: str, program: str) -> None:
        """Count one scheduler command (the executor's JobReporter)."""
        self.core.metrics.cluster_commands.labels(cluster, program).inc()

    def _access(self, cluster: str) -> ClusterAccess:
        with self.core.db.transaction(write=False) as session:
            row = session.get(ClusterRow, cluster)
            if row is None or not row.enabled:
                raise InputError(f"Cluster '{cluster}' is not available")
            return ClusterAccess(row.name, dict(row.options or {}))

    def _mark_cluster(self, name: str, error: str | None) -> None:
        with self.core.db.transaction() as session:
            row = session.get(ClusterRow, name)
            if row is not None and row.last_error != error:
                row.last_error = error

    # -- submission ------------------------------------------------------------------------

    def submit_new(self) -> None:
        with self.core.db.transaction(write=False) as session:
            waiting = session.scalars(
                select(JobRow.id).where(
                    JobRow.executor == SLURM,
                    JobRow.state == JobState.PENDING.value,
                    JobRow.stage == JobStage.QUEUED.value,
                )
            ).all()
        for job_id in waiting:
            if self.core.files.is_staged(job_id):  # committed a moment ago: not in place yet
                continue
            with self.core.db.transaction() as session:
                won = change_job_stage(session, job_id, JobStage.PREPARING)
            if won:
                self._submit(job_id)

    def _submit(self, job_id: str) -> None:
        with self.core.db.transaction(write=False) as session:
            job = repo.find_job(session, job_id)
            assert job is not None
            attrs = dict(job.attrs or {})
            seeds = tuple(t.seed for t in repo.job_tasks(session, job_id))
            simulation_id, service, ntasks = job.yaptide_id or job.id, job.service, job.ntasks
        batch = dict(attrs.get("batch") or {})
        try:
            plugin = self.core.catalog.get(service).settings
            submission = self.executor.submit_job(
                JobBatch(
                    job_id=job_id,
                    report_id=simulation_id,
                    cluster=self._access(str(batch.get("cluster"))),
                    input_dir=self.core.files.input_dir(job_id),
                    ntasks=ntasks,
                    seeds=seeds,
                    service=service,
                    plugin=plugin.plugin,
                    plugin_options=plugin.options,
                    update_key=update_key_for(self.keys, simulation_id),
                    options={k: v for k, v in batch.items() if k not in _PLACEMENT},
                    api_url=self.default_api,
                )
            )
        except CyclotronError as exc:
            submission = BatchSubmission(None, error=str(exc))
        transcript = list(submission.transcript)
        if submission.handle is None:
            log.warning("submission of batch job %s failed: %s", job_id, submission.error)
            self._fail(job_id, f"submission to the cluster failed: {submission.error}", transcript)
            return
        handle = submission.handle
        store_log_texts(self.core, job_id, None, {"submit.log": "\n".join(transcript)})
        batch.update(job_dir=handle.job_dir, array_id=handle.array_id, collect_id=handle.collect_id)
        with self.core.db.transaction() as session:
            row = repo.find_job(session, job_id)
            if row is not None:
                row.attrs = {**(row.attrs or {}), "batch": batch}
            change_job_stage(session, job_id, JobStage.SUBMITTED)
        log.info(
            "batch job %s submitted: array %s, collect %s",
            job_id,
            handle.array_id,
            handle.collect_id,
        )

    def _fail(self, job_id: str, message: str, transcript: list[str]) -> None:
        store_log_texts(self.core, job_id, None, {"submit.log": "\n".join([*transcript, message])})
        kind = ErrorKind.EXECUTOR
        with self.core.db.transaction() as session:
            if end_job(session, job_id, JobState.FAILED, error=message, error_kind=kind):
                end_open_tasks(session, job_id, TaskState.FAILED, error=message, error_kind=kind)

    # -- status ----------------------------------------------------------------------------

    def poll(self) -> None:
        """One call per cluster over all of its active, submitted jobs."""
        with self.core.db.transaction(write=False) as session:
            rows = session.scalars(
                select(JobRow).where(
                    JobRow.executor == SLURM, JobRow.state.in_([s.value for s in JOB_ACTIVE])
                )
            ).all()
            by_cluster: dict[str, list[tuple[str, BatchHandle]]] = defaultdict(list)
            for row in rows:
                batch = dict((row.attrs or {}).get("batch") or {})
                if batch.get("array_id"):
                    by_cluster[str(batch["cluster"])].append((row.id, _handle(batch)))
        for cluster, jobs in by_cluster.items():
            try:
                access = self._access(cluster)
                observed = self.executor.poll_jobs(access, [handle for _, handle in jobs])
            except CyclotronError as exc:
                log.warning("status of cluster %s unavailable: %s", cluster, exc)
                self._mark_cluster(cluster, str(exc))
                continue
            self._mark_cluster(cluster, None)
            for job_id, handle in jobs:
                self._apply(job_id, observed[handle])

    def _apply(self, job_id: str, observed: JobObservation) -> None:
        with self.core.db.transaction(write=False) as session:
            row = repo.find_job(session, job_id)
            if row is None:
                return
            job = repo.job_record(row, repo.job_tasks(session, row.id))
            tasks = {t.index: t for t in repo.job_tasks(session, job_id)}
        updates: list[tuple[int, dict[str, Any]]] = []
        notes: dict[int, str] = {}
        for index, task in tasks.items():
            seen = observed.tasks.get(index)
            if seen is None or TaskState(task.state) in TASK_TERMINAL:
                continue
            if seen.target in (TaskState.RUNNING, TaskState.COMPLETED, TaskState.FAILED):
                if seen.target == TaskState.RUNNING and task.state == TaskState.RUNNING.value:
                    continue
                updates.append((index + 1, {"task_state": seen.target.value}))
                if seen.note:
                    notes[index] = seen.note
        for index, note in notes.items():
            store_log_texts(self.core, job_id, index, {"slurm.log": note})
        if updates:
            worker_reports.update_tasks(self.core, job, updates)
        self._apply_collect(job_id, observed.collect)

    def _apply_collect(self, job_id: str, collect: CollectObservation | None) -> None:
        if collect is None:
            return
        with self.core.db.transaction(write=False) as session:
            row = repo.find_job(session, job_id)
            if row is None or JobState(row.state) not in JOB_ACTIVE:
                return
            job = repo.job_record(row, repo.job_tasks(session, row.id))
            open_tasks = session.scalar(
                select(TaskRow.id).where(
                    TaskRow.job_id == job_id,
                    TaskRow.state.in_([TaskState.PENDING.value, TaskState.RUNNING.value]),
                )
            )
        if open_tasks is not None or collect.target is None:
            return
        if collect.target in (JobState.MERGING_QUEUED, JobState.MERGING_RUNNING):
            worker_reports.report_job(self.core, job, {"job_state": collect.target.value})
            return
        # The collect job ended and its results never arrived.
        message = collect.note or collect.state
        worker_reports.report_job(
            self.core, job, {"job_state": "FAILED", "log": {"collect": message}}
        )

    # -- cancel ----------------------------------------------------------------------------

    def cancel_remote(self, job_id: str) -> str | None:
        """Cancel the job on its cluster and remove its directory there; a message when the
        cluster could not be reached (then retried in the background)."""
        with self.core.db.transaction(write=False) as session:
            row = repo.find_job(session, job_id)
            batch = dict(((row.attrs if row else None) or {}).get("batch") or {})
        if not batch.get("array_id"):
            return None
        try:
            self.executor.cancel_job(self._access(str(batch["cluster"])), _handle(batch))
        except CyclotronError as exc:
            log.warning("cancel of batch job %s on the cluster failed: %s", job_id, exc)
            threading.Timer(self.settings.poll_interval, self.cancel_remote, (job_id,)).start()
            return "the cluster could not be reached; the cancel is retried in the background"
        return None
