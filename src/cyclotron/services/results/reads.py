"""A job's files and results, for callers allowed to see the job."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cyclotron.domain.records import Caller, JobRecord
from cyclotron.domain.states import JobState, TaskState
from cyclotron.errors import ConflictError, CyclotronError, FilesRemoved
from cyclotron.estimators.merge import MergeError
from cyclotron.estimators.store import merge_task_files, read_results
from cyclotron.services.core import Core
from cyclotron.services.jobs.queries import JobRef, get_job
from cyclotron.services.results.archives import regular_files
from cyclotron.services.results.files import FileEntry, list_files, resolve_file

ARCHIVED_DIRS = ("input", "tasks", "results", "logs")


@dataclass(frozen=True)
class JobFile:
    path: Path
    sha256: str | None


def _with_files(core: Core, caller: Caller, ref: JobRef) -> JobRecord:
    job = get_job(core, caller, ref)
    if job.cleaned_at is not None or not core.files.job_dir(job.id).is_dir():
        raise FilesRemoved("Job files have been removed")
    return job


def _active_tasks(job: JobRecord) -> set[int]:
    return {t.index for t in job.tasks if t.state in (TaskState.PENDING, TaskState.RUNNING)}


def input_files(core: Core, job: JobRecord) -> list[tuple[str, int]]:
    """(name, size) of the job's input files, as submitted; none once retention removed them."""
    input_dir = core.files.input_dir(job.id)
    if not input_dir.is_dir():
        return []
    return [(name, path.stat().st_size) for path, name in regular_files(input_dir)]


def job_files(core: Core, caller: Caller, ref: JobRef) -> tuple[JobRecord, list[FileEntry]]:
    job = _with_files(core, caller, ref)
    return job, list_files(core.files.job_dir(job.id), _active_tasks(job))


def job_file(core: Core, caller: Caller, ref: JobRef, relative: str) -> tuple[JobRecord, JobFile]:
    job = _with_files(core, caller, ref)
    job_dir = core.files.job_dir(job.id)
    path = resolve_file(job_dir, relative)
    digest = None
    if not _active_tasks(job):
        entry = next((e for e in list_files(job_dir, set()) if e.path == relative), None)
        digest = entry.sha256 if entry is not None else None
    return job, JobFile(path, digest)


def completed_job(core: Core, caller: Caller, ref: JobRef) -> JobRecord:
    """The job, if it completed with its files; ConflictError naming its state otherwise."""
    job = _with_files(core, caller, ref)
    if job.state != JobState.COMPLETED:
        raise ConflictError(f"Job {job.id} is not completed")
    return job


def archive_members(core: Core, job: JobRecord) -> list[tuple[Path, str]]:
    """The (path, name) pairs of a job's result archive: its four directories, nothing hidden;
    for a service whose results folder is the whole answer (AlphaFold 3), that folder's files
    at the archive's top level."""
    job_dir = core.files.job_dir(job.id)
    tops: tuple[str, ...] = ARCHIVED_DIRS
    if core.catalog.get(job.service).plugin.archives_results_only:
        tops = ("results",)
    members = []
    for top in tops:
        root = job_dir / top
        if not root.is_dir():
            continue
        for path, name in regular_files(root):
            if any(part.startswith(".") for part in name.split("/")):
                continue
            members.append((path, name if len(tops) == 1 else f"{top}/{name}"))
    return members


@dataclass(frozen=True)
class EstimatorResults:
    """A job's merged estimators, and how many tasks went into them."""

    job: JobRecord
    estimators: list[dict[str, Any]]
    tasks_merged: int
    tasks_failed: int
    partial: bool


def job_estimators(core: Core, caller: Caller, ref: JobRef, partial: bool) -> EstimatorResults:
    """The stored results of a completed job; with ``partial``, the tasks completed so far
    merged now (ConflictError, as for any result, when the job is not completed otherwise)."""
    job = _with_files(core, caller, ref) if partial else completed_job(core, caller, ref)
    completed = [t.index for t in job.tasks if t.state == TaskState.COMPLETED]
    failed = sum(t.state == TaskState.FAILED for t in job.tasks)
    if partial and job.state != JobState.COMPLETED:
        try:
            estimators = merge_task_files(core.files.job_dir(job.id), completed)
        except MergeError as exc:
            raise CyclotronError(f"cannot merge the completed tasks: {exc}") from exc
    else:
        found = read_results(core.files.results_dir(job.id))
        if found is None:
            raise CyclotronError(f"Job {job.id} has no stored results")
        estimators = found
    return EstimatorResults(job, estimators, len(completed), failed, partial)
