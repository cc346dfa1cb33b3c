"""A job's files and results, for callers allowed to see the job."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cyclotron.domain.records import Caller, JobRecord
from cyclotron.domain.states import JobState, TaskState
from cyclotron.errors import ConflictError, CyclotronError, FilesRemoved
from cyclotron.estimators.merge import MergeError
from cyclotron.estimators.store import partial_estimators, read_results, results_path
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


_RESULTS_CACHED = 8
_results_cache: OrderedDict[tuple[str, int, int, int], list[dict[str, Any]]] = OrderedDict()
_results_lock = threading.Lock()


def _stored_results(results_dir: Path) -> list[dict[str, Any]] | None:
    """A job's stored results as JSON objects, made once per results file (by its identity:
    a merge run again replaces the file) for the last few jobs read; callers never change
    them."""
    path = results_path(results_dir)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    key = (str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)
    with _results_lock:
        if key in _results_cache:
            _results_cache.move_to_end(key)
            return _results_cache[key]
    found = read_results(results_dir)
    if found is not None:
        with _results_lock:
            _results_cache[key] = found
            while len(_results_cache) > _RESULTS_CACHED:
                _results_cache.popitem(last=False)
    return found


def job_estimators(core: Core, caller: Caller, ref: JobRef, partial: bool) -> EstimatorResults:
    """The stored results of a completed job; with ``partial``, the tasks completed so far
    merged now, from the job's running sums where they hold just those (ConflictError, as
    for any result, when the job is not completed otherwise)."""
    job = _with_files(core, caller, ref) if partial else completed_job(core, caller, ref)
    completed = [t.index for t in job.tasks if t.state == TaskState.COMPLETED]
    failed = sum(t.state == TaskState.FAILED for t in job.tasks)
    if partial and job.state != JobState.COMPLETED:
        try:
            estimators = partial_estimators(core.files.job_dir(job.id), completed)
        except MergeError as exc:
            raise CyclotronError(f"cannot merge the completed tasks: {exc}") from exc
    else:
        found = _stored_results(core.files.results_dir(job.id))
        if found is None:
            raise CyclotronError(f"Job {job.id} has no stored results")
        estimators = found
    return EstimatorResults(job, estimators, len(completed), failed, partial)
