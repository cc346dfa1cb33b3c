"""Worker-facing routes (yaptide.md §4): no cookies; the job's update key authorises."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from cyclotron.api.deps import CoreDep
from cyclotron.api.yaptide.errors import YaptideRoute
from cyclotron.api.yaptide.http import answer, json_object
from cyclotron.errors import InputError, NotFound
from cyclotron.services.core import Core
from cyclotron.services.jobs.logs import store_log_texts
from cyclotron.services.running import reports
from cyclotron.services.running.reports import Authorised, BulkOutcome, task_index

router = APIRouter(route_class=YaptideRoute, tags=["YAPTIDE workers"])


def _missing(body: dict[str, Any], *keys: str) -> None:
    missing = [k for k in keys if body.get(k) is None]
    if missing:
        raise InputError(f"Missing keys in JSON payload: {', '.join(missing)}")


async def _report(request: Request, core: Core, *required: str) -> tuple[dict[str, Any], str, str]:
    """The body, with the simulation id and the update key it names."""
    body = await json_object(request, core.settings.yaptide.max_body_bytes)
    if body.get("simulation_id") is None and body.get("sim_id") is not None:
        body["simulation_id"] = body["sim_id"]
    _missing(body, "simulation_id", "update_key", *required)
    simulation_id, key = body["simulation_id"], body["update_key"]
    if not isinstance(simulation_id, str) or not isinstance(key, str):
        raise InputError("simulation_id and update_key must be strings")
    return body, simulation_id, key


async def _authorised(
    request: Request, core: Core, *required: str
) -> tuple[dict[str, Any], Authorised]:
    """The body and the job it names with its tasks, its key checked."""
    body, simulation_id, key = await _report(request, core, *required)
    return body, await run_in_threadpool(reports.authorise, core, simulation_id, key)


def _update_one(
    core: Core, simulation_id: str, key: str, task_id: Any, update: Any
) -> tuple[BulkOutcome, list[str]]:
    """Check the key, then the update, and apply it: in one worker thread, and in the
    update's own transaction."""

    def updates() -> reports.Updates:
        if not isinstance(update, dict):
            raise InputError("update_dict must be an object")
        task_index(task_id)
        return [(task_id, update)]

    return reports.reported_updates(core, simulation_id, key, updates)


def _update_many(
    core: Core, simulation_id: str, key: str, items: Any
) -> tuple[BulkOutcome, list[str]]:
    """Check the key, then the list, and apply its updates in order: in one worker thread,
    and in the updates' own transaction."""

    def updates() -> reports.Updates:
        if not isinstance(items, list) or len(items) > reports.MAX_BULK:
            raise InputError(f"tasks must be a list of at most {reports.MAX_BULK} items")
        return [
            (item.get("task_id"), item.get("update_dict"))
            if isinstance(item, dict)
            else (None, None)
            for item in items
        ]

    return reports.reported_updates(core, simulation_id, key, updates)


@router.post("/tasks", status_code=202, summary="A worker's update of one task")
async def update_task(request: Request, core: CoreDep) -> Response:
    body, simulation_id, key = await _report(request, core, "task_id", "update_dict")
    outcome, messages = await run_in_threadpool(
        _update_one, core, simulation_id, key, body["task_id"], body["update_dict"]
    )
    if outcome.rejected:
        first = outcome.rejected[0]["message"]
        raise (NotFound(first) if "does not exist" in first else InputError(first))
    message = "Task updated" if outcome.applied else messages[0]
    return answer(request, {"message": message}, 202)


@router.post("/tasks/bulk", status_code=202, summary="A worker's updates of several tasks")
async def update_tasks(request: Request, core: CoreDep) -> Response:
    body, simulation_id, key = await _report(request, core, "tasks")
    outcome, _ = await run_in_threadpool(_update_many, core, simulation_id, key, body["tasks"])
    return answer(
        request,
        {
            "message": "Tasks updated",
            "applied": outcome.applied,
            "ignored": outcome.ignored,
            "rejected": outcome.rejected,
        },
        202,
    )


@router.post("/jobs", status_code=202, summary="A worker's report on the whole job")
async def update_job(request: Request, core: CoreDep) -> Response:
    body, auth = await _authorised(request, core)
    message = await run_in_threadpool(reports.report_job, core, auth.job, body)
    return answer(request, {"message": message}, 202)


@router.post("/results", status_code=202, summary="A worker's results: final or one task's")
async def upload_results(request: Request, core: CoreDep) -> Response:
    body, auth = await _authorised(request, core, "estimators")
    message = await run_in_threadpool(reports.store_results, core, auth.job, body)
    return answer(request, {"message": message}, 202)


@router.post("/logfiles", status_code=202, summary="A worker's log files")
async def upload_logfiles(request: Request, core: CoreDep) -> Response:
    body, auth = await _authorised(request, core, "logfiles")
    logs = body["logfiles"]
    if not isinstance(logs, dict):
        raise InputError("logfiles must be an object of {name: text}")
    index = task_index(body["task_id"]) if body.get("task_id") is not None else None
    if index is not None and not any(t.index == index for t in auth.job.tasks):
        raise NotFound(f"Task {body['task_id']} does not exist")
    await run_in_threadpool(store_log_texts, core, auth.job.id, index, logs)
    return answer(request, {"message": "Log files saved"}, 202)
