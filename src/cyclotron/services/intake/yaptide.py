"""What a YAPTIDE simulation adds to intake: sim_type and active-job refusals in YAPTIDE's
words, a batch job's cluster options, and the simulation id, title and update key it keeps."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import func, select

from cyclotron.domain.states import JOB_ACTIVE
from cyclotron.errors import InputError, QueueFull
from cyclotron.services.core import Core
from cyclotron.services.intake.request import YaptideSimulation
from cyclotron.services.intake.store import StoredJob
from cyclotron.services.running.batches import batch_request
from cyclotron.services.yaptide.clusters import resolve_cluster
from cyclotron.services.yaptide.simulations import (
    PROJECT_DOCUMENT,
    SLURM,
    key_digest,
    new_simulation_id,
    update_key_for,
)
from cyclotron.storage.tables import JobRow, utcnow


def available_services(core: Core) -> list[str]:
    return [name for name in core.catalog.names() if core.catalog.unavailable_reason(name) is None]


def _service_for(core: Core, sim_type: str) -> str:
    name = sim_type.lower()
    available = available_services(core)
    if name in available:
        return name
    listed = ", ".join(available) or "none"
    if name in core.catalog.names():
        reason = core.catalog.unavailable_reason(name)
        raise InputError(f"sim_type '{sim_type}' is unavailable: {reason}. Available: {listed}")
    raise InputError(f"Unsupported sim_type '{sim_type}'. Available: {listed}")


def _output_names(project: Mapping[str, Any]) -> list[str]:
    manager = project.get("scoringManager")
    outputs = manager.get("outputs") if isinstance(manager, Mapping) else None
    if not isinstance(outputs, list):
        return []
    return [str(o.get("name")) for o in outputs if isinstance(o, Mapping) and "name" in o]


def _active_count(core: Core, owner_id: int) -> int:
    with core.db.transaction(write=False) as session:
        stmt = (
            select(func.count())
            .select_from(JobRow)
            .where(JobRow.owner_id == owner_id, JobRow.state.in_([s.value for s in JOB_ACTIVE]))
        )
        return int(session.scalar(stmt) or 0)


def admit(core: Core, owner_id: int, simulation: YaptideSimulation) -> YaptideSimulation:
    """The simulation, its batch options checked against its cluster; refused, in YAPTIDE's
    words, for a sim_type no available service answers to, and for an owner at
    ``[yaptide] max_active_jobs_per_user``."""
    _service_for(core, simulation.sim_type)
    limit = core.settings.yaptide.max_active_jobs_per_user
    if limit is not None:
        active = _active_count(core, owner_id)
        if active >= limit:
            raise QueueFull(f"You already have {active} active jobs (limit {limit})", 30)
    if simulation.batch is None:
        return simulation
    cluster = resolve_cluster(core, simulation.batch.get("cluster_name"))
    return replace(simulation, batch=batch_request(core, simulation.batch, cluster.name))


def labelled(
    stored: StoredJob, simulation: YaptideSimulation, project: Mapping[str, Any] | None
) -> StoredJob:
    """The job as a YAPTIDE simulation keeps it: its simulation id, title, platform and
    update key, the project as sent, and a batch job's cluster (it then goes to SLURM)."""
    job_id = new_simulation_id(utcnow(), simulation.platform)
    attrs: dict[str, Any] = {
        **(stored.attrs or {}),
        "title": simulation.title,
        "input_type": simulation.input_type,
        "platform": simulation.platform,
        "update_kid": simulation.keys.current,
    }
    documents = dict(stored.documents)
    if simulation.batch is not None:
        attrs["batch"] = dict(simulation.batch)
    if project is not None:
        attrs["output_names"] = _output_names(project)
        documents[PROJECT_DOCUMENT] = json.dumps(project).encode("utf-8")
    return replace(
        stored,
        name=simulation.title[:255] or "simulation",
        yaptide_id=job_id,
        attrs=attrs,
        update_key_sha256=key_digest(update_key_for(simulation.keys, job_id)),
        executor=SLURM if simulation.batch is not None else None,
        documents=documents,
    )
