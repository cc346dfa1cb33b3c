"""What the server is and does right now: services, executors, queues, database."""

from __future__ import annotations

from dataclasses import dataclass, field

from cyclotron.domain.states import JobState
from cyclotron.services.core import Core
from cyclotron.services.ops.health import database_reachable
from cyclotron.storage import jobs as repo

_RUNNING = {JobState.RUNNING.value, JobState.MERGING_QUEUED.value, JobState.MERGING_RUNNING.value}


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    plugin: str
    version: str | None
    executor: str
    available: bool
    reason: str | None


@dataclass(frozen=True)
class ExecutorStatus:
    name: str
    slots: int
    busy: int


@dataclass(frozen=True)
class QueueCounts:
    pending: int = 0
    running: int = 0


@dataclass(frozen=True)
class SystemStatus:
    database_kind: str
    database_ok: bool
    services: list[ServiceStatus]
    executors: list[ExecutorStatus]
    queue: QueueCounts
    by_service: dict[str, QueueCounts] = field(default_factory=dict)
    running_tasks: int = 0


def service_statuses(core: Core) -> list[ServiceStatus]:
    statuses = []
    for service in core.catalog:
        reason = core.catalog.unavailable_reason(service.name)
        statuses.append(
            ServiceStatus(
                name=service.name,
                plugin=service.settings.plugin,
                version=service.plugin.version,
                executor=service.settings.executor,
                available=reason is None,
                reason=reason,
            )
        )
    return statuses


def system_status(core: Core) -> SystemStatus:
    ok = database_reachable(core, timeout=2.0)
    by_service: dict[str, QueueCounts] = {}
    running_tasks = 0
    if ok:
        with core.db.transaction(write=False) as session:
            counts = repo.jobs_by_service_and_state(session)
            running_tasks = repo.running_task_count(session)
        for name in core.catalog.names():
            pending = counts.get((name, JobState.PENDING.value), 0)
            running = sum(counts.get((name, state), 0) for state in _RUNNING)
            by_service[name] = QueueCounts(pending, running)
    executors = [
        ExecutorStatus(name, executor.free_slots() + executor.running(), executor.running())
        for name, executor in core.executors.items()
    ]
    return SystemStatus(
        database_kind=core.db.kind,
        database_ok=ok,
        services=service_statuses(core),
        executors=executors,
        queue=QueueCounts(
            pending=sum(q.pending for q in by_service.values()),
            running=sum(q.running for q in by_service.values()),
        ),
        by_service=by_service,
        running_tasks=running_tasks,
    )
