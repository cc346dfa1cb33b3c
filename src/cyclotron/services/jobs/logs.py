"""A job's logs: tasks' captured stdout and stderr, and the texts workers upload.

The YAPTIDE face names them ``task-<k>/<file>`` and ``job/<file>``: task processes' own output
(``logs/task-<i>.stdout|stderr``) appears as ``task-<k>/stdout`` and ``task-<k>/stderr``; logs
that workers upload are kept under ``logs/reported/``; the job's ``job/summary.txt`` (when some
task failed) and ``job/merge.log`` (when the merge failed) are written from the job's record
when read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cyclotron.domain.filenames import check_file_name
from cyclotron.domain.records import Caller, ErrorKind, JobRecord, TaskRecord
from cyclotron.domain.states import TaskState
from cyclotron.errors import InputError, NotFound
from cyclotron.services.core import Core
from cyclotron.services.jobs.queries import JobRef, get_job


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


MAX_LOG_BYTES = 1024 * 1024
MAX_LOG_FILES = 100
CUT_NOTE = "[log cut: only its last {size} bytes are kept]\n"


def cut_text(text: str) -> str:
    """The text's last MiB, with a first line saying it was cut."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= MAX_LOG_BYTES:
        return text
    tail = data[-MAX_LOG_BYTES:].decode("utf-8", errors="ignore")
    return CUT_NOTE.format(size=MAX_LOG_BYTES) + tail


def _reported_dir(core: Core, job_id: str, task_index: int | None) -> Path:
    folder = "job" if task_index is None else f"task-{task_index + 1}"
    return core.files.job_dir(job_id) / "logs" / "reported" / folder


def store_log_texts(
    core: Core, job_id: str, task_index: int | None, logs: Mapping[str, Any]
) -> None:
    """Store uploaded logs by name (the same name replaces: re-sending is harmless)."""
    if len(logs) > MAX_LOG_FILES:
        raise InputError(f"At most {MAX_LOG_FILES} log files per request")
    for name, text in logs.items():
        check_file_name(name)
        if not isinstance(text, str):
            raise InputError(f"Log file {name!r} must be text")
    directory = _reported_dir(core, job_id, task_index)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in logs.items():
        temporary = directory / f".{name}.tmp"
        temporary.write_text(cut_text(text), encoding="utf-8")
        temporary.replace(directory / name)


def _read(path: Path) -> str:
    size = path.stat().st_size
    with path.open("rb") as handle:
        if size > MAX_LOG_BYTES:
            handle.seek(size - MAX_LOG_BYTES)
            tail = handle.read().decode("utf-8", errors="ignore")
            return CUT_NOTE.format(size=MAX_LOG_BYTES) + tail
        return handle.read().decode("utf-8", errors="replace")


def summary_text(job: JobRecord) -> str:
    lines = [f"Job {job.yaptide_id or job.id}: {job.state.value}"]
    for task in job.tasks:
        line = f"task {task.index + 1}: {task.state.value}"
        if task.state == TaskState.FAILED and task.error:
            line += f" ({task.error.splitlines()[0][:500]})"
        lines.append(line)
    completed = sum(t.state == TaskState.COMPLETED for t in job.tasks)
    lines.append(f"results merged from {completed} of {len(job.tasks)} tasks")
    return "\n".join(lines) + "\n"


def job_log_texts(core: Core, job: JobRecord) -> dict[str, str]:
    """Every log of the job by its shown name (empty while nothing was recorded)."""
    found: dict[str, str] = {}
    logs_dir = core.files.job_dir(job.id) / "logs"
    for task in job.tasks:
        for stream in ("stdout", "stderr"):
            path = core.files.log_path(job.id, task.index, stream)
            if path.is_file():
                found[f"task-{task.index + 1}/{stream}"] = _read(path)
    reported = logs_dir / "reported"
    if reported.is_dir():
        for folder in sorted(reported.iterdir()):
            for path in sorted(folder.iterdir()) if folder.is_dir() else []:
                if path.is_file() and not path.name.startswith("."):
                    found[f"{folder.name}/{path.name}"] = _read(path)
    if any(t.state == TaskState.FAILED for t in job.tasks) and job.tasks:
        found["job/summary.txt"] = summary_text(job)
    if job.error_kind == ErrorKind.MERGE and job.error:
        found["job/merge.log"] = job.error + "\n"
    return found
