"""The AlphaFold 3 results routes of the native face (spec/native.md §8): one sample's
confidences, the raw confidence file and the ranked structures of a completed job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from cyclotron.api.deps import CoreDep
from cyclotron.api.native.errors import NativeFaceError, NativeFaceRoute
from cyclotron.api.native.routes import CallerDep, RefDep
from cyclotron.api.native.schemas import error_responses
from cyclotron.api.native.status import job_status
from cyclotron.domain.records import Caller
from cyclotron.errors import ConflictError, NotFound
from cyclotron.services.core import Core
from cyclotron.services.jobs.queries import JobRef, get_job
from cyclotron.services.results.alphafold import JobRanking, job_ranking, sample_confidence_wire

router = APIRouter(prefix="/api", route_class=NativeFaceRoute, tags=["native"])

_ERRORS = error_responses(400, 404, 410, 422)


def ranking_of(core: Core, caller: Caller, ref: JobRef) -> JobRanking:
    """The job's ranked samples; 400 naming its status before completion."""
    try:
        return job_ranking(core, caller, ref)
    except ConflictError:
        job = get_job(core, caller, ref, with_tasks=False)
        raise NativeFaceError(
            400, f"Job {job.id} is not completed (status: {job_status(job)})"
        ) from None


def confidence_body(ranking: JobRanking) -> dict[str, Any]:
    """``GET …/results`` of an AlphaFold 3 job: ConfidenceResult, the best sample on top."""
    return {
        "job_id": ranking.job.id,
        "service": ranking.job.service,
        "kind": "confidence",
        **ranking.result.as_wire(),
    }


def _sample(core: Core, caller: Caller, ref: JobRef, sample_index: int) -> dict[str, Any]:
    return sample_confidence_wire(ranking_of(core, caller, ref), sample_index)


@router.get(
    "/jobs/{id}/results/confidence/{sample_index}",
    summary="One sample's pLDDT per atom and PAE per token pair",
    responses=_ERRORS,
)
async def sample_confidence(
    core: CoreDep, caller: CallerDep, ref: RefDep, sample_index: int
) -> dict[str, Any]:
    return await run_in_threadpool(_sample, core, caller, ref, sample_index)


@router.get(
    "/jobs/{id}/results/confidence-json",
    summary="The best sample's confidence file as AlphaFold 3 wrote it",
    response_class=FileResponse,
    responses=_ERRORS,
)
async def confidence_json(core: CoreDep, caller: CallerDep, ref: RefDep) -> FileResponse:
    ranking = await run_in_threadpool(ranking_of, core, caller, ref)
    path = ranking.result.best.sample.confidences_path
    if path is None:
        raise NotFound(f"Job {ranking.job.id} has no confidence file")
    return FileResponse(path, media_type="application/json")


@router.get(
    "/jobs/{id}/results/structure/{rank}",
    summary="The structure ranked ``rank`` (1 = best) as mmCIF",
    response_class=FileResponse,
    responses=_ERRORS,
)
async def structure(core: CoreDep, caller: CallerDep, ref: RefDep, rank: int) -> FileResponse:
    ranking = await run_in_threadpool(ranking_of, core, caller, ref)
    path = ranking.result.structure_path(rank)
    return FileResponse(
        path,
        media_type="chemical/x-mmcif",
        filename=f"{ranking.output_name}_rank_{rank}.cif",
    )
