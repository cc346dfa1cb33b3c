"""``GET /api/jobs/{id}/results``: a completed job's results, shaped by the service's kind."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from cyclotron.api.deps import CoreDep
from cyclotron.api.native.alphafold import confidence_body, ranking_of
from cyclotron.api.native.errors import NativeFaceError, NativeFaceRoute
from cyclotron.api.native.routes import CallerDep, RefDep, job_ref
from cyclotron.api.native.schemas import error_responses
from cyclotron.api.native.status import job_status
from cyclotron.domain.records import Caller
from cyclotron.domain.states import TaskState
from cyclotron.errors import ConflictError
from cyclotron.estimators.model import find_estimator, page_number
from cyclotron.services.core import Core
from cyclotron.services.jobs.queries import JobRef, get_job
from cyclotron.services.results.desktop import open_results_directory, opener
from cyclotron.services.results.reads import (
    EstimatorResults,
    completed_job,
    job_estimators,
    job_files,
)

# Included by ``files.router`` (under its ``/api`` prefix).
router = APIRouter(prefix="/api", route_class=NativeFaceRoute, tags=["native"])

_PAGES = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
_INDEX_PAGE_KEYS = ("dimensions",)


def page_numbers(text: str) -> set[int]:
    """``0-1,3`` → {0, 1, 3}; NativeFaceError 422 when malformed."""
    compact = text.replace(" ", "")
    if not _PAGES.match(compact):
        raise NativeFaceError.invalid(("query", "pages"), f"must look like 0-1,3, not {text!r}")
    wanted: set[int] = set()
    for part in compact.split(","):
        first, _, last = part.partition("-")
        low, high = int(first), int(last or first)
        if high < low:
            raise NativeFaceError.invalid(("query", "pages"), f"{part} is an empty range")
        wanted.update(range(low, min(high, low + 100_000) + 1))
    return wanted


def _index_page(page: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "page_number": page_number(page),
        "name": page.get("name", page["metadata"].get("name")),
        "dimensions": page.get("dimensions"),
    }


def _estimators_body(
    found: EstimatorResults, estimator: str | None, pages: str | None, view: str | None
) -> dict[str, Any]:
    estimators = found.estimators
    if estimator is not None:
        one = find_estimator(estimators, estimator)
        if one is None:
            raise NativeFaceError(404, f"Estimator {estimator!r} not found")
        estimators = [one]
        if pages is not None:
            wanted = page_numbers(pages)
            estimators = [{**one, "pages": [p for p in one["pages"] if page_number(p) in wanted]}]
    elif pages is not None:
        raise NativeFaceError.invalid(("query", "pages"), "pages needs estimator")
    if view == "index":
        estimators = [
            {
                "name": e["name"],
                "metadata": e["metadata"],
                "pages": [_index_page(p) for p in e["pages"]],
            }
            for e in estimators
        ]
    return {
        "job_id": found.job.id,
        "service": found.job.service,
        "kind": "estimators",
        "partial": found.partial,
        "tasks_merged": found.tasks_merged,
        "tasks_failed": found.tasks_failed,
        "estimators": estimators,
    }


def _files_body(core: Core, caller: Caller, ref: JobRef) -> dict[str, Any]:
    job = completed_job(core, caller, ref)
    _, entries = job_files(core, caller, ref)
    produced = [e for e in entries if e.task_index is not None and e.path.startswith("tasks/")]
    return {
        "job_id": job.id,
        "kind": "files",
        "tasks": [
            {"index": t.index, "exit_code": t.exit_code}
            for t in job.tasks
            if t.state == TaskState.COMPLETED
        ],
        "files": len(produced),
        "total_size": sum(e.size for e in produced),
    }


def _results(
    core: Core,
    caller: Caller,
    ref: JobRef,
    partial: bool,
    estimator: str | None,
    pages: str | None,
    view: str | None,
) -> dict[str, Any]:
    kind = core.catalog.get(get_job(core, caller, ref, with_tasks=False).service).plugin.result_kind
    try:
        if kind == "estimators":
            found = job_estimators(core, caller, ref, partial)
            return _estimators_body(found, estimator, pages, view)
        if partial:
            raise NativeFaceError(400, "partial results exist only for estimator services")
        if kind == "files":
            return _files_body(core, caller, ref)
        if kind == "confidence":
            return confidence_body(ranking_of(core, caller, ref))
    except ConflictError:
        job = get_job(core, caller, ref, with_tasks=False)
        raise NativeFaceError(
            400, f"Job {job.id} is not completed (status: {job_status(job)})"
        ) from None
    raise NativeFaceError(404, f"results of kind {kind} are not served yet")


@router.get(
    "/jobs/{id}/results",
    summary="The job's results, by the service's result kind",
    responses=error_responses(400, 404, 410, 422),
)
async def results(
    core: CoreDep,
    caller: CallerDep,
    ref: RefDep,
    partial: bool = False,
    estimator: Annotated[str | None, Query(max_length=200)] = None,
    pages: Annotated[str | None, Query(max_length=1000)] = None,
    view: Literal["index"] | None = None,
) -> dict[str, Any]:
    return await run_in_threadpool(_results, core, caller, ref, partial, estimator, pages, view)


_LOOPBACK = frozenset({"127.0.0.1", "::1"})


@router.post(
    "/jobs/{id}/results/open-directory",
    summary="Open results/ on the server's desktop",
    responses=error_responses(400, 403, 404, 410),
)
async def open_directory(
    id: str, request: Request, core: CoreDep, caller: CallerDep
) -> dict[str, str]:
    """Checked in the spec's order: platform (400), local peer (403), then the job (404)."""
    program = opener()
    if program is None:
        raise NativeFaceError(400, "Opening a directory is not supported on this platform")
    peer = request.client.host if request.client is not None else ""
    forwarded = "forwarded" in request.headers or "x-forwarded-for" in request.headers
    if peer not in _LOOPBACK or forwarded:
        raise NativeFaceError(403, "Only a client on this machine may open a directory")
    await run_in_threadpool(open_results_directory, core, caller, job_ref(id), program)
    return {"status": "opened"}
