"""The ports that plug-ins and executors implement; the services only speak to these."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from cyclotron.domain.batches import (
    BatchHandle,
    BatchSubmission,
    ClusterAccess,
    JobBatch,
    JobObservation,
)
from cyclotron.domain.primaries import nstat_of, primaries_in, with_nstat
from cyclotron.errors import PluginError

if TYPE_CHECKING:
    from cyclotron.settings import Settings

MAX_SEED = 2_147_483_647  # the largest seed a job may give a task


@dataclass(frozen=True)
class TaskCommand:
    """What a plug-in asks an executor to run for one task."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    # Sent first when the task is cancelled, for engines that save what they have on a
    # signal (SHIELD-HIT12A and SIGUSR1); the usual stop follows after ``save_seconds``.
    save_signal: int | None = None
    save_seconds: float = 2.0
    # Files (globs relative to the working directory) whose new lines are read for progress
    # as well as stdout, for engines that report progress only in a file (FLUKA's .out).
    progress_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskLimits:
    """What one task may use inside its sandbox; None: no limit of that kind."""

    cpu_seconds: float | None = None
    memory_bytes: int | None = None  # private writable memory (RLIMIT_DATA)
    max_processes: int | None = None
    output_bytes: int | None = None  # everything the task writes in its working directory
    network: bool = False
    # Paths outside the system the task may read (an engine's install, its data).
    read_only_paths: tuple[str, ...] = ()
    # Paths it may write besides its working directory (a trusted engine's compile cache).
    writable_paths: tuple[str, ...] = ()

    def as_wire(self) -> dict[str, Any]:
        return {
            "cpu_seconds": self.cpu_seconds,
            "memory_bytes": self.memory_bytes,
            "max_processes": self.max_processes,
            "output_bytes": self.output_bytes,
            "network": self.network,
            "read_only_paths": list(self.read_only_paths),
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any] | None) -> TaskLimits:
        """Limits sent to a remote worker (writable paths are the server's own: never sent)."""
        data = data or {}
        return cls(
            cpu_seconds=data.get("cpu_seconds"),
            memory_bytes=data.get("memory_bytes"),
            max_processes=data.get("max_processes"),
            output_bytes=data.get("output_bytes"),
            network=bool(data.get("network", False)),
            read_only_paths=tuple(str(p) for p in data.get("read_only_paths") or ()),
        )


@dataclass(frozen=True)
class TaskRun:
    """One attempt of one task, as handed to an executor."""

    job_id: str
    service: str
    task_index: int
    attempt: int
    workdir: Path
    stdout_path: Path
    stderr_path: Path
    command: TaskCommand
    time_limit: float | None
    limits: TaskLimits = field(default_factory=TaskLimits)


@dataclass(frozen=True)
class TaskOutcome:
    """What an executor saw when a task's process ended."""

    exit_code: int | None
    stderr_tail: str = ""
    timed_out: bool = False
    cancelled: bool = False  # stopped on request, or because its lease was lost
    interrupted: bool = False  # stopped because this executor shut down: run it again later
    error: str | None = None  # the executor could not run it at all
    seconds: float | None = None  # how long the process ran
    # The sandbox limit the task ran into ("output", "cpu", "memory", "processes"), if any.
    limit_hit: str | None = None

    @property
    def succeeded(self) -> bool:
        stopped = self.timed_out or self.cancelled or self.interrupted or bool(self.limit_hit)
        return self.exit_code == 0 and not stopped and self.error is None


@dataclass(frozen=True)
class DocumentPlan:
    """A job a plug-in planned from one input document (an AlphaFold 3 body): one task per
    seed, the input files it stages, what the job keeps, and the input's cache key."""

    files: Mapping[str, bytes]
    seeds: tuple[int, ...]
    key: str
    attrs: Mapping[str, Any] = field(default_factory=dict)
    # Kept beside the input (``documents/<name>``), never copied into the tasks.
    documents: Mapping[str, bytes] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    estimates: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CachedInput:
    """What a plug-in keeps for an input key across jobs (AlphaFold 3's data-pipeline output)."""

    size: int
    stored_at: datetime


@dataclass(frozen=True)
class ProgressReport:
    done: float
    total: float
    stage: str | None = None
    eta_seconds: float | None = None  # the engine's own estimate of the time left
    # Counters within the stage that progress messages carry as they are (AlphaFold 3's
    # recycling_iteration, recycling_total, diffusion_step, diffusion_total).
    counters: Mapping[str, int] = field(default_factory=dict)


class SimulatorPlugin(ABC):
    """Knows one engine: checks input, prepares each task's command, merges results.

    A plug-in never touches the database, HTTP or an executor; expected refusals are
    raised as ``PluginError`` and become the job's reason.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    version: ClassVar[str | None] = None
    #: The ``input.kind`` values of /api submissions it accepts.
    input_kinds: ClassVar[tuple[str, ...]] = ("files",)
    #: What ``GET /api/jobs/{id}/results`` shows: "files", "estimators" or "confidence".
    result_kind: ClassVar[str] = "files"
    #: False when the tasks' own files are the results: the job completes without a merge step.
    merges_results: ClassVar[bool] = True
    #: True when a download holds ``results/`` alone, at the archive's top level.
    archives_results_only: ClassVar[bool] = False
    #: The seeds (lowest, highest) the engine takes; a task's seed seeds the engine's RNG.
    seed_range: ClassVar[tuple[int, int]] = (0, MAX_SEED)
    #: True when its tasks run code a user sent (a ``run.sh``), not only an engine on data.
    runs_user_code: ClassVar[bool] = False
    #: True when ``cached_input`` answers for its input keys (it caches prepared inputs).
    caches_inputs: ClassVar[bool] = False

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    @abstractmethod
    def validate(self, input_dir: Path) -> None:
        """Refuse input the engine cannot run (raise PluginError with the reason)."""

    @abstractmethod
    def task_command(
        self, workdir: Path, task_index: int, ntasks: int, *, seed: int
    ) -> TaskCommand:
        """The command that runs one task in its prepared working directory; ``seed`` is the
        task's own seed (within ``seed_range``), for the engine's random number generator."""

    def parse_progress(self, line: str) -> ProgressReport | None:
        """Progress found in one line of the task's output, if any."""
        return None

    def progress_parser(self) -> ProgressParser:
        """A parser for one task's output; plug-ins whose progress spans lines keep state in it."""
        return self.parse_progress

    def collect_task(self, workdir: Path) -> None:  # noqa: B027 - optional hook
        """Read what a successful run left in ``workdir`` (raise PluginError if unusable)."""

    def fold_task(  # noqa: B027 - optional hook
        self, job_dir: Path, index: int, unfinished: Collection[int]
    ) -> None:
        """Fold a completed task's outputs into the job's running results, so that ``merge``
        only finishes them; called once its outputs are collected, before it is recorded
        completed, with the job's other tasks not yet ended. Outputs that do not merge are
        ``merge``'s to report."""

    def merge(self, job_dir: Path, completed: list[int]) -> None:  # noqa: B027 - optional hook
        """Combine the completed tasks' outputs into ``job_dir/results``."""

    def result_dir(self, job_dir: Path, ntasks: int) -> Path:
        """The directory whose files are the job's results (what a download serves)."""
        return job_dir / "results"

    def unavailable_reason(self) -> str | None:
        """Why this service cannot run jobs now (a missing executable), or None."""
        return None

    def stand_in_hint(self, what: str) -> str:
        """For a service that runs another engine's jobs on this plug-in (its setting
        ``stands_in_for``), a sentence to append to a refusal of ``what``: how to run it on
        that engine itself. Empty for any other service."""
        stands_in_for = self.options.get("stands_in_for")
        if not stands_in_for:
            return ""
        return (
            f". This server runs {stands_in_for} jobs on its {self.name} engine because "
            f"no {stands_in_for} executable is configured: to run {what}, configure "
            f'[services.{stands_in_for}] with plugin = "{stands_in_for}" and its '
            'executable (README, "Installing SHIELD-HIT12A, FLUKA, TOPAS or Geant4")'
        )

    def sandbox_paths(self) -> tuple[str, ...]:
        """Paths outside the system its tasks read (an executable's install, engine data);
        the task's sandbox binds them read-only."""
        return ()

    def sandbox_writable_paths(self) -> tuple[str, ...]:
        """Paths outside its working directory that its tasks write: only for a plug-in whose
        tasks run nothing of a user's but data (a compile cache its engine shares)."""
        return ()

    def attach(self, data_dir: Path) -> None:  # noqa: B027 - optional hook
        """Learn the server's data folder (plug-ins that keep files across jobs, a cache)."""

    def editor_files(self, project: Mapping[str, Any]) -> dict[str, str]:
        """The engine's input files for a YAPTIDE editor project, written for the whole job.

        Plug-ins that cannot convert editor projects refuse them (the default).
        """
        raise PluginError(f"service plug-in {self.name!r} does not run editor projects")

    def plan_document(self, document: Mapping[str, Any], service: str) -> DocumentPlan:
        """Check one input document and plan its job; InputError lists every problem, each
        located within the document. Plug-ins that take no documents refuse (the default)."""
        raise PluginError(f"service plug-in {self.name!r} does not take input documents")

    def cached_input(self, key: str) -> CachedInput | None:
        """What this plug-in keeps for an input key, for plug-ins that cache their own
        preparation of an input (None: results are what a key finds, the default)."""
        return None

    def total_primaries(self, input_dir: Path) -> int | None:
        """The job's number of primary particles as its input states it, if the engine has one."""
        return primaries_in(input_dir)

    def set_total_primaries(self, input_dir: Path, total: int) -> None:
        """Make the input state ``total`` as the job's number of primaries (a submission's
        ``input.primaries`` over its files). The default sets NSTAT of beam.dat; engines that
        state it elsewhere override this as they override ``total_primaries``."""
        beam = input_dir / "beam.dat"
        text = beam.read_text(encoding="utf-8", errors="replace") if beam.is_file() else ""
        if nstat_of(text) is None:
            raise PluginError(f"the input of {self.name!r} states no number of primaries to set")
        beam.write_text(with_nstat(text, total), encoding="utf-8")


class TaskReporter(Protocol):
    """How an executor tells the core what happened; implemented by the services layer."""

    def task_started(self, run: TaskRun, pgid: int) -> bool:
        """Record the start; False means the task was cancelled meanwhile and must be stopped."""

    def task_alive(self, run: TaskRun) -> bool:
        """Renew the lease; False means stop the task (cancelled, or the lease was lost)."""

    def task_progress(self, run: TaskRun, report: ProgressReport) -> None:
        """Record progress read from the task's output."""

    def task_finished(self, run: TaskRun, outcome: TaskOutcome) -> None:
        """Record how the attempt ended."""


class JobReporter(Protocol):
    """What an executor of whole jobs tells the core besides its observations (metrics)."""

    def command_sent(self, cluster: str, program: str) -> None:
        """Count one scheduler command (``sbatch``, ``squeue``, ``scancel``) sent to a cluster."""


class Executor(ABC):
    """Runs tasks somewhere. It never decides states; it reports what happened.

    Most executors run single tasks the dispatcher hands them (``submit``). One that runs
    whole jobs (``runs_whole_jobs``: a SLURM task array and its collect step) takes no single
    tasks (``free_slots()`` is 0) and serves the job-level methods below instead.
    """

    name: ClassVar[str]
    #: True when its tasks are counted in the database rather than by the executor (they run
    #: on other machines): it may then take ``free_slots()`` less its services' running tasks.
    counts_in_database: ClassVar[bool] = False
    #: True when it takes whole jobs (``submit_job``, ``poll_jobs``, ``cancel_job``).
    runs_whole_jobs: ClassVar[bool] = False

    @abstractmethod
    def __init__(self, settings: Settings) -> None:
        """Executors are built from the whole settings object and pick their own section."""

    def claim_lease_seconds(self, default: float) -> float:
        """How long a task handed to it may go without a report (it may wait in a queue)."""
        return default

    @abstractmethod
    def start(self, reporter: TaskReporter) -> None:
        """Begin accepting tasks."""

    @abstractmethod
    def free_slots(self) -> int:
        """How many more tasks it can take now."""

    @abstractmethod
    def submit(self, run: TaskRun, parse_progress: ProgressParser) -> None:
        """Start one task attempt."""

    @abstractmethod
    def cancel(self, job_id: str) -> None:
        """Stop every running task of the job (terminate, then kill after a grace period)."""

    @abstractmethod
    def running(self) -> int:
        """How many tasks it runs now."""

    @abstractmethod
    def wait_stopped(self, job_id: str, timeout: float) -> bool:
        """Wait until no task of the job runs here; False if some still did at the timeout."""

    @abstractmethod
    def stop(self) -> None:
        """Stop accepting tasks and end the ones running (they will be re-queued later)."""

    def reap_orphan(self, task_key: str, handle: int) -> None:  # noqa: B027 - optional hook
        """End what remains of a lost attempt (``handle`` as the executor recorded it)."""

    # -- whole jobs (``runs_whole_jobs``) ----------------------------------------------------

    @classmethod
    def job_options(cls, raw: object) -> dict[str, Any]:
        """A request's options for a whole job, checked (InputError naming a bad item), in the
        JSON-able form a job keeps and ``JobBatch.options`` carries back."""
        raise NotImplementedError(f"the {cls.name} executor does not run whole jobs")

    def start_jobs(self, reporter: JobReporter) -> None:
        """Begin accepting whole jobs; ``reporter`` counts the commands sent."""
        raise NotImplementedError(f"the {self.name} executor does not run whole jobs")

    def submit_job(self, batch: JobBatch) -> BatchSubmission:
        """Send a whole job to its cluster; a failure is returned, not raised."""
        raise NotImplementedError(f"the {self.name} executor does not run whole jobs")

    def poll_jobs(
        self, cluster: ClusterAccess, handles: Sequence[BatchHandle]
    ) -> dict[BatchHandle, JobObservation]:
        """What the cluster shows of these jobs, asked at once; ServiceUnavailable (or another
        CyclotronError) when it cannot be asked."""
        raise NotImplementedError(f"the {self.name} executor does not run whole jobs")

    def cancel_job(self, cluster: ClusterAccess, handle: BatchHandle) -> None:
        """Stop a submitted job on its cluster and remove what it left there; a
        CyclotronError when the cluster could not be reached (the caller retries)."""
        raise NotImplementedError(f"the {self.name} executor does not run whole jobs")


class ProgressParser(Protocol):
    def __call__(self, line: str) -> ProgressReport | None: ...
