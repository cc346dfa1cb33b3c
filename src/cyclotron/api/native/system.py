"""``GET /api/system/status`` and ``GET /api/services``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from cyclotron import __version__
from cyclotron.api.deps import CoreDep
from cyclotron.api.native.errors import NativeFaceRoute
from cyclotron.api.native.routes import CallerDep
from cyclotron.api.native.schemas import error_responses
from cyclotron.services.ops.system import service_statuses, system_status
from cyclotron.services.results.alphafold import alphafold_status
from cyclotron.services.running.workers import workers_seen

router = APIRouter(prefix="/api", route_class=NativeFaceRoute, tags=["native"])
API_VERSION = 1


@router.get(
    "/system/status",
    summary="Version, services, executors, queues and database",
    responses=error_responses(),
)
async def status(core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    found = await run_in_threadpool(system_status, core)
    workers = await run_in_threadpool(workers_seen, core)
    alphafold = await run_in_threadpool(alphafold_status, core)
    return {
        "version": __version__,
        "api_version": API_VERSION,
        "started_at": core.started_at.isoformat().replace("+00:00", "Z"),
        "auth_enabled": core.settings.auth_enabled,
        "database": {"kind": found.database_kind, "ok": found.database_ok},
        "services": [
            {"name": s.name, "version": s.version, "available": s.available, "reason": s.reason}
            for s in found.services
        ],
        "executors": [
            {"name": e.name, "kind": e.name, "available": True, "slots": e.slots, "busy": e.busy}
            for e in found.executors
        ],
        "queue": {
            "pending": found.queue.pending,
            "running": found.queue.running,
            "by_service": {
                name: {"pending": q.pending, "running": q.running}
                for name, q in found.by_service.items()
            },
        },
        "running_tasks": found.running_tasks,
        "sandbox": {
            "mode": core.sandbox.mode,
            "configured": core.sandbox.configured,
            "reason": core.sandbox.reason,
        },
        "workers": [
            {
                "id": w.id,
                "executor": w.executor,
                "last_seen": w.last_seen.isoformat().replace("+00:00", "Z"),
                "running_tasks": w.running_tasks,
            }
            for w in workers
        ],
        # Names the AlphaFold 3 app's clients read.
        "queue_size": found.queue.pending,
        "active_job_id": None,
        "model_loaded": False,
        "model_loading": False,
        **alphafold,
    }


@router.get(
    "/services",
    summary="Configured services, their inputs and limits",
    responses=error_responses(),
)
async def services(core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    statuses = {s.name: s for s in service_statuses(core)}
    listed = []
    for service in core.catalog:
        limits = service.settings
        state = statuses[service.name]
        listed.append(
            {
                "name": service.name,
                "plugin": limits.plugin,
                "version": service.plugin.version,
                "executor": limits.executor,
                "description": service.description,
                "stands_in_for": service.settings.stands_in_for,
                "input_kinds": list(service.plugin.input_kinds),
                "result_kind": service.plugin.result_kind,
                "available": state.available,
                "reason": state.reason,
                "limits": {
                    "max_runs": limits.max_runs,
                    "runs_per_user": limits.runs_per_user,
                    "max_queued": limits.max_queued,
                    "max_queued_per_user": limits.max_queued_per_user,
                    "max_ntasks": limits.max_ntasks,
                    "max_primaries": limits.max_primaries,  # simulation services only
                },
                "options_schema": {
                    "type": "object",
                    "properties": {},
                    "additionalProperties": False,
                },
            }
        )
    return {"services": listed}
