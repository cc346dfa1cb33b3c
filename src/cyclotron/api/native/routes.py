"""Job routes of the native face: list, inspect, cancel, delete, logs."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from cyclotron.api.deps import CoreDep, bearer_token
from cyclotron.api.native.detail import job_detail, task_parts_memo
from cyclotron.api.native.errors import NativeFaceError, NativeFaceRoute, NativeReadRoute
from cyclotron.api.native.lists import LIST_QUERY, jobs_page
from cyclotron.api.native.schemas import (
    JobDetailPublic,
    JobsPublic,
    LogsPublic,
    StatusPublic,
    StreamLogPublic,
    error_responses,
    json_answer,
)
from cyclotron.api.native.status import job_status, task_status
from cyclotron.domain.records import Caller
from cyclotron.errors import ConflictError, NotFound, TransitionRefused
from cyclotron.services.access.apikeys import authenticate
from cyclotron.services.jobs.cancel import cancel_job, termination_in_progress
from cyclotron.services.jobs.delete import delete_job
from cyclotron.services.jobs.logs import task_logs
from cyclotron.services.jobs.queries import JobRef, get_job

router = APIRouter(prefix="/api", route_class=NativeFaceRoute, tags=["native"])

_HEX_ID = re.compile(r"^[0-9a-f]{32}$")
_NUMBER = re.compile(r"^[0-9]{1,10}$")


def native_caller(request: Request, core: CoreDep) -> Caller:
    return authenticate(core, bearer_token(request))


CallerDep = Annotated[Caller, Depends(native_caller)]


def job_ref(id: str) -> JobRef:
    """A 32-hex id or a decimal number; anything else is an unknown job."""
    if _HEX_ID.match(id):
        return JobRef(job_id=id)
    if _NUMBER.match(id):
        return JobRef(number=int(id))
    raise NotFound(f"Job {id} not found")


async def _path_ref(id: str) -> JobRef:
    # ``async``: FastAPI runs a plain function dependency in a worker thread, a hop that
    # costs more than the match itself.
    return job_ref(id)


RefDep = Annotated[JobRef, Depends(_path_ref)]


router.add_api_route(
    "/jobs",
    jobs_page,
    methods=["GET"],
    response_model=JobsPublic,
    summary="List jobs, newest first",
    responses=error_responses(422),
    openapi_extra={"parameters": LIST_QUERY},
    route_class_override=NativeReadRoute,
)


@router.get(
    "/jobs/{id}",
    response_model=JobDetailPublic,
    summary="One job with its tasks",
    responses=error_responses(404),
)
def job(request: Request, core: CoreDep, caller: CallerDep, ref: RefDep) -> Response:
    return json_answer(job_detail(core, caller, ref, task_parts_memo(request.app)))


@router.post(
    "/jobs/{id}/cancel",
    response_model=StatusPublic,
    summary="Cancel a job",
    responses={
        202: {"model": StatusPublic, "description": "Cancelling: processes still stopping"},
        **error_responses(400, 404, 409),
    },
)
def cancel(core: CoreDep, caller: CallerDep, ref: RefDep) -> JSONResponse:
    record = get_job(core, caller, ref)
    status = job_status(record)
    if status in ("completed", "failed", "cancelled"):
        if status == "cancelled" and termination_in_progress(core, record):
            return JSONResponse({"status": "cancelling"}, 202)
        raise NativeFaceError(400, f"Cannot cancel job with status {status}")
    try:
        result = cancel_job(core, caller, ref, wait=core.settings.api.cancel_wait)
    except TransitionRefused:
        raise NativeFaceError(
            409, f"Job {record.id} already finished and cannot be cancelled."
        ) from None
    except ConflictError:
        now = job_status(get_job(core, caller, ref))
        raise NativeFaceError(400, f"Cannot cancel job with status {now}") from None
    if result.processes_stopped:
        return JSONResponse({"status": "cancelled"})
    return JSONResponse({"status": "cancelling"}, 202)


@router.delete(
    "/jobs/{id}",
    response_model=StatusPublic,
    summary="Delete an ended job",
    responses=error_responses(400, 404),
)
def delete(core: CoreDep, caller: CallerDep, ref: RefDep) -> StatusPublic:
    try:
        delete_job(core, caller, ref)
    except ConflictError:
        status = job_status(get_job(core, caller, ref))
        raise NativeFaceError(
            400, f"Cannot delete job with status {status}. Cancel it first."
        ) from None
    return StatusPublic(status="deleted")


@router.get(
    "/jobs/{id}/logs",
    response_model=LogsPublic,
    summary="Tasks' stdout and stderr",
    responses=error_responses(404, 410, 422),
)
def logs(
    core: CoreDep,
    caller: CallerDep,
    ref: RefDep,
    task: Annotated[int | None, Query(ge=0)] = None,
    tail: Annotated[int, Query(ge=1, le=1_048_576)] = 65_536,
) -> LogsPublic:
    job_id, found = task_logs(core, caller, ref, task, tail)
    return LogsPublic(
        job_id=job_id,
        tasks=[
            StreamLogPublic(
                index=entry.task.index,
                state=task_status(entry.task),
                exit_code=entry.task.exit_code,
                stdout=entry.stdout.text,
                stderr=entry.stderr.text,
                stdout_size=entry.stdout.size,
                stderr_size=entry.stderr.size,
                truncated=entry.stdout.truncated or entry.stderr.truncated,
            )
            for entry in found
        ],
    )
