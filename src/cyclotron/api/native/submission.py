"""Submitting and checking jobs on the native face: ``POST /api/jobs``, ``POST /api/validate``,
``POST /api/cache/check``.

Each reads its body into one intake request and makes one call into ``services.intake``; a
submission answers the first refusal as an HTTP error, a validation lists every problem in a
200 body.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from cyclotron.api.deps import CoreDep
from cyclotron.api.idempotency import HEADER, KeyHeader, idempotency_key
from cyclotron.api.native.errors import NativeFaceError, NativeFaceRoute
from cyclotron.api.native.intake import read_request
from cyclotron.api.native.routes import CallerDep
from cyclotron.api.native.schemas import CreatedPublic, MessagePublic, error_responses
from cyclotron.domain.records import Caller, JobRecord
from cyclotron.errors import InputError, Problem
from cyclotron.services.core import Core
from cyclotron.services.intake import pipeline
from cyclotron.services.intake.request import Answer

router = APIRouter(prefix="/api", route_class=NativeFaceRoute, tags=["native"])

AF3_ESTIMATES = ("estimated_memory_gb", "num_residues", "num_chains")


@router.post(
    "/jobs",
    status_code=201,
    summary="Submit a job",
    responses={
        201: {"model": CreatedPublic, "description": "Created (completed at once on reuse)"},
        **error_responses(403, 422, 429, 503),
        409: {"model": MessagePublic, "description": "Idempotency-Key sent with another body"},
    },
)
async def create_job(
    core: CoreDep,
    caller: CallerDep,
    body: Annotated[Any, Body(description="A JobSubmission, or an AlphaFold 3 body as-is")],
    idempotency: KeyHeader = None,
) -> JSONResponse:
    """The same ``Idempotency-Key`` and body again answer the first submission's 201."""
    try:
        key = idempotency_key(idempotency, "POST /api/jobs", body)
    except InputError as exc:
        raise NativeFaceError.invalid(("header", HEADER), exc.problems[0].message) from None
    request = replace(read_request(core, caller, body), idempotency=key)
    submitted = await run_in_threadpool(pipeline.submit, core, request, _created)
    assert submitted.answer is not None
    headers = {"Location": f"/api/jobs/{submitted.job.id}"}
    return JSONResponse(submitted.answer.body, submitted.answer.status_code, headers=headers)


def _created(job: JobRecord, reused: bool) -> Answer:
    status = "completed" if reused else "pending"
    return Answer(201, {"id": job.id, "status": status, "number": job.number})


def _as_text(problem: Problem) -> str:
    """``"<location>: <message>"``, the form /api/validate lists problems in."""
    return f"{'.'.join(str(p) for p in problem.location) or 'body'}: {problem.message}"


def _validation(core: Core, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    try:
        request = read_request(core, caller, body)
    except RequestValidationError as exc:
        schema = [
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()
        ]
        return {"valid": False, "errors": schema, "warnings": [], "estimates": {}}
    except InputError as exc:
        refused = [_as_text(p) for p in exc.problems]
        return {"valid": False, "errors": refused, "warnings": [], "estimates": {}}
    checked = pipeline.check(core, request)
    answer = {
        "valid": not checked.problems,
        "errors": [_as_text(p) for p in checked.problems],
        "warnings": checked.warnings,
        "estimates": checked.estimates,
    }
    if request.input.kind == "af3":  # the AlphaFold 3 app's top-level copies
        answer.update({k: checked.estimates.get(k) for k in AF3_ESTIMATES})
    return answer


@router.post(
    "/validate",
    summary="Check a submission without creating anything",
    responses=error_responses(422),
)
async def validate(
    core: CoreDep, caller: CallerDep, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Domain problems are reported in the body (200); only a non-object body is a 422."""
    return await run_in_threadpool(_validation, core, caller, body)


def _cached_answer(key: str, at: datetime | None, size: int, **more: Any) -> dict[str, Any]:
    stamp = at.isoformat().replace("+00:00", "Z") if at else None
    return {
        "cached": True,
        "key": key,
        "timestamp": stamp,
        "size": size,
        **more,
        "cache_key": key,
        "cached_at": stamp,
        "size_mb": round(size / 2**20, 1),
    }


@router.post(
    "/cache/check",
    summary="The input's cache key, and whether results exist for it",
    responses=error_responses(422),
)
async def cache_check(
    core: CoreDep,
    caller: CallerDep,
    body: Annotated[Any, Body(description="A JobSubmission or an AlphaFold 3 body")],
) -> dict[str, Any]:
    request = read_request(core, caller, body)
    status = await run_in_threadpool(pipeline.cache_status, core, request)
    if not status.cached:
        return {"cached": False, "key": status.key, "cache_key": status.key}
    more = {"job_id": status.job_id} if status.job_id is not None else {}
    return _cached_answer(status.key, status.at, status.size, **more)
