"""Response bodies of the native face (``XPublic`` names, as FastAPI's template teaches)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import compress
from operator import itemgetter, ne
from typing import Any

import orjson
from fastapi import Response
from pydantic import BaseModel, ConfigDict

from cyclotron.api.native.status import (
    TASK_STATUS,
    count,
    job_error,
    job_percent,
    job_stage,
    job_status,
)
from cyclotron.domain.records import JobRecord, TaskSummary
from cyclotron.domain.states import JobState, TaskState


class ProblemPublic(BaseModel):
    """One entry of FastAPI's 422 list: ``{"loc": [...], "msg": ..., "type": ...}``."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    msg: str
    type: str


class ProblemsPublic(BaseModel):
    """A 422 of this face, schema and value errors alike: FastAPI's list of problems."""

    detail: list[ProblemPublic]


class MessagePublic(BaseModel):
    """Every other error answer of this face: one message."""

    detail: str


_ERRORS = {
    400: "Refused in the job's present state, or a bad path",
    401: "Authentication is on and the API key is missing or unknown",
    403: "Not allowed for this caller",
    404: "Unknown job, or one of another owner",
    409: "The job finished meanwhile",
    410: "Job files have been removed",
    413: "Request body too large",
    422: "Schema or value errors in the request",
    429: "Queue full; see Retry-After",
    503: "Service unavailable",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for a route's error codes (401 always: API keys may be on)."""
    return {
        code: {
            "model": ProblemsPublic if code == 422 else MessagePublic,
            "description": _ERRORS[code],
        }
        for code in sorted({401, *codes})
    }


class ErrorPublic(BaseModel):
    code: str
    message: str


class TaskPublic(BaseModel):
    index: int
    state: str
    percent: float
    seed: int
    requested_primaries: int | float | None
    simulated_primaries: int | float | None
    eta_seconds: float | None
    executor: str
    attempt: int
    exit_code: int | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None


def task_body(task: Sequence[Any], executor: str) -> dict[str, Any]:
    """TaskPublic's fields as plain values of its types, of the values of a task's columns
    (``DETAIL_TASK_COLUMNS`` of the storage, then any others: a job may have 1,000 tasks,
    so the status and percent of ``status.py`` are inlined)."""
    index, state, seed, attempt, done, total, primaries, eta, exit_code, error, start, end = task[
        :12
    ]
    requested = primaries or total or None
    if state == TaskState.COMPLETED:
        percent = 100.0
    elif total > 0:
        percent = round(min(100.0, 100.0 * done / total), 2)
    else:
        percent = 0.0
    return {
        "index": index,
        "state": TASK_STATUS[state],
        "percent": percent,
        "seed": seed,
        "requested_primaries": count(requested) if requested is not None else None,
        "simulated_primaries": count(done) if total or primaries else None,
        "eta_seconds": float(eta) if eta is not None and state == TaskState.RUNNING else None,
        "executor": executor,
        "attempt": attempt,
        "exit_code": exit_code,
        "error": error,
        "started_at": start,
        "finished_at": end,
    }


class JobPublic(BaseModel):
    id: str
    number: int
    name: str
    service: str
    user_id: int
    status: str
    stage: str
    percent: float
    ntasks: int
    tasks_done: int
    tasks_failed: int
    files_available: bool
    error: ErrorPublic | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # Aliases kept for clients of the AlphaFold 3 app.
    progress: float
    error_message: str | None
    num_residues: int | None = None
    num_chains: int | None = None


def job_body(job: JobRecord) -> dict[str, Any]:
    """JobPublic's fields as plain values of its types."""
    error = job_error(job)
    percent = job_percent(job)
    summary = job.task_summary
    return {
        "id": job.id,
        "number": job.number,
        "name": job.name,
        "service": job.service,
        "user_id": job.owner_id,
        "status": job_status(job),
        "stage": job_stage(job),
        "percent": percent,
        "ntasks": job.ntasks,
        "tasks_done": summary.tally(TaskState.COMPLETED).count,
        "tasks_failed": summary.tally(TaskState.FAILED).count,
        "files_available": job.cleaned_at is None,
        "error": error,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.ended_at,
        "progress": percent,
        "error_message": error["message"] if error else None,
        "num_residues": job.attrs.get("num_residues"),
        "num_chains": job.attrs.get("num_chains"),
    }


class InputFilePublic(BaseModel):
    name: str
    size: int


class InputPublic(BaseModel):
    kind: str
    key: str | None
    primaries: int | None = None
    files: list[InputFilePublic]


class JobDetailPublic(JobPublic):
    # AlphaFold 3 jobs also carry input_json, num_samples, diffusion_steps, precision,
    # run_data_pipeline and use_cache (spec/native.md §5).
    model_config = ConfigDict(extra="allow")

    priority: int
    seeds: list[int]
    # The plug-in that ran it, and the one its service stands in for (spec: none).
    engine: str | None = None
    stands_in_for: str | None = None
    current_stage: str
    last_event_seq: int
    options: dict[str, object]
    warnings: list[str]
    reused: dict[str, object] | None
    input: InputPublic
    tasks: list[TaskPublic]


_SEED = itemgetter(2)
# Between two tasks' bodies in a list's JSON, and nowhere else: a body holds no object, and a
# quote in a string is escaped. A task's piece is its body less ``{"index":`` and ``}``.
_FIRST, _BETWEEN, _LAST = b'[{"index":', b'},{"index":', b"}]"


def _pieces(bodies: list[dict[str, Any]]) -> list[bytes]:
    """The bodies' pieces, encoded in one call (orjson's cost per call is that of 10 tasks)."""
    if not bodies:
        return []
    return orjson.dumps(bodies, option=orjson.OPT_UTC_Z)[len(_FIRST) : -len(_LAST)].split(_BETWEEN)


@dataclass(frozen=True)
class TaskParts:
    """What a job's detail shows of its tasks, encoded once: a job may have 1,000 tasks, and
    a detail shows them all (spec/native.md §5), so this is kept while they do not change,
    and each task's piece of it (``pieces``, of the row at its place in ``rows``) while
    that task does not."""

    summary: TaskSummary
    seeds: orjson.Fragment
    tasks: orjson.Fragment
    failed: tuple[int, ...]
    executor: str
    rows: Sequence[Sequence[Any]]
    pieces: list[bytes]


def task_parts(
    tasks: Sequence[Sequence[Any]],
    shown: Callable[[Sequence[Any]], Sequence[Any]],
    summary: TaskSummary,
    executor: str,
    earlier: TaskParts | None = None,
) -> TaskParts:
    """The parts of a job's tasks, each a row of which ``shown`` makes the values of its
    columns (see ``task_body``), its index, state name and seed first; a row equal to the
    one at its place in ``earlier`` keeps that one's piece."""
    count = len(tasks)
    if earlier is None or earlier.executor != executor:
        pieces = _pieces([task_body(shown(task), executor) for task in tasks])
    else:
        kept = min(count, len(earlier.rows))
        pieces = earlier.pieces[:kept] + [b""] * (count - kept)
        changed = [*compress(range(kept), map(ne, tasks, earlier.rows)), *range(kept, count)]
        made = _pieces([task_body(shown(tasks[i]), executor) for i in changed])
        for i, piece in zip(changed, made, strict=True):
            pieces[i] = piece
    failed = TaskState.FAILED.value
    return TaskParts(
        summary=summary,
        seeds=orjson.Fragment(orjson.dumps(list(map(_SEED, tasks)))),
        tasks=orjson.Fragment(_FIRST + _BETWEEN.join(pieces) + _LAST if pieces else b"[]"),
        failed=tuple([t[0] for t in tasks if t[1] == failed]),
        executor=executor,
        rows=tasks,
        pieces=pieces,
    )


def detail_body(
    job: JobRecord,
    parts: TaskParts,
    inputs: list[tuple[str, int]],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """JobDetailPublic's fields as plain values of its types (its tasks' already encoded),
    ``extra`` last."""
    summary = job_body(job)
    completed = job.state == JobState.COMPLETED
    return {
        **summary,
        "priority": job.priority,
        "seeds": parts.seeds,
        "engine": job.attrs.get("engine"),
        "stands_in_for": job.attrs.get("stands_in_for"),
        "current_stage": summary["stage"],
        "last_event_seq": job.last_event_seq,
        "options": {},
        "warnings": [
            f"task {index} failed and is left out of the results"
            for index in (parts.failed if completed else ())
        ],
        "reused": job.attrs.get("reused"),
        "input": {
            "kind": job.attrs.get("input_kind") or job.attrs.get("input_type") or "files",
            "key": job.input_key,
            "primaries": job.attrs.get("primaries"),
            "files": [{"name": name, "size": size} for name, size in inputs],
        },
        "tasks": parts.tasks,
        **(extra or {}),
    }


def job_item(job: JobRecord) -> orjson.Fragment:
    """A job's entry of a list, encoded: kept while the job's mark stays (api/native/lists.py)."""
    return orjson.Fragment(orjson.dumps(job_body(job), option=orjson.OPT_UTC_Z))


def jobs_body(
    items: list[orjson.Fragment], total: int, page: int, page_size: int
) -> dict[str, Any]:
    """JobsPublic's fields, its jobs encoded (``job_item``)."""
    return {
        "jobs": items,
        "total": total,
        "page": page,
        "page_size": page_size,
    }


def json_answer(body: dict[str, Any], status_code: int = 200) -> Response:
    """A body of plain values (``*_body``) as JSON, encoded once, in Rust: a job's detail
    may hold 1,000 tasks. Datetimes read as pydantic writes them (``…Z``)."""
    return Response(
        orjson.dumps(body, option=orjson.OPT_UTC_Z), status_code, media_type="application/json"
    )


class JobsPublic(BaseModel):
    jobs: list[JobPublic]
    total: int
    page: int
    page_size: int


class StatusPublic(BaseModel):
    status: str


class CreatedPublic(BaseModel):
    id: str
    status: str
    number: int


class StreamLogPublic(BaseModel):
    index: int
    state: str
    exit_code: int | None
    stdout: str
    stderr: str
    stdout_size: int
    stderr_size: int
    truncated: bool


class LogsPublic(BaseModel):
    job_id: str
    tasks: list[StreamLogPublic]
