"""Storing a planned job: one transaction stores the job, its tasks and the answer kept under
its idempotency key; its input, staged beside, is moved into place once that is committed."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cyclotron.domain.primaries import split_primaries
from cyclotron.domain.records import JobRecord
from cyclotron.domain.states import JobStage, JobState
from cyclotron.errors import IdempotencyKeyReused, InputError, QueueFull
from cyclotron.services.core import Core
from cyclotron.services.intake.keys import directory_key
from cyclotron.services.intake.request import Answer, IdempotencyKey
from cyclotron.services.results.reuse import CachedResults, complete_from_cache, copy_results
from cyclotron.storage import jobs as repo
from cyclotron.storage.events import append_event
from cyclotron.storage.idempotency import KEY_LIFETIME, add_key, find_key
from cyclotron.storage.tables import IdempotencyKeyRow, JobRow, utcnow

DEFAULT_RETRY_AFTER = 30


def task_shares(
    core: Core,
    service: str,
    input_dir: Path,
    primaries: int | None,
    ntasks: int,
    where: tuple[str | int, ...] = ("input", "primaries"),
    *,
    fit: bool = True,
) -> list[int] | None:
    """Each task's primaries for a simulation service (None for other services).

    The total is ``primaries`` when given, else what the input states (at ``where`` in the
    request); InputError when it cannot be known or is above the service's ``max_primaries``.
    More tasks than primaries become one task per primary (``fit``), else InputError.
    """
    configured = core.catalog.get(service)
    plugin = configured.plugin
    if plugin.result_kind != "estimators":
        return None
    total = primaries if primaries is not None else plugin.total_primaries(input_dir)
    if total is None or total < 1:
        message = "cannot determine the number of primaries: the input states none"
        raise InputError(message, where)
    limit = configured.settings.max_primaries
    if total > limit:
        message = f"must be at most {limit} primaries for '{service}', not {total}"
        raise InputError(message, where)
    if ntasks > total and not fit:
        message = f"must be at most the number of primaries ({total}), not {ntasks}"
        raise InputError(message, ("ntasks",))
    return split_primaries(total, min(ntasks, total))


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


@dataclass(frozen=True)
class Submitted:
    """A job stored for a submission, or the one an earlier submission with the same
    idempotency key stored (``replayed``), with what the face answers."""

    job: JobRecord
    reused: bool  # completed at once with a copy of earlier results
    answer: Answer | None = None
    replayed: bool = False


Shape = Callable[[JobRecord, bool], Answer]


def earlier_submission(core: Core, owner_id: int, given: IdempotencyKey) -> Submitted | None:
    """The submission the owner made with this key in the last day, answered again; None if
    there is none. IdempotencyKeyReused when it was made with another request."""
    with core.db.transaction(write=False) as session:
        row = find_key(session, owner_id, given.key, utcnow() - KEY_LIFETIME)
        if row is None:
            return None
        if row.digest != given.digest:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was sent before with a different request; "
                "a new submission needs a new key"
            )
        job = repo.find_job(session, row.job_id)
        if job is None:
            return None
        record = repo.job_record(job, repo.job_tasks(session, job.id))
        answer = Answer(row.status_code, dict(row.response))
    return Submitted(record, "reused" in record.attrs, answer, replayed=True)


def store_job(
    core: Core,
    request: StoredJob,
    staged_input: Path,
    reuse: CachedResults | None = None,
    *,
    shape: Shape | None = None,
    idempotency: IdempotencyKey | None = None,
) -> Submitted:
    """Create a job from files already staged on disk (they are moved, not copied); with
    ``reuse``, completed at once with a copy of those results instead of running. ``shape``
    makes the face's answer, kept with the ``idempotency`` key in the same transaction.

    The job's directory is built in staging and moved into ``jobs/`` once its row is
    committed, so no directory there ever lacks its job. Nothing runs yet; the dispatcher is
    woken to consider it. Over a queue limit, QueueFull and nothing is stored. When another
    submission with the same key was stored first, its answer is returned (or
    IdempotencyKeyReused, for another request) and nothing is stored.
    """
    service = core.catalog.require_available(request.service)
    input_key = request.input_key or directory_key(
        request.service, service.plugin.version, staged_input
    )
    job_id = uuid.uuid4().hex
    staged = core.files.stage_job_dir(job_id, staged_input, request.ntasks, request.documents)
    try:
        if reuse is not None:
            copy_results(core, reuse, staged / "results")
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
            if reuse is not None:
                complete_from_cache(session, job_id, reuse)
            record = repo.job_record(row, repo.job_tasks(session, job_id))
            answer = shape(record, reuse is not None) if shape is not None else None
            if idempotency is not None:
                assert answer is not None, "an idempotency key keeps the face's answer"
                _keep(session, request.owner_id, idempotency, job_id, answer)
    except IntegrityError:
        shutil.rmtree(staged, ignore_errors=True)
        earlier = None
        if idempotency is not None:  # a submission with the same key was stored first
            earlier = earlier_submission(core, request.owner_id, idempotency)
        if earlier is None:
            raise
        return earlier
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    core.files.place_job_dir(staged, job_id)
    core.wake()
    return Submitted(record, reuse is not None, answer)


def _keep(
    session: Session, owner_id: int, given: IdempotencyKey, job_id: str, answer: Answer
) -> None:
    now = utcnow()
    row = IdempotencyKeyRow(
        owner_id=owner_id,
        key=given.key,
        digest=given.digest,
        job_id=job_id,
        status_code=answer.status_code,
        response=answer.body,
        created_at=now,
    )
    add_key(session, row, expired_before=now - KEY_LIFETIME)
