"""Submitting and validating jobs on the native face: ``POST /api/jobs``, ``POST /api/validate``.

Both run the same checks; a submission answers the first problem as an HTTP error, a
validation lists every problem in a 200 body.
"""

from __future__ import annotations

import base64
import binascii
import shutil
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool

from cyclotron.api.deps import CoreDep
from cyclotron.api.native.errors import NativeFaceError, NativeFaceRoute
from cyclotron.api.native.routes import CallerDep
from cyclotron.domain.filenames import check_file_name
from cyclotron.domain.records import Caller
from cyclotron.errors import InputError, PluginError
from cyclotron.services.core import Core
from cyclotron.services.inputkeys import files_key
from cyclotron.services.submission import JobRequest, submit_staged_files

router = APIRouter(prefix="/api", route_class=NativeFaceRoute, tags=["native"])

MAX_SEED = 2_147_483_647


class Base64Content(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base64: str


class FilesInput(BaseModel):
    """``{"kind": "files", "files": {"run.sh": "<text>", "data.bin": {"base64": "..."}}}``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["files"]
    files: dict[str, str | Base64Content] = Field(min_length=1)
    primaries: int | None = Field(None, ge=1)


class JobSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    title: str | None = Field(None, min_length=1, max_length=200)
    service: str
    ntasks: int = Field(1, ge=1)
    input: FilesInput
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] | None = None
    priority: int = Field(0, ge=-10, le=10)
    options: dict[str, Any] = Field(default_factory=dict)
    reuse: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> JobSubmission:
        if self.name is not None and self.title is not None and self.name != self.title:
            raise ValueError("name and title differ")
        if self.seeds is not None:
            if len(self.seeds) != self.ntasks:
                raise ValueError(f"seeds must have exactly ntasks ({self.ntasks}) values")
            if len(set(self.seeds)) != len(self.seeds):
                raise ValueError("seeds must be distinct")
        return self

    @property
    def job_name(self) -> str:
        return self.name or self.title or "unnamed"


def _problem(loc: tuple[str | int, ...], message: str) -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": message, "type": "value_error"}


def domain_problems(core: Core, submission: JobSubmission) -> list[dict[str, Any]]:
    """What the service and its plug-in refuse in a well-formed submission."""
    if submission.service not in core.catalog.names():
        known = ", ".join(core.catalog.names())
        return [_problem(("service",), f"unknown service {submission.service!r} (known: {known})")]
    service = core.catalog.get(submission.service)
    problems = []
    if submission.input.kind not in service.plugin.input_kinds:
        kinds = ", ".join(service.plugin.input_kinds)
        problems.append(_problem(("input", "kind"), f"service accepts input kinds: {kinds}"))
    if submission.ntasks > service.settings.max_ntasks:
        problems.append(_problem(("ntasks",), f"must be at most {service.settings.max_ntasks}"))
    if submission.options:
        problems.append(_problem(("options",), f"unknown options: {', '.join(submission.options)}"))
    if submission.reuse and service.plugin.result_kind != "estimators":
        problems.append(_problem(("reuse",), "only simulation services can reuse results"))
    for name in submission.input.files:
        try:
            check_file_name(name)
        except InputError as exc:
            problems.append(_problem(("input", "files", name), exc.message))
    return problems


def _decoded(content: str | Base64Content) -> bytes:
    if isinstance(content, str):
        return content.encode("utf-8")
    try:
        return base64.b64decode(content.base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"invalid base64: {exc}") from exc


def stage_files(core: Core, submission: JobSubmission) -> Path:
    """Write the submitted files into a new staging area; the caller removes it."""
    staging = core.files.new_staging_area()
    target = staging / "input"
    target.mkdir()
    try:
        for name, content in submission.input.files.items():
            try:
                data = _decoded(content)
            except InputError as exc:
                raise NativeFaceError(
                    422, [_problem(("input", "files", name), exc.message)]
                ) from None
            (target / name).write_bytes(data)
        core.catalog.get(submission.service).plugin.validate(target)
    except PluginError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise NativeFaceError(422, [_problem(("input",), exc.message)]) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def _submit(core: Core, caller: Caller, submission: JobSubmission) -> dict[str, Any]:
    problems = domain_problems(core, submission)
    if problems:
        raise NativeFaceError(422, problems)
    if submission.priority > 0 and core.settings.auth_enabled and not caller.admin:
        raise NativeFaceError(403, "a positive priority needs an admin key")
    core.catalog.require_available(submission.service)
    staging = stage_files(core, submission)
    try:
        job = submit_staged_files(
            core,
            JobRequest(
                owner_id=caller.user_id or 0,
                service=submission.service,
                name=submission.job_name,
                ntasks=submission.ntasks,
                seeds=submission.seeds or list(range(1, submission.ntasks + 1)),
                priority=submission.priority,
                primaries=submission.input.primaries,
                enforce_queue_limits=True,
            ),
            staging / "input",
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"id": job.id, "status": "pending", "number": job.number}


@router.post("/jobs", status_code=201, summary="Submit a job")
async def create_job(core: CoreDep, caller: CallerDep, submission: JobSubmission) -> JSONResponse:
    created = await run_in_threadpool(_submit, core, caller, submission)
    return JSONResponse(created, 201, headers={"Location": f"/api/jobs/{created['id']}"})


def _validation(core: Core, body: dict[str, Any]) -> dict[str, Any]:
    try:
        submission = JobSubmission.model_validate(body)
    except ValidationError as exc:
        errors = [
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        ]
        return {"valid": False, "errors": errors, "warnings": [], "estimates": {}}
    problems = domain_problems(core, submission)
    errors = [f"{'.'.join(str(p) for p in p_['loc'][1:])}: {p_['msg']}" for p_ in problems]
    warnings: list[str] = []
    if not errors:
        reason = core.catalog.unavailable_reason(submission.service)
        if reason:
            warnings.append(f"service '{submission.service}': unavailable: {reason}")
        staging = None
        try:
            staging = stage_files(core, submission)
        except NativeFaceError as exc:
            errors += [f"{'.'.join(str(p) for p in d['loc'][1:])}: {d['msg']}" for d in exc.detail]
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
    return {"valid": not errors, "errors": errors, "warnings": warnings, "estimates": {}}


@router.post("/cache/check", summary="The input's cache key, and whether results exist for it")
async def cache_check(
    core: CoreDep, caller: CallerDep, submission: JobSubmission
) -> dict[str, Any]:
    problems = domain_problems(core, submission)
    if problems:
        raise NativeFaceError(422, problems)
    service = core.catalog.get(submission.service)
    contents = {}
    for name, content in submission.input.files.items():
        try:
            contents[name] = _decoded(content)
        except InputError as exc:
            raise NativeFaceError(422, [_problem(("input", "files", name), exc.message)]) from None
    key = files_key(
        submission.service, service.plugin.version, contents, submission.input.primaries
    )
    # Only simulation services reuse earlier results; a script's run may depend on anything.
    return {"cached": False, "key": key, "cache_key": key}


@router.post("/validate", summary="Check a submission without creating anything")
async def validate(
    core: CoreDep, caller: CallerDep, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Domain problems are reported in the body (200); only a non-object body is a 422."""
    return await run_in_threadpool(_validation, core, body)
