"""YAPTIDE batch jobs on SLURM clusters (spec/yaptide.md §6): submission, status, cancel.

A batch job is stored like any simulation, with ``executor = "slurm"``, so the dispatcher
leaves it alone. This module's runner, one thread per server process, then:

- submits each new job once (the stage moves QUEUED → PREPARING under a compare-and-set, so
  one server process wins): uploads the input with ``job.json`` and the update key (a 0600
  file), and sends a task array ``1..n`` and a collect job that depends on it (``afterany``);
- polls every ``[executors.slurm] poll_interval`` seconds with one ``squeue`` call per
  cluster covering all of its active jobs, maps the states of spec §6 onto the tasks and the
  merge, and never calls a cluster for a client's request.

Each cluster is reached over one SSH connection, kept open and shared by every command
(or with local commands when its ``host`` is ``local``). What the tasks and the collect step
report (progress, results) arrives through the worker routes with the job's update key.
"""

from __future__ import annotations

import json
import logging
import shlex
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cyclotron.domain.records import ErrorKind
from cyclotron.domain.states import JOB_ACTIVE, TASK_TERMINAL, JobStage, JobState, TaskState
from cyclotron.errors import CyclotronError, InputError
from cyclotron.executors.slurm import commands
from cyclotron.executors.slurm.remote import (
    CommandResult,
    LocalRemote,
    Remote,
    SshRemote,
    SshTarget,
)
from cyclotron.services.access.tokens import SigningKeys
from cyclotron.services.core import Core
from cyclotron.services.jobs.logs import store_log_texts
from cyclotron.services.running import reports as worker_reports
from cyclotron.services.yaptide.simulations import SLURM, update_key_for
from cyclotron.storage import jobs as repo
from cyclotron.storage.tables import ClusterRow, JobRow, TaskRow
from cyclotron.storage.transitions import end_job, end_open_tasks

log = logging.getLogger(__name__)

STEPS_MODULE = "cyclotron.executors.slurm.steps"
LOCAL_HOST = "local"


@dataclass(frozen=True)
class ClusterAccess:
    """How to reach one cluster and run Cyclotron's steps there (its ``options``)."""

    name: str
    host: str
    username: str
    port: int
    key_path: str | None
    known_hosts_path: str | None
    accept_unknown_host: bool
    work_dir: str  # absolute, on the cluster's shared file system
    python: str  # a Python with Cyclotron installed, on the compute nodes
    api_url: str  # where the compute nodes reach this server

    @classmethod
    def of(cls, name: str, options: Mapping[str, Any], default_api: str) -> ClusterAccess:
        work_dir = str(options.get("work_dir") or "")
        if not work_dir.startswith("/"):
            raise InputError(f"cluster {name!r} has no absolute work_dir configured")
        return cls(
            name=name,
            host=str(options.get("host") or LOCAL_HOST),
            username=str(options.get("user") or ""),
            port=int(options.get("port") or 22),
            key_path=options.get("key_path"),
            known_hosts_path=options.get("known_hosts_path"),
            accept_unknown_host=bool(options.get("accept_unknown_host", False)),
            work_dir=work_dir.rstrip("/"),
            python=str(options.get("python") or "python3"),
            api_url=str(options.get("api_url") or default_api).rstrip("/"),
        )

    def connect(self) -> Remote:
        if self.host == LOCAL_HOST:
            return LocalRemote()
        return SshRemote(
            SshTarget(
                host=self.host,
                username=self.username,
                port=self.port,
                key_path=Path(self.key_path) if self.key_path else None,
                known_hosts_path=Path(self.known_hosts_path) if self.known_hosts_path else None,
                accept_unknown_host=self.accept_unknown_host,
            )
        )


def batch_request(core: Core, raw_options: Any, cluster_name: str) -> dict[str, Any]:
    """What a batch job keeps about its cluster: validated options (400 naming a bad item)."""
    options = commands.batch_options(raw_options)
    return {
        "cluster": cluster_name,
        "array_options": dict(options.array_options),
        "array_header": list(options.array_header),
        "collect_options": dict(options.collect_options),
        "collect_header": list(options.collect_header),
    }


def _options_of(batch: Mapping[str, Any]) -> commands.BatchOptions:
    return commands.BatchOptions(
        array_options=dict(batch.get("array_options") or {}),
        array_header=tuple(batch.get("array_header") or ()),
        collect_options=dict(batch.get("collect_options") or {}),
        collect_header=tuple(batch.get("collect_header") or ()),
    )


class BatchRunner:
    """Submits and watches batch jobs; one per server process, in a thread of its own."""

    def __init__(self, core: Core, default_api: str) -> None:
        self.core = core
        self.settings = core.settings.executors.slurm
        self.default_api = default_api
        self.keys = SigningKeys.of_server(core.settings)
        self._remotes: dict[str, Remote] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_poll = float("-inf")

    # -- the thread ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="batch", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            for remote in self._remotes.values():
                remote.close()
            self._remotes.clear()

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

    def _access(self, cluster: str) -> ClusterAccess:
        with self.core.db.transaction(write=False) as session:
            row = session.get(ClusterRow, cluster)
            if row is None or not row.enabled:
                raise InputError(f"Cluster '{cluster}' is not available")
            return ClusterAccess.of(row.name, row.options or {}, self.default_api)

    def _remote(self, access: ClusterAccess) -> Remote:
        with self._lock:
            remote = self._remotes.get(access.name)
            if remote is None:
                remote = self._remotes[access.name] = access.connect()
            return remote

    def _run(self, access: ClusterAccess, command: str) -> CommandResult:
        program = command.split(" ", 1)[0]
        self.core.metrics.cluster_commands.labels(access.name, program).inc()
        return self._remote(access).run(command, timeout=self.settings.command_timeout)

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
            with self.core.db.transaction() as session:
                won = repo.set_job_stage(
                    session, job_id, JobStage.PREPARING, only_from=JobStage.QUEUED
                )
            if won:
                self._submit(job_id)

    def _submit(self, job_id: str) -> None:
        with self.core.db.transaction(write=False) as session:
            job = repo.find_job(session, job_id)
            assert job is not None
            attrs = dict(job.attrs or {})
            seeds = [t.seed for t in repo.job_tasks(session, job_id)]
            simulation_id, service, ntasks = job.yaptide_id or job.id, job.service, job.ntasks
        batch = dict(attrs.get("batch") or {})
        transcript: list[str] = []
        try:
            access = self._access(str(batch.get("cluster")))
            remote = self._remote(access)
            job_dir = f"{access.work_dir}/{simulation_id}"
            plugin = self.core.catalog.get(service).settings
            spec = {
                "job_id": simulation_id,
                "api_url": access.api_url,
                "service": service,
                "plugin": plugin.plugin,
                "options": plugin.options,
                "ntasks": ntasks,
                "seeds": seeds,
            }
            timeout = self.settings.command_timeout
            remote.run(f"mkdir -p {shlex.quote(job_dir)}/logs", timeout=timeout).check("mkdir")
            remote.put_tree(self.core.files.input_dir(job_id), f"{job_dir}/input")
            remote.write_file(f"{job_dir}/job.json", json.dumps(spec).encode())
            key = update_key_for(self.keys, simulation_id)
            remote.write_file(f"{job_dir}/.update-key", key.encode(), mode=0o600)
            options = _options_of(batch)
            step = [access.python, "-m", STEPS_MODULE]
            array = commands.array_script(
                job_dir,
                ntasks,
                options,
                [[*step, "task", job_dir, commands.ARRAY_TASK_ID]],
                job_name=f"cyclotron-{job_id[:8]}",
            )
            collect = commands.collect_script(
                job_dir,
                options,
                [[*step, "collect", job_dir]],
                job_name=f"cyclotron-{job_id[:8]}-collect",
            )
            remote.write_file(f"{job_dir}/array.sh", array.encode())
            remote.write_file(f"{job_dir}/collect.sh", collect.encode())
            submitted = self._run(access, commands.sbatch_command(f"{job_dir}/array.sh"))
            transcript.append(f"$ sbatch array.sh\n{submitted.stdout}{submitted.stderr}")
            array_id = commands.parse_sbatch(submitted.check("sbatch").stdout)
            dependent = commands.sbatch_command(f"{job_dir}/collect.sh", dependency=array_id)
            submitted = self._run(access, dependent)
            transcript.append(f"$ sbatch collect.sh\n{submitted.stdout}{submitted.stderr}")
            collect_id = commands.parse_sbatch(submitted.check("sbatch").stdout)
        except (CyclotronError, commands.UnexpectedOutput, ValueError, OSError) as exc:
            log.warning("submission of batch job %s failed: %s", job_id, exc)
            self._fail(job_id, f"submission to the cluster failed: {exc}", transcript)
            return
        store_log_texts(self.core, job_id, None, {"submit.log": "\n".join(transcript)})
        batch.update(job_dir=job_dir, array_id=array_id, collect_id=collect_id)
        with self.core.db.transaction() as session:
            row = repo.find_job(session, job_id)
            if row is not None:
                row.attrs = {**(row.attrs or {}), "batch": batch}
            repo.set_job_stage(session, job_id, JobStage.SUBMITTED, only_from=JobStage.PREPARING)
        log.info("batch job %s submitted: array %s, collect %s", job_id, array_id, collect_id)

    def _fail(self, job_id: str, message: str, transcript: list[str]) -> None:
        store_log_texts(self.core, job_id, None, {"submit.log": "\n".join([*transcript, message])})
        kind = ErrorKind.EXECUTOR
        with self.core.db.transaction() as session:
            if end_job(session, job_id, JobState.FAILED, error=message, error_kind=kind):
                end_open_tasks(session, job_id, TaskState.FAILED, error=message, error_kind=kind)

    # -- status ----------------------------------------------------------------------------

    def poll(self) -> None:
        """One squeue per cluster over all of its active, submitted jobs."""
        with self.core.db.transaction(write=False) as session:
            rows = session.scalars(
                select(JobRow).where(
                    JobRow.executor == SLURM, JobRow.state.in_([s.value for s in JOB_ACTIVE])
                )
            ).all()
            by_cluster: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
            for row in rows:
                batch = dict((row.attrs or {}).get("batch") or {})
                if batch.get("array_id"):
                    by_cluster[str(batch["cluster"])].append((row.id, batch))
        for cluster, jobs in by_cluster.items():
            ids = [str(b[k]) for _, b in jobs for k in ("array_id", "collect_id")]
            try:
                access = self._access(cluster)
                result = self._run(access, commands.squeue_command(ids))
                states = commands.parse_squeue(
                    result.stdout, exit_status=result.exit_status, stderr=result.stderr
                )
            except (CyclotronError, commands.UnexpectedOutput, ValueError) as exc:
                log.warning("status of cluster %s unavailable: %s", cluster, exc)
                self._mark_cluster(cluster, str(exc))
                continue
            self._mark_cluster(cluster, None)
            for job_id, batch in jobs:
                self._apply(job_id, batch, states)

    def _apply(self, job_id: str, batch: Mapping[str, Any], states: Mapping[Any, str]) -> None:
        with self.core.db.transaction(write=False) as session:
            row = repo.find_job(session, job_id)
            if row is None:
                return
            job = repo.job_record(row, repo.job_tasks(session, row.id))
            tasks = {t.index: t for t in repo.job_tasks(session, job_id)}
        updates: list[tuple[int, dict[str, Any]]] = []
        notes: dict[int, str] = {}
        array_id = str(batch["array_id"])
        for index, task in tasks.items():
            state = states.get((array_id, index + 1))
            if state is None or TaskState(task.state) in TASK_TERMINAL:
                continue
            effect = commands.task_effect(state)
            if effect.target in (TaskState.RUNNING, TaskState.COMPLETED, TaskState.FAILED):
                if effect.target == TaskState.RUNNING and task.state == TaskState.RUNNING.value:
                    continue
                updates.append((index + 1, {"task_state": effect.target.value}))
                if effect.note:
                    notes[index] = effect.note
        for index, note in notes.items():
            store_log_texts(self.core, job_id, index, {"slurm.log": note})
        if updates:
            worker_reports.update_tasks(self.core, job, updates)
        self._apply_collect(job_id, str(batch["collect_id"]), states)

    def _apply_collect(self, job_id: str, collect_id: str, states: Mapping[Any, str]) -> None:
        state = states.get((collect_id, None))
        if state is None:
            return
        effect = commands.collect_effect(state)
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
        if open_tasks is not None or effect is None:
            return
        if effect in (JobState.MERGING_QUEUED, JobState.MERGING_RUNNING):
            worker_reports.report_job(self.core, job, {"job_state": effect.value})
            return
        # The collect job ended and its results never arrived.
        message = commands.COLLECT_NO_RESULTS
        worker_reports.report_job(
            self.core, job, {"job_state": "FAILED", "log": {"collect": f"{message} ({state})"}}
        )

    # -- cancel ----------------------------------------------------------------------------

    def cancel_remote(self, job_id: str) -> str | None:
        """scancel the job's array and collect job and remove its directory; a message when
        the cluster could not be reached (then retried in the background)."""
        with self.core.db.transaction(write=False) as session:
            row = repo.find_job(session, job_id)
            batch = dict(((row.attrs if row else None) or {}).get("batch") or {})
        if not batch.get("array_id"):
            return None
        try:
            access = self._access(str(batch["cluster"]))
            ids = [str(batch["array_id"]), str(batch["collect_id"])]
            self._run(access, commands.scancel_command(ids)).check("scancel")
            if not self.settings.keep_job_dir and batch.get("job_dir"):
                self._remote(access).remove_tree(str(batch["job_dir"]))
        except (CyclotronError, ValueError) as exc:
            log.warning("cancel of batch job %s on the cluster failed: %s", job_id, exc)
            threading.Timer(self.settings.poll_interval, self.cancel_remote, (job_id,)).start()
            return "the cluster could not be reached; the cancel is retried in the background"
        return None
