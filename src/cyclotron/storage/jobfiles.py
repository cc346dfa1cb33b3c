"""Where a job's files live: ``<data_dir>/jobs/<job id>/{input,documents,tasks/<i>,logs,results}``.

A job's directory is built in ``staging/`` and moved into ``jobs/`` only once the job's row is
committed (stage, commit, rename), so every directory under ``jobs/`` belongs to a stored job.
A server process names what it stages after itself (``<host>:<pid>:<start>.<name>``, its lease
owner), so that a server sharing the data folder can tell another's work in progress from what
a process that died left behind.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# What holds other jobs' files, the keys and cached engine builds: never open to others.
PRIVATE_FOLDERS = ("jobs", "staging", "secrets", "cache", "unreferenced")
# A job's directory in staging, waiting for its row's commit: ``<process>.job-<job id>``.
STAGED_JOB = "job-"


@dataclass(frozen=True)
class StagingEntry:
    """Something in ``staging/``: who made it, and the job whose directory it is, if one's."""

    path: Path
    process: str | None  # None: named by a server that did not say who it was
    job_id: str | None

    @classmethod
    def of(cls, path: Path) -> StagingEntry:
        process, dot, name = path.name.rpartition(".")
        if not dot:
            return cls(path, None, None)
        job_id = name.removeprefix(STAGED_JOB) if name.startswith(STAGED_JOB) else None
        return cls(path, process, job_id)


class JobFiles:
    """The on-disk layout of jobs, and the private staging area for uploads."""

    def __init__(self, data_dir: Path, process: str = "") -> None:
        self.data_dir = data_dir.resolve()
        self.jobs_dir = self.data_dir / "jobs"
        self.staging_dir = self.data_dir / "staging"
        # Job directories no row refers to, moved out of jobs/ by the start-up sweep.
        self.unreferenced_dir = self.data_dir / "unreferenced"
        # Who stages here (``host:pid:start``); what it stages carries the name.
        self.process = process

    def ensure(self) -> None:
        """Create the folders. What a dead process left in staging is swept by the services,
        which know the jobs (services/scheduling/retention.py)."""
        for folder in (self.data_dir, self.jobs_dir, self.staging_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def secure(self, files: tuple[Path, ...] = ()) -> list[str]:
        """Close the data folder to everyone but the server: its folders 0700, ``files`` (the
        database's) 0600. What had to be changed, for the start-up log."""
        fixed = []
        folders = [self.data_dir, *(self.data_dir / n for n in PRIVATE_FOLDERS)]
        wanted = [(f, 0o700) for f in folders if f.is_dir()]
        wanted += [(f, 0o600) for f in files if f.is_file()]
        for path, mode in wanted:
            current = stat.S_IMODE(path.stat().st_mode)
            if current != mode:
                os.chmod(path, mode)
                fixed.append(f"{path}: {current:o} -> {mode:o}")
        return fixed

    def _staged(self, name: str) -> Path:
        return self.staging_dir / (f"{self.process}.{name}" if self.process else name)

    def new_staging_area(self) -> Path:
        path = self._staged(uuid.uuid4().hex)
        path.mkdir(mode=0o700)
        return path

    def staging_entries(self) -> list[StagingEntry]:
        return [StagingEntry.of(path) for path in sorted(self.staging_dir.iterdir())]

    def is_staged(self, job_id: str) -> bool:
        """Whether the job's directory is still in staging: its row was committed a moment
        ago (or by a process that died before moving the directory into place)."""
        return any(self.staging_dir.glob(f"*.{STAGED_JOB}{job_id}"))

    def job_dir_names(self) -> list[str]:
        return sorted(entry.name for entry in self.jobs_dir.iterdir())

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def input_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "input"

    def task_dir(self, job_id: str, index: int) -> Path:
        return self.job_dir(job_id) / "tasks" / str(index)

    def results_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "results"

    def document_path(self, job_id: str, name: str) -> Path:
        """A file a face keeps with the job (the submitted project), outside input and tasks."""
        return self.job_dir(job_id) / "documents" / name

    def log_path(self, job_id: str, index: int, stream: str) -> Path:
        return self.job_dir(job_id) / "logs" / f"task-{index}.{stream}"

    def stage_job_dir(
        self, job_id: str, staged_input: Path, ntasks: int, documents: Mapping[str, bytes]
    ) -> Path:
        """Build the job's directory in staging: the staged input moved in, a copy of it for
        each task, ``documents/`` (files kept beside the input). ``place_job_dir`` moves it into
        ``jobs/`` once the job's row is committed; the caller removes it if it is not."""
        job_dir = self._staged(STAGED_JOB + job_id)
        job_dir.mkdir(mode=0o700)
        try:
            os.replace(staged_input, job_dir / "input")
            (job_dir / "logs").mkdir()
            (job_dir / "results").mkdir()
            for index in range(ntasks):
                _copy_input(job_dir / "input", job_dir / "tasks" / str(index))
            if documents:
                (job_dir / "documents").mkdir()
            for name, data in documents.items():
                (job_dir / "documents" / name).write_bytes(data)
        except BaseException:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        return job_dir

    def place_job_dir(self, staged: Path, job_id: str) -> None:
        """Move a job's directory from staging into ``jobs/`` (its row is committed)."""
        os.replace(staged, self.job_dir(job_id))

    def set_aside(self, name: str) -> Path:
        """Move ``jobs/<name>``, which no row refers to, into ``unreferenced/``."""
        self.unreferenced_dir.mkdir(mode=0o700, exist_ok=True)
        target = self.unreferenced_dir / name
        if target.exists():
            target = self.unreferenced_dir / f"{name}.{uuid.uuid4().hex[:8]}"
        os.replace(self.jobs_dir / name, target)
        return target

    def reset_task_dir(self, job_id: str, index: int) -> Path:
        """A fresh working directory holding exactly the job's input (used again on a retry)."""
        task_dir = self.task_dir(job_id, index)
        if task_dir.exists():
            shutil.rmtree(task_dir)
        _copy_input(self.input_dir(job_id), task_dir)
        return task_dir

    def reset_results_dir(self, job_id: str) -> None:
        """An empty results directory, for a merge run again after one cut short."""
        results = self.results_dir(job_id)
        shutil.rmtree(results, ignore_errors=True)
        results.mkdir()

    def remove_job_dir(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)


def _copy_input(input_dir: Path, task_dir: Path) -> None:
    shutil.copytree(input_dir, task_dir, symlinks=True)
