"""The ``slurm`` executor: whole jobs as a task array plus a collect step on SLURM clusters.

It takes no single tasks from the dispatcher; the services hand it whole jobs
(``submit_job``), ask it what the clusters show (``poll_jobs``: one ``squeue`` per cluster
for all of its jobs) and cancel them (``cancel_job``). Submitting uploads the input with
``job.json`` and the update key (a 0600 file), and sends a task array ``1..n`` and a collect
job that depends on it (``afterany``); the steps (:mod:`.steps`) then report through the
worker routes. It reports what the cluster shows, mapped by :func:`.commands.task_effect` and
:func:`.commands.collect_effect`; the services decide what that changes.

Each cluster is reached over one SSH connection, kept open and shared by every command (or
with local commands when its ``host`` is ``local``), until the executor stops.
"""

from __future__ import annotations

import json
import logging
import shlex
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from cyclotron.domain.batches import (
    BatchHandle,
    BatchSubmission,
    ClusterAccess,
    CollectObservation,
    JobBatch,
    JobObservation,
    TaskObservation,
)
from cyclotron.domain.ports import (
    Executor,
    JobReporter,
    ProgressParser,
    TaskReporter,
    TaskRun,
)
from cyclotron.domain.states import JobState
from cyclotron.errors import CyclotronError, InputError, ServiceUnavailable
from cyclotron.executors.slurm import commands
from cyclotron.settings import Settings

if TYPE_CHECKING:
    from cyclotron.executors.slurm.remote import CommandResult, Remote

log = logging.getLogger(__name__)

STEPS_MODULE = "cyclotron.executors.slurm.steps"
LOCAL_HOST = "local"


@dataclass(frozen=True)
class SlurmCluster:
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
    api_url: str | None  # where the compute nodes reach this server, if not its own address

    @classmethod
    def of(cls, access: ClusterAccess) -> SlurmCluster:
        options = access.options
        work_dir = str(options.get("work_dir") or "")
        if not work_dir.startswith("/"):
            raise InputError(f"cluster {access.name!r} has no absolute work_dir configured")
        api_url = options.get("api_url")
        return cls(
            name=access.name,
            host=str(options.get("host") or LOCAL_HOST),
            username=str(options.get("user") or ""),
            port=int(options.get("port") or 22),
            key_path=options.get("key_path"),
            known_hosts_path=options.get("known_hosts_path"),
            accept_unknown_host=bool(options.get("accept_unknown_host", False)),
            work_dir=work_dir.rstrip("/"),
            python=str(options.get("python") or "python3"),
            api_url=str(api_url).rstrip("/") if api_url else None,
        )

    def connect(self) -> Remote:
        # Imported here: the server builds this executor whether or not it has clusters, and
        # the SSH side (paramiko and its cryptography) loads only once one is reached.
        from cyclotron.executors.slurm.remote import LocalRemote, SshRemote, SshTarget

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


def _options_of(stored: Mapping[str, Any]) -> commands.BatchOptions:
    return commands.BatchOptions(
        array_options=dict(stored.get("array_options") or {}),
        array_header=tuple(stored.get("array_header") or ()),
        collect_options=dict(stored.get("collect_options") or {}),
        collect_header=tuple(stored.get("collect_header") or ()),
    )


def observe(handle: BatchHandle, states: Mapping[commands.JobKey, str]) -> JobObservation:
    """What ``squeue``'s states say of one job: its tasks by 0-based index, its collect step."""
    tasks: dict[int, TaskObservation] = {}
    for (job_id, index), state in states.items():
        if job_id == handle.array_id and index is not None:
            effect = commands.task_effect(state)
            tasks[index - 1] = TaskObservation(state, effect.target, effect.note)
    collect = None
    collect_state = states.get((handle.collect_id, None))
    if collect_state is not None:
        target = commands.collect_effect(collect_state)
        note = (
            f"{commands.COLLECT_NO_RESULTS} ({collect_state})"
            if target == JobState.FAILED
            else None
        )
        collect = CollectObservation(collect_state, target, note)
    return JobObservation(tasks=tasks, collect=collect)


class SlurmExecutor(Executor):
    name: ClassVar[str] = "slurm"
    runs_whole_jobs: ClassVar[bool] = True

    def __init__(
        self, settings: Settings, *, connect: Callable[[SlurmCluster], Remote] | None = None
    ) -> None:
        self.settings = settings.executors.slurm
        self._connect = connect or SlurmCluster.connect
        self._reporter: JobReporter | None = None
        self._remotes: dict[str, Remote] = {}
        self._lock = threading.Lock()

    # -- single tasks: none ------------------------------------------------------------------

    def start(self, reporter: TaskReporter) -> None:
        """Nothing to start for single tasks: it takes whole jobs only."""

    def free_slots(self) -> int:
        return 0  # the dispatcher never hands it single tasks

    def submit(self, run: TaskRun, parse_progress: ProgressParser) -> None:
        raise RuntimeError("the slurm executor takes whole jobs (submit_job), not single tasks")

    def cancel(self, job_id: str) -> None:
        """Nothing runs here; a job on a cluster is stopped with ``cancel_job``."""

    def running(self) -> int:
        return 0  # its tasks run on clusters; the database counts them

    def wait_stopped(self, job_id: str, timeout: float) -> bool:
        return True

    def stop(self) -> None:
        """Close every cluster's connection (jobs on the clusters go on)."""
        with self._lock:
            for remote in self._remotes.values():
                remote.close()
            self._remotes.clear()

    # -- whole jobs --------------------------------------------------------------------------

    @classmethod
    def job_options(cls, raw: object) -> dict[str, Any]:
        options = commands.batch_options(raw)
        return {
            "array_options": dict(options.array_options),
            "array_header": list(options.array_header),
            "collect_options": dict(options.collect_options),
            "collect_header": list(options.collect_header),
        }

    def start_jobs(self, reporter: JobReporter) -> None:
        self._reporter = reporter

    def submit_job(self, batch: JobBatch) -> BatchSubmission:
        transcript: list[str] = []
        try:
            cluster = SlurmCluster.of(batch.cluster)
            remote = self._remote(cluster)
            job_dir = f"{cluster.work_dir}/{batch.report_id}"
            spec = {
                "job_id": batch.report_id,
                "api_url": cluster.api_url or batch.api_url.rstrip("/"),
                "service": batch.service,
                "plugin": batch.plugin,
                "options": dict(batch.plugin_options),
                "ntasks": batch.ntasks,
                "seeds": list(batch.seeds),
            }
            timeout = self.settings.command_timeout
            remote.run(f"mkdir -p {shlex.quote(job_dir)}/logs", timeout=timeout).check("mkdir")
            remote.put_tree(batch.input_dir, f"{job_dir}/input")
            remote.write_file(f"{job_dir}/job.json", json.dumps(spec).encode())
            remote.write_file(f"{job_dir}/.update-key", batch.update_key.encode(), mode=0o600)
            options = _options_of(batch.options)
            step = [cluster.python, "-m", STEPS_MODULE]
            array = commands.array_script(
                job_dir,
                batch.ntasks,
                options,
                [[*step, "task", job_dir, commands.ARRAY_TASK_ID]],
                job_name=f"cyclotron-{batch.job_id[:8]}",
            )
            collect = commands.collect_script(
                job_dir,
                options,
                [[*step, "collect", job_dir]],
                job_name=f"cyclotron-{batch.job_id[:8]}-collect",
            )
            remote.write_file(f"{job_dir}/array.sh", array.encode())
            remote.write_file(f"{job_dir}/collect.sh", collect.encode())
            submitted = self._run(cluster, commands.sbatch_command(f"{job_dir}/array.sh"))
            transcript.append(f"$ sbatch array.sh\n{submitted.stdout}{submitted.stderr}")
            array_id = commands.parse_sbatch(submitted.check("sbatch").stdout)
            dependent = commands.sbatch_command(f"{job_dir}/collect.sh", dependency=array_id)
            submitted = self._run(cluster, dependent)
            transcript.append(f"$ sbatch collect.sh\n{submitted.stdout}{submitted.stderr}")
            collect_id = commands.parse_sbatch(submitted.check("sbatch").stdout)
        except (CyclotronError, ValueError, OSError) as exc:  # UnexpectedOutput is a ValueError
            return BatchSubmission(None, tuple(transcript), str(exc))
        handle = BatchHandle(batch.cluster.name, job_dir, array_id, collect_id)
        return BatchSubmission(handle, tuple(transcript))

    def poll_jobs(
        self, cluster: ClusterAccess, handles: Sequence[BatchHandle]
    ) -> dict[BatchHandle, JobObservation]:
        ids = [job_id for h in handles for job_id in (h.array_id, h.collect_id)]
        try:
            result = self._run(SlurmCluster.of(cluster), commands.squeue_command(ids))
            states = commands.parse_squeue(
                result.stdout, exit_status=result.exit_status, stderr=result.stderr
            )
        except ValueError as exc:  # UnexpectedOutput, or a job id that is not one
            raise ServiceUnavailable(str(exc)) from exc
        return {handle: observe(handle, states) for handle in handles}

    def cancel_job(self, cluster: ClusterAccess, handle: BatchHandle) -> None:
        """scancel the job's array and collect job and remove its directory (unless
        ``keep_job_dir``)."""
        try:
            slurm = SlurmCluster.of(cluster)
            ids = [handle.array_id, handle.collect_id]
            self._run(slurm, commands.scancel_command(ids)).check("scancel")
            if not self.settings.keep_job_dir and handle.job_dir:
                self._remote(slurm).remove_tree(handle.job_dir)
        except ValueError as exc:  # a job id or a directory that cannot be the job's
            raise ServiceUnavailable(str(exc)) from exc

    # -- clusters ----------------------------------------------------------------------------

    def _remote(self, cluster: SlurmCluster) -> Remote:
        with self._lock:
            remote = self._remotes.get(cluster.name)
            if remote is None:
                remote = self._remotes[cluster.name] = self._connect(cluster)
            return remote

    def _run(self, cluster: SlurmCluster, command: str) -> CommandResult:
        program = command.split(" ", 1)[0]
        if self._reporter is not None:
            self._reporter.command_sent(cluster.name, program)
        return self._remote(cluster).run(command, timeout=self.settings.command_timeout)
