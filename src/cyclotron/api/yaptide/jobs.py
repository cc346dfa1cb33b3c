"""Simulations: submit, status, cancel, list and delete (yaptide.md §3.9–§3.13, §3.18–§3.21)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from cyclotron.api.deps import CoreDep
from cyclotron.api.idempotency import HEADER, with_key
from cyclotron.api.yaptide import http, reads
from cyclotron.api.yaptide.auth import AccountsDep, UserDep
from cyclotron.api.yaptide.errors import JobStateConflict, YaptideRoute
from cyclotron.api.yaptide.http import answer, job_id_param, json_object, require_keys
from cyclotron.api.yaptide.shapes import job_status, submission_answer
from cyclotron.domain.records import Caller
from cyclotron.domain.states import JOB_TERMINAL, JobState
from cyclotron.errors import ConflictError, Forbidden, InputError, ServiceUnavailable
from cyclotron.services.access.accounts import UserRecord
from cyclotron.services.core import Core
from cyclotron.services.intake import pipeline
from cyclotron.services.intake.request import (
    EditorInput,
    FilesInput,
    IntakeRequest,
    YaptideSimulation,
)
from cyclotron.services.jobs.cancel import cancel_job
from cyclotron.services.jobs.delete import delete_job
from cyclotron.services.jobs.queries import JobRef
from cyclotron.services.running.batches import BatchRunner
from cyclotron.services.yaptide.clusters import list_clusters
from cyclotron.services.yaptide.simulations import (
    BATCH,
    DIRECT,
    EDITOR,
    FILES,
    MAX_TITLE,
    find_simulation,
    simulation_status,
)
from cyclotron.signing import SigningKeys

router = APIRouter(route_class=YaptideRoute, tags=["YAPTIDE simulations"])

NO_CLUSTER_ACCESS = "Your account has no access to HPC clusters"


def _ntasks(value: Any) -> int:
    if isinstance(value, bool):
        raise InputError("ntasks must be an integer")
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int):
        raise InputError("ntasks must be an integer")
    return value


def _request(
    user: UserRecord, keys: SigningKeys, body: Mapping[str, Any], platform: str
) -> IntakeRequest:
    require_keys(body, "ntasks", "sim_type", "input_type")
    sim_type, input_type = body["sim_type"], body["input_type"]
    if not isinstance(sim_type, str):
        raise InputError("sim_type must be a string")
    if not isinstance(input_type, str) or input_type.lower() not in (EDITOR, FILES):
        raise InputError("input_type must be 'editor' or 'files'")
    input_type = input_type.lower()
    ntasks = _ntasks(body["ntasks"])
    given = _editor_input(body) if input_type == EDITOR else _files_input(body)
    title = body.get("title")
    if title is None and isinstance(given, EditorInput):
        meta = given.project.get("project")
        title = meta.get("title") if isinstance(meta, dict) else None
    if title is None:
        title = ""
    if not isinstance(title, str) or len(title) > MAX_TITLE:
        raise InputError(f"title must be text of at most {MAX_TITLE} characters")
    batch = body.get("batch_options") if platform == BATCH else None
    if batch is not None and not isinstance(batch, dict):
        raise InputError("batch_options must be an object")
    if platform == BATCH:
        batch = batch or {}
    simulation = YaptideSimulation(sim_type, title, input_type, platform, keys, batch)
    return IntakeRequest(
        owner_id=user.owner_id,
        service=sim_type.lower(),
        input=given,
        ntasks=ntasks,
        admin=False,
        fit_ntasks=True,
        yaptide=simulation,
    )


def _editor_input(body: Mapping[str, Any]) -> EditorInput:
    sent = [body[k] for k in ("input_json", "sim_data") if body.get(k) is not None]
    if not sent:
        raise InputError("input_type 'editor' requires input_json")
    if len(sent) == 2 and sent[0] != sent[1]:
        raise InputError("input_json and sim_data differ; send one of them")
    if not isinstance(sent[0], dict):
        raise InputError("input_json must be an object")
    return EditorInput(sent[0])


def _files_input(body: Mapping[str, Any]) -> FilesInput:
    files = body.get("input_files")
    if not files:
        raise InputError("input_type 'files' requires input_files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise InputError("input_files must be an object of {file name: text}")
    return FilesInput({name: text.encode("utf-8") for name, text in files.items()})


async def _submit(
    request: Request, core: Core, accounts: Any, user: UserRecord, platform: str
) -> Response:
    body = await json_object(request, core.settings.yaptide.max_body_bytes)
    intake = _request(user, accounts.keys, body, platform)
    intake = with_key(intake, request.headers.get(HEADER), f"POST {request.url.path}", body)
    shape = submission_answer(batch=platform == BATCH)
    sent = (await run_in_threadpool(pipeline.submit, core, intake, shape)).answer
    if platform == BATCH:
        _batch_runner(request).wake()
    assert sent is not None
    return answer(request, sent.body, sent.status_code)


def _batch_runner(request: Request) -> BatchRunner:
    runner: BatchRunner | None = getattr(request.app.state, "batch", None)
    if runner is None:
        raise ServiceUnavailable("Batch jobs are not handled by this server process")
    return runner


def _status(request: Request, core: Core, user: UserRecord) -> Response:
    job, tasks = simulation_status(core, job_id_param(request), user.owner_id)
    return answer(request, http.fast_json(job_status(job, tasks)))


def _cancel(request: Request, core: Core, user: UserRecord) -> Response:
    job = find_simulation(core, job_id_param(request), user.owner_id)
    if job.state in JOB_TERMINAL:
        return _cannot_cancel(request, job.state)
    owner = Caller(user_id=user.owner_id, admin=False)
    try:
        result = cancel_job(core, owner, JobRef(job_id=job.id), core.settings.api.cancel_wait)
    except ConflictError:
        current = find_simulation(core, job.yaptide_id or "", user.owner_id)
        return _cannot_cancel(request, current.state)
    message = "Job canceled"
    if "batch" in job.attrs:
        unreachable = _batch_runner(request).cancel_remote(job.id)
        if unreachable:
            message = f"Job canceled; {unreachable}"
    return answer(request, {"message": message, "job_state": result.job.state.value})


def _cannot_cancel(request: Request, state: JobState) -> Response:
    body = {"message": f"Cannot cancel job which is in {state.value} state", "job_state": state}
    return answer(request, body)


def _require_cluster_access(user: UserRecord) -> None:
    if not user.cluster_access:
        raise Forbidden(NO_CLUSTER_ACCESS)


@router.post("/jobs/direct", status_code=202, summary="Submit a simulation")
async def submit_direct(
    request: Request, core: CoreDep, accounts: AccountsDep, user: UserDep
) -> Response:
    return await _submit(request, core, accounts, user, DIRECT)


@reads.polled(router, "/jobs/direct", "A simulation's state and its tasks", reads.STATUS_QUERY)
async def status_direct(request: Request) -> Response:
    return await reads.status(request)


@router.delete("/jobs/direct", summary="Cancel a simulation")
def cancel_direct(request: Request, core: CoreDep, user: UserDep) -> Response:
    return _cancel(request, core, user)


@router.post("/jobs/batch", status_code=202, summary="Submit a simulation to a cluster")
async def submit_batch(
    request: Request, core: CoreDep, accounts: AccountsDep, user: UserDep
) -> Response:
    _require_cluster_access(user)
    return await _submit(request, core, accounts, user, BATCH)


@router.get("/jobs/batch", summary="A cluster simulation's state and its tasks")
def status_batch(request: Request, core: CoreDep, user: UserDep) -> Response:
    _require_cluster_access(user)
    return _status(request, core, user)


@router.delete("/jobs/batch", summary="Cancel a cluster simulation")
def cancel_batch(request: Request, core: CoreDep, user: UserDep) -> Response:
    _require_cluster_access(user)
    return _cancel(request, core, user)


@reads.polled(router, "/jobs", "A simulation's state, whatever its platform", reads.STATUS_QUERY)
async def status_any(request: Request) -> Response:
    return await reads.status(request)


@reads.polled(
    router, "/user/simulations", "The user's simulations, a page at a time", reads.LIST_QUERY
)
async def user_simulations(request: Request) -> Response:
    return await reads.simulations(request)


@router.delete("/user/simulations", summary="Delete a finished simulation")
def delete_simulation(request: Request, core: CoreDep, user: UserDep) -> Response:
    job = find_simulation(core, job_id_param(request), user.owner_id)
    if job.state not in JOB_TERMINAL:
        raise JobStateConflict(
            f"Cannot delete a job in {job.state.value} state; cancel it first", job.state.value
        )
    try:
        delete_job(core, Caller(user_id=user.owner_id, admin=False), JobRef(job_id=job.id))
    except ConflictError as exc:
        raise JobStateConflict(exc.message, job.state.value) from exc
    return answer(request, {"message": "Simulation deleted"})


@router.post("/user/update", summary="Update the user's profile or password")
async def update_user(
    request: Request, core: CoreDep, accounts: AccountsDep, user: UserDep
) -> Response:
    body = await json_object(request, core.settings.yaptide.max_body_bytes)
    await run_in_threadpool(accounts.update_user, user, body)
    return answer(request, {"message": "User updated"})


@router.get("/clusters", summary="Clusters the user may send simulations to")
def clusters(request: Request, core: CoreDep, user: UserDep) -> Response:
    _require_cluster_access(user)
    found = [
        {"cluster_name": c.name, "display_name": c.display_name, "available": c.available}
        for c in list_clusters(core)
    ]
    return answer(request, {"message": "Available clusters", "clusters": found})
