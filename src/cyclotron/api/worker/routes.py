"""Routes of remote workers: claim an attempt, fetch its input, report, upload, end.

Every route is scoped to one attempt of one task and authorised by that attempt's token,
sent as ``Authorization: Bearer``; it never travels in a URL. An attempt that is no longer
wanted answers 410, a second worker on a live attempt 409; both tell the worker to drop it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from cyclotron.api.deps import CoreDep, bearer_token
from cyclotron.api.errors import FaceRoute
from cyclotron.domain.ports import ProgressReport, TaskOutcome
from cyclotron.domain.text import text_problem
from cyclotron.errors import PayloadTooLarge
from cyclotron.services.core import Core
from cyclotron.services.running import workers as remote_tasks
from cyclotron.signing import SigningKeys, TaskTokens

router = APIRouter(prefix="/api/worker", route_class=FaceRoute, tags=["workers"])

MAX_ARGV = 256
MAX_TEXT = 65_536


def _one_line(text: str) -> str:
    """A worker's name and its stage are stored: one-line text (domain/text.py)."""
    problem = text_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text


OneLine = AfterValidator(_one_line)
WorkerName = Annotated[str, Field(min_length=1, max_length=remote_tasks.MAX_WORKER_NAME), OneLine]


class Detail(BaseModel):
    detail: Any


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Detail, "description": "Bad input"},
    401: {"model": Detail, "description": "Missing or invalid task token"},
    404: {"model": Detail, "description": "No such task"},
    409: {"model": Detail, "description": "Another worker runs this attempt"},
    410: {"model": Detail, "description": "The attempt is no longer wanted"},
}


class AttemptBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    attempt: int = Field(ge=1, le=1_000_000)
    worker: WorkerName


ProgressCounter = Literal[
    "recycling_iteration", "recycling_total", "diffusion_step", "diffusion_total"
]


class ProgressBody(BaseModel):
    done: float = Field(ge=0)
    total: float = Field(ge=0)
    stage: Annotated[str, OneLine] | None = Field(None, max_length=200)
    eta_seconds: float | None = Field(None, ge=0)
    counters: dict[ProgressCounter, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)


class HeartbeatBody(AttemptBody):
    progress: ProgressBody | None = None


class FinishBody(AttemptBody):
    exit_code: int | None = None
    stderr_tail: str = Field("", max_length=MAX_TEXT)
    timed_out: bool = False
    cancelled: bool = False
    interrupted: bool = False
    limit_hit: Literal["output", "cpu", "memory", "processes"] | None = None
    error: str | None = Field(None, max_length=MAX_TEXT)
    seconds: float | None = Field(None, ge=0)
    argv: list[Annotated[str, Field(max_length=4096)]] = Field(default_factory=list)


class AssignmentPublic(BaseModel):
    job_id: str
    task_index: int
    attempt: int
    ntasks: int
    seed: int
    service: str
    plugin: str
    options: dict[str, Any]
    time_limit: float | None
    lease_seconds: float
    env: dict[str, str]
    limits: dict[str, Any]


class HeartbeatPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    go_on: bool = Field(alias="continue")


class StoredPublic(BaseModel):
    files: int


class FinishedPublic(BaseModel):
    recorded: bool


def _tokens(request: Request, core: Core) -> TaskTokens:
    tokens: TaskTokens | None = getattr(request.app.state, "task_tokens", None)
    if tokens is None:
        tokens = TaskTokens(SigningKeys.of_server(core.settings))
        request.app.state.task_tokens = tokens
    return tokens


class TaskPath:
    """The attempt a request speaks for, once its token is checked."""

    def __init__(
        self,
        request: Request,
        core: CoreDep,
        job_id: Annotated[str, PathParam(min_length=1, max_length=64)],
        index: Annotated[int, PathParam(ge=0, le=1_000_000)],
    ) -> None:
        self.request, self.core, self.job_id, self.index = request, core, job_id, index

    def check(self, attempt: int) -> None:
        token = bearer_token(self.request)
        _tokens(self.request, self.core).check(token, self.job_id, self.index, attempt)


TaskDep = Annotated[TaskPath, Depends()]
TASK = "/tasks/{job_id}/{index}"


@router.post(f"{TASK}/claim", response_model=AssignmentPublic, responses=_ERRORS)
async def claim(task: TaskDep, body: AttemptBody) -> dict[str, Any]:
    """Take the lease of an attempt the broker delivered; what to run comes back."""
    task.check(body.attempt)
    assignment = await run_in_threadpool(
        remote_tasks.claim, task.core, task.job_id, task.index, body.attempt, body.worker
    )
    return assignment.as_wire()


@router.post(f"{TASK}/heartbeat", response_model=HeartbeatPublic, responses=_ERRORS)
async def heartbeat(task: TaskDep, body: HeartbeatBody) -> dict[str, bool]:
    """Renew the lease, with the latest progress; ``continue`` false means stop the task."""
    task.check(body.attempt)
    report = None
    if body.progress is not None:
        p = body.progress
        counters = {str(name): value for name, value in p.counters.items()}
        report = ProgressReport(p.done, p.total, p.stage, p.eta_seconds, counters)
    go_on = await run_in_threadpool(
        remote_tasks.heartbeat,
        task.core,
        task.job_id,
        task.index,
        body.attempt,
        body.worker,
        report,
    )
    return {"continue": go_on}


@router.get(
    f"{TASK}/input",
    response_class=FileResponse,
    responses={**_ERRORS, 200: {"content": {"application/gzip": {}}}},
)
async def job_input(
    task: TaskDep,
    attempt: Annotated[int, Query(ge=1, le=1_000_000)],
    worker: Annotated[str, Query(min_length=1, max_length=remote_tasks.MAX_WORKER_NAME)],
) -> FileResponse:
    """The job's input files as a gzipped tar."""
    task.check(attempt)
    path = await run_in_threadpool(
        remote_tasks.input_archive, task.core, task.job_id, task.index, attempt, worker
    )
    return FileResponse(path, media_type="application/gzip", filename="input.tar.gz")


@router.put(f"{TASK}/output", response_model=StoredPublic, responses={**_ERRORS, 413: _ERRORS[400]})
async def output(
    task: TaskDep,
    attempt: Annotated[int, Query(ge=1, le=1_000_000)],
    worker: Annotated[str, Query(min_length=1, max_length=remote_tasks.MAX_WORKER_NAME)],
) -> dict[str, int]:
    """What the task wrote (``work/…``) and its logs (``logs/stdout``, ``logs/stderr``), as a
    tar; it replaces an earlier upload of the same attempt."""
    task.check(attempt)
    core = task.core
    limit = core.settings.server.max_upload_bytes
    await run_in_threadpool(
        remote_tasks.require_held, core, task.job_id, task.index, attempt, worker
    )
    handle, name = tempfile.mkstemp(dir=core.files.job_dir(task.job_id), prefix=".upload-")
    os.close(handle)
    try:
        size = 0
        async with await anyio.open_file(name, "wb") as out:
            async for chunk in task.request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the task's outputs exceed {limit} bytes")
                await out.write(chunk)
        count = await run_in_threadpool(
            remote_tasks.store_output,
            core,
            task.job_id,
            task.index,
            attempt,
            worker,
            Path(name),
        )
    finally:
        await anyio.Path(name).unlink(missing_ok=True)
    return {"files": count}


@router.post(f"{TASK}/finish", response_model=FinishedPublic, responses=_ERRORS)
async def finish(task: TaskDep, body: FinishBody) -> dict[str, bool]:
    """How the attempt's process ended; sent after its outputs were uploaded."""
    task.check(body.attempt)
    outcome = TaskOutcome(
        exit_code=body.exit_code,
        stderr_tail=body.stderr_tail,
        timed_out=body.timed_out,
        cancelled=body.cancelled,
        interrupted=body.interrupted,
        error=body.error,
        seconds=body.seconds,
        limit_hit=body.limit_hit,
    )
    recorded = await run_in_threadpool(
        remote_tasks.finish,
        task.core,
        task.job_id,
        task.index,
        body.attempt,
        body.worker,
        outcome,
        tuple(body.argv[:MAX_ARGV]),
    )
    return {"recorded": recorded}
