"""Submitting and validating jobs on the native face: ``POST /api/jobs``, ``POST /api/validate``.

Both run the same checks; a submission answers the first problem as an HTTP error, a
validation lists every problem in a 200 body.
"""

from __future__ import annotations

import base64
import binascii
import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from starlette.concurrency import run_in_threadpool

from cyclotron.alphafold.estimate import estimate
from cyclotron.alphafold.inputs import validate as af3_problems
from cyclotron.alphafold.plugin import AlphaFold3Plugin
from cyclotron.api.deps import CoreDep
from cyclotron.api.native.errors import NativeFaceError, NativeFaceRoute, value_problem
from cyclotron.api.native.routes import CallerDep
from cyclotron.api.native.schemas import CreatedPublic, error_responses
from cyclotron.domain.filenames import check_file_name
from cyclotron.domain.ports import MAX_SEED
from cyclotron.domain.records import Caller
from cyclotron.errors import InputError, PluginError
from cyclotron.services.catalog import ConfiguredService
from cyclotron.services.core import Core
from cyclotron.services.intake.estimates import estimated_seconds
from cyclotron.services.intake.keys import directory_key
from cyclotron.services.intake.reuse import find_cached, reusable
from cyclotron.services.intake.store import (
    JobRequest,
    queue_full,
    submit_staged_files,
    task_shares,
)
from cyclotron.services.results.alphafold import AF3_REQUEST

router = APIRouter(prefix="/api", route_class=NativeFaceRoute, tags=["native"])


class Base64Content(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base64: str


class FilesInput(BaseModel):
    """``{"kind": "files", "files": {"run.sh": "<text>", "data.bin": {"base64": "..."}}}``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["files"]
    files: dict[str, str | Base64Content] = Field(min_length=1)
    primaries: int | None = Field(None, ge=1)


class EditorInput(BaseModel):
    """``{"kind": "editor", "project": {...}, "primaries": 10000}``: a YAPTIDE editor project."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["editor"]
    project: dict[str, Any]
    primaries: int | None = Field(None, ge=1)

    def project_with_primaries(self) -> dict[str, Any]:
        """The project, with ``primaries`` (when given) as its beam's number of particles."""
        if self.primaries is None:
            return self.project
        beam = self.project.get("beam")
        beam = dict(beam) if isinstance(beam, dict) else {}
        return {**self.project, "beam": {**beam, "numberOfParticles": self.primaries}}


class Af3Input(BaseModel):
    """``{"kind": "af3", "job": {...}}``: an AlphaFold 3 body, one task per model seed."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["af3"]
    job: dict[str, Any]


class JobSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    title: str | None = Field(None, min_length=1, max_length=200)
    service: str
    ntasks: int = Field(1, ge=1)
    input: Annotated[FilesInput | EditorInput | Af3Input, Field(discriminator="kind")]
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] | None = None
    priority: int = Field(0, ge=-10, le=10)
    options: dict[str, Any] = Field(default_factory=dict)
    reuse: bool = False
    # Sent as a bare AlphaFold 3 body (spec §4.2): its problems are located in the body itself.
    _as_is: bool = PrivateAttr(False)

    @model_validator(mode="after")
    def _consistent(self) -> JobSubmission:
        if self.name is not None and self.title is not None and self.name != self.title:
            raise ValueError("name and title differ")
        if isinstance(self.input, Af3Input) and self.seeds is not None:
            raise ValueError("seeds must be absent: the AlphaFold 3 job's modelSeeds are used")
        if self.seeds is not None:
            if len(self.seeds) != self.ntasks:
                raise ValueError(f"seeds must have exactly ntasks ({self.ntasks}) values")
            if len(set(self.seeds)) != len(self.seeds):
                raise ValueError("seeds must be distinct")
        return self

    @property
    def job_name(self) -> str:
        return self.name or self.title or "unnamed"

    @property
    def task_seeds(self) -> list[int]:
        return self.seeds or list(range(1, self.ntasks + 1))


def read_submission(core: Core, body: object) -> JobSubmission:
    """A native body, or an AlphaFold 3 body sent as-is (no ``input``, a ``sequences`` key),
    which goes to ``[api] alphafold3_service``; schema errors in FastAPI's 422 form."""
    as_is = isinstance(body, dict) and "input" not in body and "sequences" in body
    if as_is:
        assert isinstance(body, dict)
        service = core.settings.api.alphafold3_service
        if service not in core.catalog.names():
            raise NativeFaceError.invalid(
                ("body",), f"no AlphaFold 3 service is configured (looked for {service!r})"
            )
        name = body.get("name")
        wrapped: dict[str, Any] = {"service": service, "input": {"kind": "af3", "job": body}}
        if isinstance(name, str) and name.strip():
            wrapped["name"] = name.strip()[:200]
        body = wrapped
    try:
        submission = JobSubmission.model_validate(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
    submission._as_is = as_is
    return submission


def _problem(loc: tuple[str | int, ...], message: str) -> dict[str, Any]:
    return value_problem(("body", *loc), message)


def _as_text(problem: dict[str, Any]) -> str:
    """``"<location>: <message>"``, the form /api/validate lists problems in."""
    return f"{'.'.join(str(p) for p in problem['loc'][1:]) or 'body'}: {problem['msg']}"


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
    if submission.reuse and not reusable(core, submission.service):
        problems.append(_problem(("reuse",), "only simulation services can reuse results"))
    low, high = service.plugin.seed_range
    for i, seed in enumerate(submission.seeds or ()):
        if not low <= seed <= high:
            message = f"the {service.plugin.name} engine takes seeds from {low} to {high}"
            problems.append(_problem(("seeds", i), message))
    if isinstance(submission.input, FilesInput):
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


def _input_files(core: Core, submission: JobSubmission) -> dict[str, bytes]:
    """The input files the job would run: as submitted, or converted from the editor project."""
    if isinstance(submission.input, EditorInput):
        plugin = core.catalog.get(submission.service).plugin
        try:
            converted = plugin.editor_files(submission.input.project_with_primaries())
        except PluginError as exc:
            raise NativeFaceError(422, [_problem(("input", "project"), exc.message)]) from None
        return {name: text.encode("utf-8") for name, text in converted.items()}
    assert isinstance(submission.input, FilesInput)
    contents = {}
    for name, content in submission.input.files.items():
        try:
            contents[name] = _decoded(content)
        except InputError as exc:
            raise NativeFaceError(422, [_problem(("input", "files", name), exc.message)]) from None
    return contents


def _primaries_over_files(core: Core, submission: JobSubmission) -> int | None:
    """``input.primaries`` of files for a simulation service: the total the files must state.

    (An editor project gets it as its beam's number of particles before conversion.)
    """
    if not isinstance(submission.input, FilesInput):
        return None
    plugin = core.catalog.get(submission.service).plugin
    return submission.input.primaries if plugin.result_kind == "estimators" else None


@dataclass
class PreparedInput:
    """A submission's input staged on disk and checked: its key, its tasks and what the job
    keeps about it."""

    staging: Path
    key: str
    task_primaries: list[int] | None
    ntasks: int
    seeds: list[int]
    attrs: dict[str, Any] = field(default_factory=dict)
    documents: dict[str, bytes] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    estimates: dict[str, Any] | None = None

    @property
    def input_dir(self) -> Path:
        return self.staging / "input"

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _staged(core: Core, files: dict[str, bytes]) -> Path:
    """A new staging area holding ``files`` in ``input/``; nothing is left if writing fails."""
    staging = core.files.new_staging_area()
    try:
        (staging / "input").mkdir()
        for name, data in files.items():
            (staging / "input" / name).write_bytes(data)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def _prepare_af3(
    core: Core, submission: JobSubmission, service: ConfiguredService
) -> PreparedInput:
    """An AlphaFold 3 job: every problem of the body located in it, then one task per seed."""
    assert isinstance(submission.input, Af3Input)
    plugin = service.plugin
    if not isinstance(plugin, AlphaFold3Plugin):
        raise NativeFaceError.invalid(("service",), "not an AlphaFold 3 service")
    job = submission.input.job
    where: tuple[str, ...] = () if submission._as_is else ("input", "job")
    found = af3_problems(job)
    errors = [_problem((*where, p.location), p.message) for p in found if not p.warning]
    if errors:
        raise NativeFaceError(422, errors)
    try:
        prepared = plugin.prepare(job, submission.service)
    except InputError as exc:
        raise NativeFaceError(422, [_problem(where or ("body",), exc.message)]) from None
    seeds = list(prepared.settings.seeds)
    if "ntasks" in submission.model_fields_set and submission.ntasks != len(seeds):
        message = f"must equal the number of modelSeeds ({len(seeds)})"
        raise NativeFaceError(422, [_problem(("ntasks",), message)])
    if len(seeds) > service.settings.max_ntasks:
        message = f"at most {service.settings.max_ntasks} seeds: each seed is a task"
        raise NativeFaceError(422, [_problem((*where, "modelSeeds"), message)])
    staging = _staged(core, prepared.files)
    try:
        plugin.validate(staging / "input")
    except PluginError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise NativeFaceError(422, [_problem(where or ("body",), exc.message)]) from None
    settings = prepared.settings
    sizes = estimate(prepared.model)
    attrs: dict[str, Any] = {
        "input_kind": "af3",
        "af3": {
            "num_samples": settings.num_samples,
            "diffusion_steps": settings.diffusion_steps,
            "precision": settings.precision,
            "run_data_pipeline": settings.run_data_pipeline,
            "use_cache": settings.use_cache,
        },
        "num_residues": sizes["num_residues"],
        "num_chains": sizes["num_chains"],
    }
    if settings.use_cache and plugin.cached_pipeline(settings.key) is not None:
        attrs["reused"] = {"kind": "data_pipeline", "job_id": None, "key": settings.key}
    return PreparedInput(
        staging,
        settings.key,
        None,
        ntasks=len(seeds),
        seeds=seeds,
        attrs=attrs,
        documents={AF3_REQUEST: json.dumps(job).encode()},
        warnings=[str(p) for p in found if p.warning],
        estimates=dict(sizes),
    )


def prepare_input(core: Core, submission: JobSubmission) -> PreparedInput:
    """Stage and check the input (NativeFaceError 422 on any refusal); the caller discards it."""
    problems = domain_problems(core, submission)
    if problems:
        raise NativeFaceError(422, problems)
    if isinstance(submission.input, Af3Input):
        return _prepare_af3(core, submission, core.catalog.get(submission.service))
    staging = _staged(core, _input_files(core, submission))
    target = staging / "input"
    service = core.catalog.get(submission.service)
    try:
        service.plugin.validate(target)
        primaries = _primaries_over_files(core, submission)
        if primaries is not None:
            # Each task's share is read from the files when it starts: they state the total.
            service.plugin.set_total_primaries(target, primaries)
        shares = task_shares(
            core, submission.service, target, submission.input.primaries, submission.ntasks
        )
    except PluginError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise NativeFaceError(422, [_problem(("input",), exc.message)]) from None
    except InputError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise NativeFaceError(422, [_problem(("ntasks",), exc.message)]) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    key = directory_key(
        submission.service, service.plugin.version, target, submission.input.primaries
    )
    attrs: dict[str, Any] = {"input_kind": submission.input.kind}
    if shares is not None:
        attrs["primaries"] = sum(shares)
    return PreparedInput(staging, key, shares, submission.ntasks, submission.task_seeds, attrs)


ADMIN_PRIORITY = "a positive priority needs an admin key"


def _needs_admin(core: Core, caller: Caller, submission: JobSubmission) -> bool:
    return submission.priority > 0 and core.settings.auth_enabled and not caller.admin


def _submit(core: Core, caller: Caller, submission: JobSubmission) -> dict[str, Any]:
    prepared = prepare_input(core, submission)
    try:
        if _needs_admin(core, caller, submission):
            raise NativeFaceError(403, ADMIN_PRIORITY)
        core.catalog.require_available(submission.service)
        cached = None
        if submission.reuse:
            cached = find_cached(core, caller, submission.service, prepared.key, prepared.seeds)
        attrs = dict(prepared.attrs)
        if cached is not None:
            attrs["reused"] = {"kind": "results", "job_id": cached.job_id, "key": cached.key}
        job = submit_staged_files(
            core,
            JobRequest(
                owner_id=caller.user_id or 0,
                service=submission.service,
                name=submission.job_name,
                ntasks=prepared.ntasks,
                seeds=prepared.seeds,
                priority=submission.priority,
                primaries=getattr(submission.input, "primaries", None),
                task_primaries=prepared.task_primaries,
                enforce_queue_limits=True,
                attrs=attrs,
                reuse=cached,
                input_key=prepared.key,
                documents=prepared.documents,
            ),
            prepared.input_dir,
        )
    finally:
        prepared.discard()
    status = "completed" if cached is not None else "pending"
    return {"id": job.id, "status": status, "number": job.number}


@router.post(
    "/jobs",
    status_code=201,
    summary="Submit a job",
    responses={
        201: {"model": CreatedPublic, "description": "Created (completed at once on reuse)"},
        **error_responses(403, 422, 429, 503),
    },
)
async def create_job(
    core: CoreDep,
    caller: CallerDep,
    body: Annotated[Any, Body(description="A JobSubmission, or an AlphaFold 3 body as-is")],
) -> JSONResponse:
    submission = read_submission(core, body)
    created = await run_in_threadpool(_submit, core, caller, submission)
    return JSONResponse(created, 201, headers={"Location": f"/api/jobs/{created['id']}"})


def _estimates(core: Core, submission: JobSubmission, prepared: PreparedInput) -> dict[str, Any]:
    if prepared.estimates is not None:
        return prepared.estimates
    if prepared.task_primaries is None:
        return {}
    return {
        "ntasks": submission.ntasks,
        "total_primaries": sum(prepared.task_primaries),
        "primaries_per_task": prepared.task_primaries,
        "estimated_seconds": estimated_seconds(core, submission.service, prepared.task_primaries),
    }


def _warnings(core: Core, caller: Caller, service: str) -> list[str]:
    """What would not refuse the submission but may delay or refuse it when it is sent."""
    warnings = []
    reason = core.catalog.unavailable_reason(service)
    if reason:
        warnings.append(f"service '{service}': unavailable: {reason}")
    if queue_full(core, service, caller.user_id or 0):
        warnings.append(f"service '{service}': queue is full, a submission now would get 429")
    return warnings


def _validation(core: Core, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    try:
        submission = read_submission(core, body)
    except RequestValidationError as exc:
        schema = [
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()
        ]
        return {"valid": False, "errors": schema, "warnings": [], "estimates": {}}
    except NativeFaceError as exc:
        refused = [_as_text(d) for d in exc.detail]
        return {"valid": False, "errors": refused, "warnings": [], "estimates": {}}
    errors: list[str] = []
    warnings: list[str] = []
    estimates: dict[str, Any] = {}
    try:
        prepared = prepare_input(core, submission)
    except NativeFaceError as exc:
        errors = [_as_text(d) for d in exc.detail]
    else:
        prepared.discard()
        estimates = _estimates(core, submission, prepared)
        warnings = prepared.warnings
    if _needs_admin(core, caller, submission):
        errors.append(f"priority: {ADMIN_PRIORITY}")
    if submission.service in core.catalog.names():
        warnings = [*warnings, *_warnings(core, caller, submission.service)]
    answer = {"valid": not errors, "errors": errors, "warnings": warnings, "estimates": estimates}
    if isinstance(submission.input, Af3Input):  # the AlphaFold 3 app's top-level copies
        answer.update({k: estimates.get(k) for k in AF3_ESTIMATES})
    return answer


AF3_ESTIMATES = ("estimated_memory_gb", "num_residues", "num_chains")


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


def _cache_check(core: Core, caller: Caller, submission: JobSubmission) -> dict[str, Any]:
    prepared = prepare_input(core, submission)
    prepared.discard()
    key = prepared.key
    plugin = core.catalog.get(submission.service).plugin
    if isinstance(plugin, AlphaFold3Plugin):  # its cache holds data-pipeline output
        entry = plugin.cache.entry(key) if plugin.cache is not None else None
        if entry is not None:
            return _cached_answer(key, entry.stored_at, entry.size)
        return {"cached": False, "key": key, "cache_key": key}
    cached = find_cached(core, caller, submission.service, key, prepared.seeds)
    if cached is None:
        return {"cached": False, "key": key, "cache_key": key}
    return _cached_answer(cached.key, cached.ended_at, cached.size, job_id=cached.job_id)


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
    submission = read_submission(core, body)
    return await run_in_threadpool(_cache_check, core, caller, submission)


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
