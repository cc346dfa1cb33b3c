"""Tasks run by remote workers (``cyclotron worker``), as the server sees them.

A worker receives ``(job, task, attempt, token)`` from the broker and then speaks only to
these functions, through the worker routes: it claims the attempt (taking its lease), fetches
the job's input, reports progress and heartbeats (which say whether to go on), uploads what
the task wrote, and reports how the process ended. Every call names the attempt; a call for
an attempt that is no longer wanted (the task ended, was cancelled or was handed out again)
raises ``Superseded``, so a worker that was presumed dead can never overwrite its successor.
Uploads replace what an earlier upload of the same attempt stored, and a repeated end report
changes nothing: a worker may retry any call.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cyclotron.domain.ports import ProgressReport, TaskCommand, TaskLimits, TaskOutcome, TaskRun
from cyclotron.domain.states import TaskState
from cyclotron.errors import InputError, NotFound, PayloadTooLarge, Superseded, TransitionRefused
from cyclotron.services.core import Core
from cyclotron.services.running.lifecycle import TaskLifecycle
from cyclotron.storage import jobs as repo
from cyclotron.storage.tables import TaskRow, utcnow

WORKER_PREFIX = "worker:"
CELERY_PREFIX = "celery:"  # how a task records the worker that ran it
SEEN_WINDOW = timedelta(minutes=10)
INPUT_ARCHIVE = "input.tar.gz"
MAX_WORKER_NAME = 100
#: The parts of an output archive: the task's files, and its two log streams.
WORK_PREFIX = "work/"
LOG_MEMBERS = {"logs/stdout": "stdout", "logs/stderr": "stderr"}


@dataclass(frozen=True)
class Assignment:
    """What a worker needs to run one attempt: the service's plug-in and the task's place."""

    job_id: str
    task_index: int
    attempt: int
    ntasks: int
    seed: int
    service: str
    plugin: str
    options: Mapping[str, Any]
    time_limit: float | None
    lease_seconds: float
    env: Mapping[str, str] = field(default_factory=dict)
    limits: TaskLimits = field(default_factory=TaskLimits)

    def as_wire(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "task_index": self.task_index,
            "attempt": self.attempt,
            "ntasks": self.ntasks,
            "seed": self.seed,
            "service": self.service,
            "plugin": self.plugin,
            "options": dict(self.options),
            "time_limit": self.time_limit,
            "lease_seconds": self.lease_seconds,
            "env": dict(self.env),
            "limits": self.limits.as_wire(),
        }


@dataclass(frozen=True)
class WorkerSeen:
    id: str
    executor: str
    last_seen: datetime
    running_tasks: int


def workers_seen(core: Core) -> list[WorkerSeen]:
    """Every worker that reported on a task in the last ten minutes, most recent first."""
    since = utcnow() - SEEN_WINDOW
    with core.db.transaction(write=False) as session:
        rows = repo.workers_seen(session, CELERY_PREFIX, since)
    return [
        WorkerSeen(ref.removeprefix(CELERY_PREFIX), "celery", last, running)
        for ref, last, running in rows
    ]


def owner_of(worker: str) -> str:
    """The lease owner recorded for a worker."""
    name = worker.strip()
    if not name or len(name) > MAX_WORKER_NAME or not name.isprintable():
        raise InputError(f"worker must be a printable name of 1 to {MAX_WORKER_NAME} characters")
    return WORKER_PREFIX + name


def _superseded(task: TaskRow, attempt: int) -> Superseded:
    return Superseded(
        f"task {task.index} attempt {attempt} is no longer wanted "
        f"(the task is {task.state}, attempt {task.attempt})"
    )


def claim(core: Core, job_id: str, index: int, attempt: int, worker: str) -> Assignment:
    """Take the lease of an attempt the dispatcher handed to the broker.

    A second delivery of the same message (the broker thought its first worker dead) is
    refused while the first worker's lease is alive, and wins once it has run out.
    """
    owner = owner_of(worker)
    now = utcnow()
    lease = core.settings.dispatch.lease_seconds
    with core.db.transaction() as session:
        job = repo.find_job(session, job_id)
        task = repo.find_task(session, job_id, index) if job is not None else None
        if job is None or task is None:
            raise NotFound(f"task {index} of job {job_id} does not exist")
        if task.state != TaskState.RUNNING.value or task.attempt != attempt:
            raise _superseded(task, attempt)
        holder = task.lease_owner or ""
        alive = task.lease_expires_at is not None and task.lease_expires_at > now
        if holder.startswith(WORKER_PREFIX) and holder != owner and alive:
            raise TransitionRefused(
                f"task {index} attempt {attempt} runs on {holder[len(WORKER_PREFIX) :]}",
                task.state,
            )
        won = repo.update_running_task(
            session,
            job_id,
            index,
            (TaskRow.attempt == attempt, TaskRow.lease_owner == task.lease_owner),
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease),
            worker_ref=CELERY_PREFIX + worker.strip(),
            last_update_at=now,
        )
        if not won:
            raise TransitionRefused(f"task {index} attempt {attempt} was claimed meanwhile", None)
        service = core.catalog.get(job.service)
        return Assignment(
            job_id=job_id,
            task_index=index,
            attempt=attempt,
            ntasks=job.ntasks,
            seed=task.seed,
            service=job.service,
            plugin=service.settings.plugin,
            options=service.settings.options,
            time_limit=service.settings.time_limit,
            limits=service.task_limits(),
            lease_seconds=lease,
            env={
                "CYCLOTRON_JOB_ID": job_id,
                "CYCLOTRON_TASK_INDEX": str(index),
                "CYCLOTRON_NTASKS": str(job.ntasks),
                "CYCLOTRON_SEED": str(task.seed),
            },
        )


def _run(core: Core, job_id: str, index: int, attempt: int, argv: tuple[str, ...]) -> TaskRun:
    """The attempt as the server's lifecycle knows it: the server's own paths."""
    with core.db.transaction(write=False) as session:
        job = repo.find_job(session, job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist")
        service = job.service
    settings = core.catalog.get(service).settings
    return TaskRun(
        job_id=job_id,
        service=service,
        task_index=index,
        attempt=attempt,
        workdir=core.files.task_dir(job_id, index),
        stdout_path=core.files.log_path(job_id, index, "stdout"),
        stderr_path=core.files.log_path(job_id, index, "stderr"),
        command=TaskCommand(argv=argv or ("task",)),
        time_limit=settings.time_limit,
    )


def require_held(core: Core, job_id: str, index: int, attempt: int, worker: str) -> None:
    """NotFound or Superseded unless ``worker`` holds this attempt now."""
    _require_held(core, job_id, index, attempt, owner_of(worker))


def _require_held(core: Core, job_id: str, index: int, attempt: int, owner: str) -> None:
    with core.db.transaction(write=False) as session:
        task = repo.find_task(session, job_id, index)
        if task is None:
            raise NotFound(f"task {index} of job {job_id} does not exist")
        if (
            task.state != TaskState.RUNNING.value
            or task.attempt != attempt
            or task.lease_owner != owner
        ):
            raise _superseded(task, attempt)


def heartbeat(
    core: Core,
    job_id: str,
    index: int,
    attempt: int,
    worker: str,
    progress: ProgressReport | None,
) -> bool:
    """Record progress (if any) and renew the lease; False tells the worker to stop."""
    owner = owner_of(worker)
    lifecycle = TaskLifecycle(core, owner)
    run = _run(core, job_id, index, attempt, ())
    if progress is not None:
        lifecycle.task_progress(run, progress)
    return lifecycle.task_alive(run)


def input_archive(core: Core, job_id: str, index: int, attempt: int, worker: str) -> Path:
    """The job's input as a gzipped tar, built once per job and shared by its tasks."""
    _require_held(core, job_id, index, attempt, owner_of(worker))
    path = core.files.job_dir(job_id) / INPUT_ARCHIVE
    if path.exists():
        return path
    input_dir = core.files.input_dir(job_id)
    if not input_dir.is_dir():
        raise NotFound(f"the input of job {job_id} is gone")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".input-", suffix=".tar.gz")
    try:
        with os.fdopen(handle, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            tar.add(input_dir, arcname=".")
        os.replace(temporary, path)  # every concurrent builder writes the same content
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _members(tar: tarfile.TarFile, limit: int) -> list[tarfile.TarInfo]:
    """The archive's members, refused whole when one is not a plain file or directory under
    ``work/`` or a known log, or when together they exceed ``limit`` bytes."""
    members, total = [], 0
    for member in tar:
        name = member.name.removeprefix("./")
        if not (name.startswith(WORK_PREFIX) or name in LOG_MEMBERS or name in ("work", "logs")):
            raise InputError(f"unexpected member {member.name!r} in the output archive")
        if not (member.isfile() or member.isdir()):
            raise InputError(f"{member.name!r} is not a regular file or directory")
        total += member.size
        if total > limit:
            raise PayloadTooLarge(f"the task's outputs exceed {limit} bytes")
        members.append(member)
    return members


def store_output(
    core: Core, job_id: str, index: int, attempt: int, worker: str, archive: Path
) -> int:
    """Unpack a worker's archive of what the task wrote into the task's directory and logs.

    The archive is checked whole before anything is written; the number of files is returned.
    """
    owner = owner_of(worker)
    _require_held(core, job_id, index, attempt, owner)
    limit = core.settings.server.max_upload_bytes
    task_dir = core.files.task_dir(job_id, index)
    staging = Path(tempfile.mkdtemp(dir=core.files.job_dir(job_id), prefix=".output-"))
    try:
        try:
            with tarfile.open(archive, mode="r:*") as tar:
                members = _members(tar, limit)
                tar.extractall(staging, members=members, filter="data")
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InputError(f"the output archive cannot be read: {exc}") from exc
        _require_held(core, job_id, index, attempt, owner)
        count = 0
        work = staging / "work"
        if work.is_dir():
            for source in sorted(work.rglob("*")):
                if source.is_dir():
                    continue
                target = task_dir / source.relative_to(work)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
                count += 1
        for member, stream in LOG_MEMBERS.items():
            source = staging / member
            if source.is_file():
                target = core.files.log_path(job_id, index, stream)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
        return count
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def finish(
    core: Core,
    job_id: str,
    index: int,
    attempt: int,
    worker: str,
    outcome: TaskOutcome,
    argv: tuple[str, ...],
) -> bool:
    """Record how the attempt ended (after its outputs were stored); False if it was already
    recorded or the attempt is no longer wanted."""
    owner = owner_of(worker)
    try:
        _require_held(core, job_id, index, attempt, owner)
    except Superseded:
        return False
    TaskLifecycle(core, owner).task_finished(_run(core, job_id, index, attempt, argv), outcome)
    return True
