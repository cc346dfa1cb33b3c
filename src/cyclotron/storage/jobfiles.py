"""Where a job's files live: ``<data_dir>/jobs/<job id>/{input,tasks/<i>,logs,results}``."""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from pathlib import Path

# What holds other jobs' files, the keys and cached engine builds: never open to others.
PRIVATE_FOLDERS = ("jobs", "staging", "secrets", "cache")


class JobFiles:
    """The on-disk layout of jobs, and the private staging area for uploads."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.jobs_dir = self.data_dir / "jobs"
        self.staging_dir = self.data_dir / "staging"

    def ensure(self) -> None:
        for folder in (self.data_dir, self.jobs_dir, self.staging_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Staged uploads of a server that died mid-request are never going to be finished.
        for leftover in self.staging_dir.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)

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

    def new_staging_area(self) -> Path:
        path = self.staging_dir / uuid.uuid4().hex
        path.mkdir(mode=0o700)
        return path

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

    def write_document(self, job_id: str, name: str, data: bytes) -> None:
        path = self.document_path(job_id, name)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)

    def log_path(self, job_id: str, index: int, stream: str) -> Path:
        return self.job_dir(job_id) / "logs" / f"task-{index}.{stream}"

    def create_job_dir(self, job_id: str, staged_input: Path, ntasks: int) -> None:
        """Move staged input into a new job directory and give each task a copy of it."""
        job_dir = self.job_dir(job_id)
        job_dir.mkdir()
        try:
            os.replace(staged_input, self.input_dir(job_id))
            (job_dir / "logs").mkdir()
            self.results_dir(job_id).mkdir()
            for index in range(ntasks):
                self.reset_task_dir(job_id, index)
        except BaseException:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise

    def reset_task_dir(self, job_id: str, index: int) -> Path:
        """A fresh working directory holding exactly the job's input (used again on a retry)."""
        task_dir = self.task_dir(job_id, index)
        if task_dir.exists():
            shutil.rmtree(task_dir)
        shutil.copytree(self.input_dir(job_id), task_dir, symlinks=True)
        return task_dir

    def remove_job_dir(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
