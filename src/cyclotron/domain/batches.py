"""What passes between the services and an executor that runs whole jobs (SLURM).

Such an executor takes a job at once, as a batch: its tasks (an array on the cluster) and a
collect step that merges them. The services hand it a :class:`JobBatch` and keep the
:class:`BatchHandle` it returns in the job; later they ask it what the cluster shows of the
handles (:class:`JobObservation`) and decide themselves what that changes. Expected failures
are values (:class:`BatchSubmission` with an error), as a plug-in's exit codes are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cyclotron.domain.states import JobState, TaskState


@dataclass(frozen=True)
class ClusterAccess:
    """One cluster, as registered (``cyclotron clusters add``): its name and its options
    (host, user, key, work_dir, ...), which only the executor reads."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobBatch:
    """A whole job for an executor to submit: its input, tasks, plug-in and cluster."""

    job_id: str  # the server's id of the job
    report_id: str  # the id its steps report under, with ``update_key`` (YAPTIDE's job id)
    cluster: ClusterAccess
    input_dir: Path  # the job's staged input, on this machine
    ntasks: int
    seeds: tuple[int, ...]  # one per task, in task order
    service: str
    plugin: str  # the service's plug-in, and its options, for the steps on the cluster
    plugin_options: Mapping[str, Any]
    update_key: str = field(repr=False)
    options: Mapping[str, Any]  # the batch options, as ``Executor.job_options`` checked them
    api_url: str  # where the steps reach this server, unless the cluster's options say


@dataclass(frozen=True)
class BatchHandle:
    """Where a submitted job is on its cluster: its directory, task array and collect step."""

    cluster: str
    job_dir: str
    array_id: str
    collect_id: str


@dataclass(frozen=True)
class BatchSubmission:
    """How a submission went: a handle, or the error; the commands' transcript either way."""

    handle: BatchHandle | None
    transcript: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class TaskObservation:
    """One task as the cluster shows it; ``target`` is None for a state the executor does not
    know, and ``note`` says why a task failed (or names the unknown state)."""

    state: str  # as the cluster says it
    target: TaskState | None
    note: str | None = None


@dataclass(frozen=True)
class CollectObservation:
    """The collect step as the cluster shows it; ``target`` is what it means for the job once
    the tasks have ended (FAILED when it ended: only if no results arrived, which ``note``
    then explains), None for a state the executor does not know."""

    state: str
    target: JobState | None
    note: str | None = None


@dataclass(frozen=True)
class JobObservation:
    """What one poll saw of one job: its tasks by index (those the cluster lists), and its
    collect step (None when the cluster does not list it)."""

    tasks: Mapping[int, TaskObservation]
    collect: CollectObservation | None
