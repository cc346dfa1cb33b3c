"""Reports from workers outside the server process (yaptide.md §4): task updates, job-level
reports, results and log files. Every report is idempotent: repeated, stale or out-of-order
updates change nothing and say so.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from cyclotron.domain.records import ErrorKind, JobRecord
from cyclotron.domain.states import JOB_TERMINAL, TASK_TERMINAL, JobStage, JobState, TaskState
from cyclotron.errors import ConflictError, InputError, NotFound
from cyclotron.estimators.model import EstimatorError, validate_estimators
from cyclotron.estimators.store import read_results, write_results, write_task_estimators
from cyclotron.services.core import Core
from cyclotron.services.jobs.logs import store_log_texts
from cyclotron.services.running.lifecycle import settle_job
from cyclotron.services.running.merges import merge_job
from cyclotron.services.yaptide.simulations import (
    check_update_key,
    find_simulation,
    update_key_digest,
    updated_simulation_in,
)
from cyclotron.storage import jobs as repo
from cyclotron.storage.tables import utcnow
from cyclotron.storage.transitions import (
    TaskColumns,
    change_job_state,
    change_task_state,
    end_job,
    end_open_tasks,
)

log = logging.getLogger(__name__)

MAX_BULK = 1000
UNKNOWN_SIMULATION = "Simulation does not exist"
WORKER_TASK_STATES = {"RUNNING", "COMPLETED", "FAILED"}
WORKER_JOB_STATES = {"RUNNING", "MERGING_QUEUED", "MERGING_RUNNING", "COMPLETED", "FAILED"}
# How far along an active job is: a worker's report never moves it back.
_ORDER = {
    JobState.PENDING: 0,
    JobState.RUNNING: 1,
    JobState.MERGING_QUEUED: 2,
    JobState.MERGING_RUNNING: 3,
}


def parse_time(value: Any) -> datetime:
    """A worker's time: ``YYYY-mm-dd HH:MM:SS[.ffffff]`` (UTC), ISO 8601, or an HTTP-date."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"Invalid time: {value!r}")
    text = value.strip()
    for pattern in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text).astimezone(UTC)
    except (TypeError, ValueError):
        pass
    raise InputError(f"Invalid time: {value!r}")


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{name} must be an integer >= 0")
    return value


@dataclass(frozen=True)
class Authorised:
    job: JobRecord


def authorise(core: Core, simulation_id: str, update_key: str) -> Authorised:
    """404 for an unknown simulation, 403 for a key that is not this job's (in that order)."""
    try:
        job = find_simulation(core, simulation_id, owner_id=None)
    except NotFound as exc:
        raise NotFound(UNKNOWN_SIMULATION) from exc
    check_update_key(core, job, update_key_digest(core, job.id), update_key)
    return Authorised(job)


def task_index(value: Any) -> int:
    """A 1-based ``task_id`` (an integer or a string of digits) as the 0-based index."""
    if isinstance(value, bool):
        raise InputError("task_id must be an integer")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or value < 1:
        raise InputError("task_id must be an integer >= 1")
    return value - 1


def _apply(
    session: Session, job_id: str, index: int, task: Row[Any], update: Mapping[str, Any]
) -> tuple[str | None, TaskState | None]:
    """Apply one task's update (§4.2) to its row (``repo.reported_task``): None when it
    changed something, else why it was ignored; and the state the task moved to, if any.

    Every refusal comes before the first write: a refused update changes nothing.
    """
    number = index + 1
    state = TaskState(task.state)
    if state in TASK_TERMINAL:
        return f"Update ignored: task {number} is {state.value}", None
    attempt = update.get("attempt")
    if attempt is not None and _count(attempt, "attempt") < task.attempt:
        return f"Update ignored: attempt {attempt} of task {number} is stale", None
    target: TaskState | None = None
    if "task_state" in update:
        wanted = update["task_state"]
        if not isinstance(wanted, str) or wanted.upper() not in WORKER_TASK_STATES:
            raise InputError("task_state must be RUNNING, COMPLETED or FAILED")
        target = TaskState(wanted.upper())
        if target == state:
            target = None
    start = parse_time(update["start_time"]) if update.get("start_time") else None
    end = parse_time(update["end_time"]) if update.get("end_time") else None
    simulated = update.get("simulated_primaries")
    if simulated is not None:
        simulated = _count(simulated, "simulated_primaries")
    eta = update.get("estimated_time")
    if eta is not None:
        eta = _count(eta, "estimated_time")
    requested = update.get("requested_primaries")
    if requested is not None and requested != task.requested_primaries:
        log.info("task %s: worker's requested_primaries %r ignored", number, requested)
    now = utcnow()
    values: dict[str, Any] = {}
    share = task.requested_primaries or 0
    if simulated is not None and share:
        value = float(min(simulated, share))
        if value > task.progress_done or task.progress_total != share:
            values["progress_done"] = max(task.progress_done, value)
            values["progress_total"] = float(share)
    if eta is not None and task.ended_at is None and task.estimated_seconds != eta:
        values["estimated_seconds"] = eta
    started = task.started_at
    if start is not None and started is None:
        values["started_at"] = started = start
    worker_ref = update.get("celery_id")
    if isinstance(worker_ref, str) and task.worker_ref != worker_ref[:255]:
        values["worker_ref"] = worker_ref[:255]
    if values:
        values["last_update_at"] = now
        repo.set_task_columns(session, job_id, index, values)
    if target is not None:
        if target == TaskState.RUNNING:
            columns: TaskColumns = {"started_at": started or now}
        else:
            ended = end or now
            columns = {
                "ended_at": ended,
                "started_at": started or ended,
                "estimated_seconds": None,
            }
            if target == TaskState.COMPLETED:
                columns["progress_done"] = columns["progress_total"] = float(share)
            else:
                columns["error"] = "reported failed by its worker"
                columns["error_kind"] = ErrorKind.EXIT
        # The move sets the task's last update time too.
        if change_task_state(session, job_id, index, target, **columns):
            return None, target
    if values:
        return None, None
    return f"Update ignored: nothing new for task {number}", None


def _derive(core: Core, session: Session, job_id: str) -> bool:
    """Re-derive a PENDING or RUNNING job's state from its tasks (§5.3); True: merge now."""
    session.flush()  # the reads below go to the database itself
    state = repo.job_state(session, job_id)
    if state not in (JobState.PENDING.value, JobState.RUNNING.value):
        return False
    # Counted by the database: a worker of a 1,000-task job reports every task's progress.
    counts = repo.task_state_counts(session, job_id)
    if all(TaskState(name) in TASK_TERMINAL for name in counts):
        return settle_job(core, session, job_id)
    if state == JobState.PENDING.value and set(counts) != {TaskState.PENDING.value}:
        change_job_state(
            session, job_id, JobState.RUNNING, stage=JobStage.RUNNING, started_at=utcnow()
        )
    return False


@dataclass(frozen=True)
class BulkOutcome:
    applied: int
    ignored: int
    rejected: list[dict[str, Any]]


Updates = Sequence[tuple[Any, Any]]  # (task_id, update_dict) pairs


def update_tasks(core: Core, job: JobRecord, items: Updates) -> tuple[BulkOutcome, list[str]]:
    """Apply ``(task_id, update_dict)`` pairs in order in one transaction (§4.2, §4.3)."""
    return _updated_tasks(core, lambda _session: (job, items))


def reported_updates(
    core: Core, simulation_id: str, key: str, updates: Callable[[], Updates]
) -> tuple[BulkOutcome, list[str]]:
    """As ``update_tasks``, for a worker's report: the job its simulation id names, its key
    checked (404, then 403), then the updates ``updates()`` gives (what it raises is the
    answer), all in the updates' own transaction."""

    def named(session: Session) -> tuple[JobRecord, Updates]:
        try:
            job = updated_simulation_in(core, session, simulation_id, key)
        except NotFound as exc:
            raise NotFound(UNKNOWN_SIMULATION) from exc
        return job, updates()

    return _updated_tasks(core, named)


def _updated_tasks(
    core: Core, named: Callable[[Session], tuple[JobRecord, Updates]]
) -> tuple[BulkOutcome, list[str]]:
    applied, ignored, rejected, messages = 0, 0, [], []
    merge = ended = moved = False
    with core.db.transaction() as session:
        job, items = named(session)
        repo.lock_job_tasks(session, job.id)
        for raw_id, update in items:
            try:
                index = task_index(raw_id)
                if not isinstance(update, Mapping):
                    raise InputError("update_dict must be an object")
                task = repo.reported_task(session, job.id, index)
                if task is None:
                    raise NotFound(f"Task {raw_id} does not exist")
                why, moved_to = _apply(session, job.id, index, task, update)
            except (InputError, NotFound) as exc:
                rejected.append({"task_id": raw_id, "message": exc.message})
                messages.append(exc.message)
                continue
            if why is None:
                applied += 1
                moved = moved or moved_to is not None
                ended = ended or moved_to in TASK_TERMINAL
            else:
                ignored += 1
                messages.append(why)
        # A RUNNING job's state follows from its tasks' states: while none moved, it stands
        # (the task updated is not ended, so not all of them are).
        if applied and (moved or job.state != JobState.RUNNING):
            merge = _derive(core, session, job.id)
    if merge:
        merge_job(core, job.id)
    if ended:
        # A task that ended frees its slot; progress and starts leave the dispatcher nothing
        # to do (and on PostgreSQL each wake-up is a NOTIFY to every server process).
        core.wake()
    return BulkOutcome(applied, ignored, rejected), messages


def report_job(core: Core, job: JobRecord, body: Mapping[str, Any]) -> str:
    """A job-level report (§4.4)."""
    logs = body.get("log")
    if logs is not None:
        if not isinstance(logs, Mapping):
            raise InputError("log must be an object of {name: text}")
        store_log_texts(core, job.id, None, logs)
    wanted = body.get("job_state")
    bookkeeping = {
        k: body[k]
        for k in ("job_dir", "array_id", "collect_id", "submit_stdout", "sh_files")
        if k in body
    }
    if wanted is None:
        _keep_bookkeeping(core, job.id, bookkeeping)
        return "Job updated"
    if not isinstance(wanted, str) or wanted.upper() not in WORKER_JOB_STATES:
        raise InputError(
            "job_state must be RUNNING, MERGING_QUEUED, MERGING_RUNNING, COMPLETED or FAILED"
        )
    target = JobState(wanted.upper())
    _keep_bookkeeping(core, job.id, bookkeeping)
    if job.state in JOB_TERMINAL:
        return f"Update ignored: job is {job.state.value}"
    with core.db.transaction() as session:
        repo.lock_job_tasks(session, job.id)
        row = repo.find_job(session, job.id)
        assert row is not None
        current = JobState(row.state)
        if target == JobState.COMPLETED:
            if read_results(core.files.results_dir(job.id)) is None:
                raise ConflictError("Cannot complete a job before its results are stored")
            end_job(session, job.id, JobState.COMPLETED)
            end_open_tasks(session, job.id, TaskState.COMPLETED)
        elif target == JobState.FAILED:
            end_job(
                session,
                job.id,
                JobState.FAILED,
                error="reported failed by its worker",
                error_kind=ErrorKind.EXIT,
            )
            end_open_tasks(
                session, job.id, TaskState.FAILED, error="the job failed", error_kind="exit"
            )
        elif _ORDER.get(target, -1) <= _ORDER.get(current, 99):
            return f"Update ignored: job is {current.value}"
        else:
            stage = {
                JobState.RUNNING: JobStage.RUNNING,
                JobState.MERGING_QUEUED: JobStage.MERGING_QUEUED,
                JobState.MERGING_RUNNING: JobStage.MERGING,
            }[target]
            change_job_state(session, job.id, target, stage=stage)
    # After the commit: an ended job frees its service's slot for a queued one.
    core.wake()
    return "Job updated"


def _keep_bookkeeping(core: Core, job_id: str, values: Mapping[str, Any]) -> None:
    """Batch ids and paths, stored once and never shown."""
    if not values:
        return
    with core.db.transaction() as session:
        row = repo.find_job(session, job_id)
        if row is None:
            return
        attrs = dict(row.attrs or {})
        batch = dict(attrs.get("batch") or {})
        for key, value in values.items():
            batch.setdefault(key, value)
        attrs["batch"] = batch
        row.attrs = attrs


def _digest(estimators: Any) -> str:
    text = json.dumps({"estimators": estimators}, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def store_results(core: Core, job: JobRecord, body: Mapping[str, Any]) -> str:
    """Final results (no task_id) complete the job; per-task results wait for the merge."""
    try:
        estimators = validate_estimators(body.get("estimators"))
    except EstimatorError as exc:
        raise InputError(f"Invalid estimators: {exc}") from exc
    if job.state in (JobState.FAILED, JobState.CANCELED):
        return f"Update ignored: job is {job.state.value}"
    raw_task = body.get("task_id")
    if raw_task is not None:
        index = task_index(raw_task)
        if not any(t.index == index for t in job.tasks):
            raise NotFound(f"Task {raw_task} does not exist")
        write_task_estimators(core.files.task_dir(job.id, index), estimators)
        return "Results saved"
    results_dir = core.files.results_dir(job.id)
    with core.db.transaction() as session:
        repo.lock_job_tasks(session, job.id)
        row = repo.find_job(session, job.id)
        assert row is not None
        stored = read_results(results_dir)
        if stored is not None:
            if _digest(stored) == _digest(estimators):
                return "Update ignored: identical results already stored"
            raise ConflictError("Results already stored")
        if JobState(row.state) in JOB_TERMINAL:
            return f"Update ignored: job is {row.state}"
        write_results(results_dir, estimators)
        end_open_tasks(session, job.id, TaskState.COMPLETED)
        for task in repo.job_tasks(session, job.id):
            if task.state == TaskState.COMPLETED.value and task.requested_primaries:
                task.progress_done = task.progress_total = float(task.requested_primaries)
            if task.started_at is None and task.ended_at is not None:
                task.started_at = task.ended_at
        end_job(session, job.id, JobState.COMPLETED)
    core.wake()
    return "Results saved"
