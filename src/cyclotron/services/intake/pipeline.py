"""The one way a job enters: stage the input → let the plug-in plan it → check → key → store.

Every face calls ``submit`` once per submission; ``check`` runs the same steps without storing
(``/api/validate``), and ``cache_status`` stops at the key (``/api/cache/check``). Refusals are
``InputError``s whose problems carry their location in the request, so each face shapes its
own 4xx from them in its one error module.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cyclotron.domain.records import Caller
from cyclotron.domain.text import document_problems
from cyclotron.errors import Forbidden, InputError, PluginError, Problem
from cyclotron.services.core import Core
from cyclotron.services.intake import yaptide
from cyclotron.services.intake.estimates import estimated_seconds
from cyclotron.services.intake.keys import directory_key
from cyclotron.services.intake.request import (
    DocumentInput,
    EditorInput,
    FilesInput,
    IntakeRequest,
    StagedInput,
)
from cyclotron.services.intake.staging import Staged, file_name_problems, stage, write_staged
from cyclotron.services.intake.store import (
    Shape,
    StoredJob,
    Submitted,
    earlier_submission,
    queue_full,
    store_job,
    task_shares,
)
from cyclotron.services.results.reuse import find_cached, reusable

ADMIN_PRIORITY = "a positive priority needs an admin key"
UNCONFINED = "this server cannot confine tasks, so only admins may run scripts"
BEAM_PRIMARIES = ("beam", "numberOfParticles")  # where an editor project states its primaries


@dataclass
class Plan:
    """A request's input staged and checked: its tasks, its key, what the job keeps."""

    staged: Staged
    key: str
    ntasks: int
    seeds: list[int]
    task_primaries: list[int] | None
    attrs: dict[str, Any] = field(default_factory=dict)
    documents: dict[str, bytes] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    estimates: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Checked:
    """What ``/api/validate`` reports: every problem, the warnings, the estimates."""

    problems: list[Problem]
    warnings: list[str]
    estimates: dict[str, Any]


@dataclass(frozen=True)
class CacheStatus:
    key: str
    cached: bool
    at: datetime | None = None
    size: int = 0
    job_id: str | None = None  # the job whose results would be reused


def submit(core: Core, request: IntakeRequest, shape: Shape | None = None) -> Submitted:
    """Store a job for the request; nothing is stored when any step refuses. ``shape`` makes
    the face's answer (``Submitted.answer``).

    With an idempotency key, a submission the owner made with the same key within the last day
    is answered again instead (its job, its answer), before any check: a retry is never
    refused for what the first submission changed (a queue it filled).
    """
    if request.idempotency is not None:
        earlier = earlier_submission(core, request.owner_id, request.idempotency)
        if earlier is not None:
            if isinstance(request.input, StagedInput):
                Staged(request.input.staging).discard()
            return earlier
    if request.yaptide is not None:
        request = replace(request, yaptide=yaptide.admit(core, request.owner_id, request.yaptide))
    plan = _plan(core, request)
    try:
        if request.priority > 0 and not request.admin:
            raise Forbidden(ADMIN_PRIORITY)
        service = core.catalog.require_available(request.service)
        if service.plugin.runs_user_code and not _may_run_code(core, request):
            raise Forbidden(f"{UNCONFINED}: {core.sandbox.reason}")
        plan.attrs.update(service.engine_attrs())  # which engine runs it, said wherever shown
        cached = None
        if request.reuse:
            cached = find_cached(core, _caller(request), request.service, plan.key, plan.seeds)
        if cached is not None:
            plan.attrs["reused"] = {"kind": "results", "job_id": cached.job_id, "key": cached.key}
        return store_job(
            core,
            _stored(request, plan),
            plan.staged.input_dir,
            reuse=cached,
            shape=shape,
            idempotency=request.idempotency,
        )
    finally:
        plan.staged.discard()


def _may_run_code(core: Core, request: IntakeRequest) -> bool:
    """Code a user sent runs confined, or for an admin, or where the operator chose no
    sandbox (``[sandbox] mode = "none"``) or no authentication."""
    if core.sandbox.bwrap is not None or request.admin or not core.settings.auth_enabled:
        return True
    return core.settings.sandbox.mode == "none"


def _caller(request: IntakeRequest) -> Caller:
    return Caller(user_id=request.owner_id, admin=request.admin)


def check(core: Core, request: IntakeRequest) -> Checked:
    """Every problem a submission of ``request`` would meet now, without storing anything."""
    problems: list[Problem] = []
    warnings: list[str] = []
    estimates: dict[str, Any] = {}
    try:
        plan = _plan(core, request)
    except InputError as exc:
        problems = list(exc.problems)
    else:
        plan.staged.discard()
        warnings, estimates = plan.warnings, _estimates(core, request.service, plan)
    if request.priority > 0 and not request.admin:
        problems.append(Problem(("priority",), ADMIN_PRIORITY))
    if request.service in core.catalog.names():
        plugin = core.catalog.get(request.service).plugin
        if plugin.runs_user_code and not _may_run_code(core, request):
            problems.append(Problem(("service",), f"{UNCONFINED}: {core.sandbox.reason}"))
        reason = core.catalog.unavailable_reason(request.service)
        if reason:
            warnings.append(f"service '{request.service}': unavailable: {reason}")
        if queue_full(core, request.service, request.owner_id):
            warnings.append(
                f"service '{request.service}': queue is full, a submission now would get 429"
            )
    return Checked(problems, warnings, estimates)


def cache_status(core: Core, request: IntakeRequest) -> CacheStatus:
    """The request's input key, and what a submission could take for it: the plug-in's own
    cache of prepared inputs, or a completed job's results."""
    plan = _plan(core, request)
    plan.staged.discard()
    plugin = core.catalog.get(request.service).plugin
    if plugin.caches_inputs:
        entry = plugin.cached_input(plan.key)
        if entry is None:
            return CacheStatus(plan.key, False)
        return CacheStatus(plan.key, True, entry.stored_at, entry.size)
    cached = find_cached(core, _caller(request), request.service, plan.key, plan.seeds)
    if cached is None:
        return CacheStatus(plan.key, False)
    return CacheStatus(cached.key, True, cached.ended_at, cached.size, cached.job_id)


# -- planning ---------------------------------------------------------------------------------


def _refusals(core: Core, request: IntakeRequest) -> list[Problem]:
    """What the service and its plug-in refuse in a well-formed request, before staging."""
    problems = _text_refusals(request)
    if request.service not in core.catalog.names():
        known = ", ".join(core.catalog.names())
        message = f"unknown service {request.service!r} (known: {known})"
        return [*problems, Problem(("service",), message)]
    service = core.catalog.get(request.service)
    if request.input.kind not in service.plugin.input_kinds:
        kinds = ", ".join(service.plugin.input_kinds)
        hint = service.plugin.stand_in_hint(f"{request.input.kind} input")
        problems.append(Problem(("input", "kind"), f"service accepts input kinds: {kinds}{hint}"))
    if request.ntasks is not None and request.ntasks < 1 and not request.fit_ntasks:
        problems.append(Problem(("ntasks",), "must be at least 1"))
    if not request.fit_ntasks and (request.ntasks or 1) > service.settings.max_ntasks:
        problems.append(Problem(("ntasks",), f"must be at most {service.settings.max_ntasks}"))
    if request.options:
        problems.append(Problem(("options",), f"unknown options: {', '.join(request.options)}"))
    if request.reuse and not reusable(core, request.service):
        problems.append(Problem(("reuse",), "only simulation services can reuse results"))
    low, high = service.plugin.seed_range
    for i, seed in enumerate(request.seeds or ()):
        if not low <= seed <= high:
            message = f"the {service.plugin.name} engine takes seeds from {low} to {high}"
            problems.append(Problem(("seeds", i), message))
    if isinstance(request.input, FilesInput):
        problems += file_name_problems(list(request.input.files), ("input", "files"))
    return problems


def _text_refusals(request: IntakeRequest) -> list[Problem]:
    """Text the job would store that no database may hold (``domain.text``): the name and a
    YAPTIDE title (one line), and every string of an editor project, an input document or
    YAPTIDE batch options (multi-line: ``array_header`` holds ``#SBATCH`` lines)."""
    lines: list[tuple[tuple[str | int, ...], Any]] = [(("name",), request.name)]
    documents: list[tuple[tuple[str | int, ...], Any]] = []
    if request.yaptide is not None:
        lines.append((("title",), request.yaptide.title))
        documents.append((("batch_options",), request.yaptide.batch))
    if isinstance(request.input, EditorInput):
        documents.append((("input", "project"), request.input.project))
    elif isinstance(request.input, DocumentInput):
        documents.append((request.input.location, request.input.document))
    found = [p for where, text in lines for p in document_problems(text, where, multiline=False)]
    found += [p for where, document in documents for p in document_problems(document, where)]
    return [Problem(where, message) for where, message in found]


def _plan(core: Core, request: IntakeRequest) -> Plan:
    """Stage and check the request's input (InputError on any refusal); the caller discards it."""
    problems = _refusals(core, request)
    if problems:
        if isinstance(request.input, StagedInput):
            Staged(request.input.staging).discard()
        raise InputError.of(problems)
    if isinstance(request.input, DocumentInput):
        return _plan_document(core, request, request.input)
    staged = stage(core, request.service, request.input)
    try:
        return _plan_files(core, request, staged)
    except BaseException:
        staged.discard()
        raise


def _plan_files(core: Core, request: IntakeRequest, staged: Staged) -> Plan:
    service = core.catalog.get(request.service)
    plugin = service.plugin
    ntasks = request.ntasks or (len(request.seeds) if request.seeds else 1)
    shares = None
    warnings: list[str] = []
    if request.check_now:
        try:
            plugin.validate(staged.input_dir)
            counts = plugin.result_kind == "estimators"
            if counts and request.primaries is not None and request.input.kind == "files":
                # Each task's share is read from the files when it starts: they state the total.
                plugin.set_total_primaries(staged.input_dir, request.primaries)
        except PluginError as exc:
            raise InputError(exc.message, ("input",)) from None
        where: tuple[str | int, ...] = ("input", "primaries")
        total = request.primaries
        if total is None and isinstance(request.input, EditorInput):
            total, where = request.input.stated_primaries, ("input", "project", *BEAM_PRIMARIES)
        if request.fit_ntasks:  # below one is one task
            ntasks = max(1, ntasks)
            limit = service.settings.max_ntasks
            if ntasks > limit:
                raise InputError(f"must be at most {limit} for '{request.service}'", ("ntasks",))
        # More tasks than primaries run one primary each, on every face; seeds given one per
        # task cannot be cut that way.
        shares = task_shares(
            core, request.service, staged.input_dir, total, ntasks, where, fit=not request.seeds
        )
        if shares is not None and len(shares) < ntasks:
            warnings.append(
                f"ntasks: {ntasks} is more than the {len(shares)} primaries:"
                f" {len(shares)} tasks run, one primary each"
            )
            ntasks = len(shares)
    key = directory_key(request.service, plugin.version, staged.input_dir, request.primaries)
    attrs: dict[str, Any] = {"input_kind": request.input.kind}
    if shares is not None:
        attrs["primaries"] = sum(shares)
    seeds = list(request.seeds) if request.seeds else list(range(1, ntasks + 1))
    return Plan(staged, key, ntasks, seeds, shares, attrs, warnings=warnings)


def _plan_document(core: Core, request: IntakeRequest, given: DocumentInput) -> Plan:
    """A document the plug-in plans (an AlphaFold 3 body): its problems located in it, then
    one task per seed it names."""
    service = core.catalog.get(request.service)
    where = given.location
    try:
        planned = service.plugin.plan_document(given.document, request.service)
    except InputError as exc:
        located = [Problem((*where, *p.location), p.message) for p in exc.problems]
        raise InputError.of(located) from None
    except PluginError as exc:
        raise InputError(exc.message, ("service",)) from None
    seeds = list(planned.seeds)
    if request.ntasks is not None and request.ntasks != len(seeds):
        raise InputError(f"must equal the number of modelSeeds ({len(seeds)})", ("ntasks",))
    if len(seeds) > service.settings.max_ntasks:
        message = f"at most {service.settings.max_ntasks} seeds: each seed is a task"
        raise InputError(message, (*where, "modelSeeds"))
    staged = write_staged(core, planned.files)
    try:
        service.plugin.validate(staged.input_dir)
    except PluginError as exc:
        staged.discard()
        raise InputError(exc.message, where) from None
    return Plan(
        staged,
        planned.key,
        len(seeds),
        seeds,
        None,
        attrs=dict(planned.attrs),
        documents=dict(planned.documents),
        warnings=list(planned.warnings),
        estimates=dict(planned.estimates),
    )


def _estimates(core: Core, service: str, plan: Plan) -> dict[str, Any]:
    if plan.estimates:
        return plan.estimates
    if plan.task_primaries is None:
        return {}
    return {
        "ntasks": plan.ntasks,
        "total_primaries": sum(plan.task_primaries),
        "primaries_per_task": plan.task_primaries,
        "estimated_seconds": estimated_seconds(core, service, plan.task_primaries),
    }


def _stored(request: IntakeRequest, plan: Plan) -> StoredJob:
    """What the job's row holds: the plan, and a YAPTIDE simulation's own fields."""
    stored = StoredJob(
        owner_id=request.owner_id,
        service=request.service,
        name=request.name,
        name_prefix=request.name_prefix,
        ntasks=plan.ntasks,
        seeds=plan.seeds,
        priority=request.priority,
        task_primaries=plan.task_primaries,
        queue_limits=request.queue_limits,
        attrs=plan.attrs,
        input_key=plan.key,
        documents=plan.documents,
    )
    if request.yaptide is not None:
        project = getattr(request.input, "project", None)
        return yaptide.labelled(stored, request.yaptide, project)
    return stored
