"""Storing a planned job: one transaction stores the job, its tasks and its input."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from cyclotron.domain.primaries import split_primaries
from cyclotron.domain.records import JobRecord
from cyclotron.domain.states import JobStage, JobState
from cyclotron.errors import InputError, QueueFull
from cyclotron.services.core import Core
from cyclotron.services.intake.keys import directory_key
from cyclotron.services.results.reuse import CachedResults, complete_from_cache
from cyclotron.storage import jobs as repo
from cyclotron.storage.events import append_event
from cyclotron.storage.tables import JobRow, utcnow

DEFAULT_RETRY_AFTER = 30


def task_shares(
    core: Core, service: str, input_dir: Path, primaries: int | None, ntasks: int
) -> list[int] | None:
    """Each task's primaries for a simulation service (None for other services).

    The total is ``primaries`` when given, else what the input states; InputError when it
    cannot be known or is smaller than ``ntasks``.
    """
    plugin = core.catalog.get(service).plugin
    if plugin.result_kind != "estimators":
        return None
    total = primaries if primaries is not None else plugin.total_primaries(input_dir)
    if total is None or total < 1:
        message = "cannot determine the number of primaries: the input states none"
        raise InputError(message, ("input", "primaries"))
    if ntasks > total:
        message = f"ntasks ({ntasks}) must not exceed the number of primaries ({total})"
        raise InputError(message, ("ntasks",))
    return split_primaries(total, ntasks)


@dataclass(frozen=True)
class StoredJob:
    """What a job's row holds when intake stores it. ``name`` None: ``<name_prefix>-<number>``."""

    owner_id: int
    service: str
    name: str | None = None
    name_prefix: str = "job"
    ntasks: int = 1
    seeds: Sequence[int] | None = None
    priority: int = 0
    # Each task's share of the primaries, when the service counts them.
    task_primaries: Sequence[int] | None = None
    # Refuse (QueueFull) over the service's queue limits.
    queue_limits: bool = False
    # What the YAPTIDE face keeps with its jobs.
    yaptide_id: str | None = None
    attrs: Mapping[str, Any] | None = None
    update_key_sha256: str | None = None
    # Another executor than the service's, chosen for this job (a YAPTIDE batch job: slurm).
    executor: str | None = None
    # Files kept beside the input (``documents/<name>``), never copied into the tasks.
    documents: Mapping[str, bytes] = field(default_factory=dict)
    # The input's cache key.
    input_key: str | None = None


def _over_queue_limits(core: Core, session: Session, service: str, owner_id: int) -> bool:
    """Whether the service's pending jobs, all users' or this user's, are at their limit."""
    limits = core.catalog.get(service).settings
    total, mine = repo.pending_counts(session, service, owner_id)
    return total >= limits.max_queued or mine >= limits.max_queued_per_user


def queue_full(core: Core, service: str, owner_id: int) -> bool:
    """Whether a submission by ``owner_id`` now would be refused with QueueFull."""
    with core.db.transaction(write=False) as session:
        return _over_queue_limits(core, session, service, owner_id)


def _check_queue(core: Core, session: Session, request: StoredJob) -> None:
    repo.lock_admission_cursor(session, request.service)  # one submission per service at a time
    if _over_queue_limits(core, session, request.service, request.owner_id):
        raise QueueFull(
            f"Queue for service '{request.service}' is full. Try again later.",
            retry_after=DEFAULT_RETRY_AFTER,
        )


def store_job(
    core: Core, request: StoredJob, staged_input: Path, reuse: CachedResults | None = None
) -> JobRecord:
    """Create a job from files already staged on disk (they are moved, not copied); with
    ``reuse``, completed at once with a copy of those results instead of running.

    Nothing runs yet; the dispatcher is woken to consider it. Over a queue limit, QueueFull
    and nothing is stored.
    """
    service = core.catalog.require_available(request.service)
    input_key = request.input_key or directory_key(
        request.service, service.plugin.version, staged_input
    )
    job_id = uuid.uuid4().hex
    try:
        with core.db.transaction() as session:
            if request.queue_limits:
                _check_queue(core, session, request)
            row = repo.add_job(
                session,
                JobRow(
                    id=job_id,
                    owner_id=request.owner_id,
                    service=request.service,
                    name=request.name or request.name_prefix,
                    state=JobState.PENDING.value,
                    stage=JobStage.QUEUED.value,
                    priority=request.priority,
                    ntasks=request.ntasks,
                    input_hash=input_key,
                    created_at=utcnow(),
                    yaptide_id=request.yaptide_id,
                    attrs=dict(request.attrs) if request.attrs is not None else None,
                    update_key_sha256=request.update_key_sha256,
                    executor=request.executor,
                ),
                request.ntasks,
                request.seeds,
                request.task_primaries,
            )
            if request.name is None:
                row.name = f"{request.name_prefix}-{row.number}"
            append_event(
                session,
                job_id,
                "submitted",
                {"service": request.service, "ntasks": request.ntasks},
            )
            core.files.create_job_dir(job_id, staged_input, request.ntasks)
            for name, data in request.documents.items():
                core.files.write_document(job_id, name, data)
            if reuse is not None:
                complete_from_cache(core, session, job_id, reuse)
            record = repo.job_record(row, repo.job_tasks(session, job_id))
    except BaseException:
        shutil.rmtree(core.files.job_dir(job_id), ignore_errors=True)
        raise
    core.wake()
    return record
