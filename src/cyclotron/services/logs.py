"""Reading tasks' captured stdout and stderr."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cyclotron.domain.records import Caller, TaskRecord
from cyclotron.errors import NotFound
from cyclotron.services.core import Core
from cyclotron.services.queries import JobRef, get_job


@dataclass(frozen=True)
class StreamTail:
    text: str
    size: int
    truncated: bool


@dataclass(frozen=True)
class TaskLogs:
    task: TaskRecord
    stdout: StreamTail
    stderr: StreamTail


def read_tail(path: Path, limit: int) -> StreamTail:
    """The last ``limit`` bytes of a file, decoded as UTF-8 with replacement characters."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - limit))
            data = handle.read(limit)
    except FileNotFoundError:
        return StreamTail("", 0, False)
    return StreamTail(data.decode("utf-8", errors="replace"), size, size > limit)


def task_logs(
    core: Core, caller: Caller, ref: JobRef, task: int | None, tail: int
) -> tuple[str, list[TaskLogs]]:
    job = get_job(core, caller, ref)
    tasks = job.tasks
    if task is not None:
        tasks = tuple(t for t in job.tasks if t.index == task)
        if not tasks:
            raise NotFound(f"Job {job.id} has no task {task}")
    logs = [
        TaskLogs(
            task=t,
            stdout=read_tail(core.files.log_path(job.id, t.index, "stdout"), tail),
            stderr=read_tail(core.files.log_path(job.id, t.index, "stderr"), tail),
        )
        for t in tasks
    ]
    return job.id, logs
