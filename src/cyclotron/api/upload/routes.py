"""Routes of the file-upload face."""

from __future__ import annotations

import pathlib
import shutil
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from cyclotron.api.deps import CoreDep, bearer_token
from cyclotron.api.idempotency import KeyHeader, with_key
from cyclotron.api.multipart import ReceivedForm, receive_multipart
from cyclotron.api.upload.errors import INVALID_SERVICE, UploadFaceError, UploadFaceRoute
from cyclotron.api.upload.status import (
    CLEANED_MESSAGE,
    TERMINAL_STATUSES,
    upload_message,
    upload_status,
)
from cyclotron.domain.records import Caller, JobRecord
from cyclotron.errors import (
    ConflictError,
    Forbidden,
    InputError,
    PayloadTooLarge,
    TransitionRefused,
)
from cyclotron.services.access.apikeys import authenticate
from cyclotron.services.core import Core
from cyclotron.services.intake import pipeline
from cyclotron.services.intake.request import Answer, IntakeRequest, StagedInput
from cyclotron.services.jobs.cancel import cancel_job, termination_in_progress
from cyclotron.services.jobs.queries import JobRef, get_job
from cyclotron.services.ops.health import database_reachable
from cyclotron.services.results.archives import zip_directory

router = APIRouter(route_class=UploadFaceRoute, tags=["file upload"])

MAX_ID = 2_147_483_647
RUN_SCRIPT = "run.sh"  # this face's one required file (spec/orchestrator.md §3.1)
TERMINATE_WAIT = 10.0
JobIdParam = Annotated[str, Path(description="The job's integer id", alias="id")]


def _job_number(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) > MAX_ID:
        raise InputError(f"Invalid job id {text!r}, should be an integer")
    return int(text)


def _caller(core: Core, request: Request) -> Caller:
    return authenticate(core, bearer_token(request))


def _find(core: Core, request: Request, job_id: str) -> tuple[Caller, JobRecord]:
    caller = _caller(core, request)
    # This face's statuses come from the job row alone.
    return caller, get_job(core, caller, JobRef(number=_job_number(job_id)), with_tasks=False)


def _state_body(job: JobRecord, message: str | None = None) -> dict[str, object]:
    status = upload_status(job)
    return {
        "id": job.number,
        "status": status,
        "message": upload_message(job) if message is None else message,
    }


def _user_id(value: str | None) -> int:
    if value is None:
        raise InputError("Missing user_id field")
    text = value.strip()
    if not text.isascii() or not text.isdigit() or int(text) > MAX_ID:
        raise InputError("Invalid user_id, should be a number")
    return int(text)


@router.post("/upload", status_code=201, summary="Submit run.sh and its files as a job")
async def upload(request: Request, core: CoreDep, idempotency: KeyHeader = None) -> JSONResponse:
    """The same ``Idempotency-Key`` and form (fields, file names and contents) again answer
    the first upload's 201; the key with another form, 409."""
    caller = (
        await run_in_threadpool(_caller, core, request)
        if core.settings.auth_enabled  # keys may need a database lookup
        else _caller(core, request)
    )
    staging = core.files.new_staging_area()
    try:
        form = await _received(request, core, staging)
        sent = {"fields": form.fields, "files": form.digests}
        intake = with_key(
            _intake_request(caller, form, staging, core.catalog.names()),
            idempotency,
            "POST /upload",
            sent,
        )
    except BaseException:
        await run_in_threadpool(shutil.rmtree, staging, True)
        raise
    submitted = await run_in_threadpool(pipeline.submit, core, intake, _uploaded)
    assert submitted.answer is not None
    return JSONResponse(submitted.answer.body, status_code=submitted.answer.status_code)


def _uploaded(job: JobRecord, reused: bool) -> Answer:
    body = {"id": job.number, "status": "Queued", "message": "Job successfully uploaded"}
    return Answer(201, body)


async def _received(request: Request, core: Core, staging: pathlib.Path) -> ReceivedForm:
    """The form, its files streamed into ``<staging>/input``; 413 over the upload limit."""
    limit = core.settings.server.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body larger than the limit of {limit} bytes")
    content_type = request.headers.get("content-type")
    return await receive_multipart(content_type, request.stream(), staging / "input", limit)


def _intake_request(
    caller: Caller, form: ReceivedForm, staging: pathlib.Path, services: list[str]
) -> IntakeRequest:
    """The form's checks in the face's order: user_id, service, the key's user, run.sh."""
    owner = _user_id(form.fields.get("user_id"))
    service = form.fields.get("service")
    if service is None:
        raise InputError("Missing service field")
    if service.strip() not in services:
        raise InputError(INVALID_SERVICE)
    if not caller.admin and caller.user_id != owner:
        raise Forbidden("user_id does not match the API key")
    if RUN_SCRIPT not in form.files:
        raise InputError("run.sh is required")
    # run.sh is judged when the job is prepared: a bad one is accepted, then Invalid (§3.1).
    return IntakeRequest(
        owner_id=owner,
        service=service.strip(),
        input=StagedInput(staging),
        name_prefix="upload",
        admin=caller.admin,
        check_now=False,
    )


def _zip_response(job: JobRecord, root: pathlib.Path) -> StreamingResponse:
    return StreamingResponse(
        zip_directory(root),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{job.number}.zip"'},
    )


@router.get("/download/{id}", summary="The job's status, or its ZIP once Completed")
def download(id: JobIdParam, request: Request, core: CoreDep) -> Response:
    caller, job = _find(core, request, id)
    if upload_status(job) != "Completed":
        return JSONResponse(_state_body(job))
    root = core.catalog.get(job.service).plugin.result_dir(core.files.job_dir(job.id), job.ntasks)
    if not root.is_dir():
        again = get_job(core, caller, JobRef(job_id=job.id), with_tasks=False)
        if upload_status(again) == "Cleaned":  # retention removed it since the first read
            return JSONResponse(_state_body(again))
        raise UploadFaceError(500, job.number, "Completed", "The job's result files cannot be read")
    return _zip_response(job, root)


@router.get("/download_partial/{id}", summary="A ZIP of the task directory as it is now")
def download_partial(id: JobIdParam, request: Request, core: CoreDep) -> Response:
    _, job = _find(core, request, id)
    status = upload_status(job)
    if status == "Cleaned":
        raise UploadFaceError(404, job.number, status, CLEANED_MESSAGE)
    tasks = core.files.job_dir(job.id) / "tasks"
    root = core.files.task_dir(job.id, 0) if job.ntasks == 1 else tasks
    if not root.is_dir():
        raise UploadFaceError(500, job.number, status, "The job's files cannot be read")
    return _zip_response(job, root)


@router.post("/terminate/{id}", summary="Cancel the job (shown as Killed)")
def terminate(id: JobIdParam, request: Request, core: CoreDep) -> JSONResponse:
    caller, job = _find(core, request, id)
    status = upload_status(job)
    if status in TERMINAL_STATUSES:
        if status == "Killed" and termination_in_progress(core, job):
            return JSONResponse(
                _state_body(job, "termination in progress") | {"status": "Running"}, 202
            )
        raise UploadFaceError(400, job.number, status, f"Job is already {status}")
    try:
        result = cancel_job(core, caller, JobRef(job_id=job.id), wait=TERMINATE_WAIT)
    except TransitionRefused:
        now = get_job(core, caller, JobRef(job_id=job.id))
        raise UploadFaceError(409, now.number, upload_status(now), "Job already finished") from None
    except ConflictError:
        now = get_job(core, caller, JobRef(job_id=job.id))
        raise UploadFaceError(
            400, now.number, upload_status(now), f"Job is already {upload_status(now)}"
        ) from None
    if result.processes_stopped:
        return JSONResponse({"id": job.number, "status": "Killed", "message": "job terminated"})
    return JSONResponse(
        {"id": job.number, "status": "Running", "message": "termination in progress"}, 202
    )


@router.get("/health", summary="Whether the server and its database answer")
def health(core: CoreDep) -> JSONResponse:
    if database_reachable(core, timeout=2.0):
        return JSONResponse({"status": "healthy", "database": "ok"})
    return JSONResponse({"status": "unhealthy", "database": "unreachable"}, status_code=500)


@router.get("/", summary="Liveness")
async def root(core: CoreDep) -> dict[str, str]:
    return {"message": core.settings.server.root_message}
