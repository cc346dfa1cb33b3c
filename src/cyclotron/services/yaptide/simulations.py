"""Simulations of the YAPTIDE face: submission of editor projects and input files, primaries
split over tasks, per-job update keys, and the reads the face's routes answer from.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from cyclotron.domain.filenames import check_file_name
from cyclotron.domain.primaries import MAX_PRIMARIES, split_primaries
from cyclotron.domain.records import JobRecord
from cyclotron.domain.states import JOB_ACTIVE, JOB_TERMINAL, JobState
from cyclotron.errors import (
    CyclotronError,
    Forbidden,
    InputError,
    NotFound,
    PluginError,
    QueueFull,
)
from cyclotron.services.access.tokens import SigningKeys
from cyclotron.services.core import Core
from cyclotron.services.intake.store import JobRequest, submit_staged_files
from cyclotron.storage import jobs as repo
from cyclotron.storage.tables import JobRow, utcnow

log = logging.getLogger(__name__)

DIRECT = "DIRECT"
BATCH = "BATCH"
EDITOR = "editor"
FILES = "files"
PROJECT_DOCUMENT = "project.json"
MAX_TITLE = 512
MAX_FILES = 1000
NOT_FOUND = "Job with provided ID does not exist"
NOT_YOURS = "Job with provided ID does not belong to the user"


@dataclass(frozen=True)
class SimulationRequest:
    owner_id: int
    sim_type: str
    ntasks: int
    input_type: str
    project: Mapping[str, Any] | None
    files: Mapping[str, str] | None
    title: str
    platform: str = DIRECT
    # A batch job's cluster and sbatch options; the job then goes to SLURM, not to the
    # service's own executor.
    batch: Mapping[str, Any] | None = None


SLURM = "slurm"


def new_simulation_id(now: datetime, platform: str) -> str:
    """``YYYYmmdd-HHMMSS-<uuid4><PLATFORM>`` with the UTC submission time."""
    return f"{now:%Y%m%d-%H%M%S}-{uuid.uuid4()}{platform}"


def update_key_for(keys: SigningKeys, job_id: str) -> str:
    """The job's update key: 256 bits derived from the server's secret and the job's id.

    Deriving it lets the server hand it to each task's worker when the task is dispatched,
    while the database keeps only its SHA-256.
    """
    secret = keys.key(keys.current)
    assert secret is not None
    digest = hmac.new(secret, b"cyclotron-update-key\x00" + job_id.encode(), hashlib.sha256)
    return digest.hexdigest()


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


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


def _project_primaries(project: Mapping[str, Any]) -> int | None:
    beam = project.get("beam")
    value = beam.get("numberOfParticles") if isinstance(beam, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not float(value).is_integer() or not 1 <= value <= MAX_PRIMARIES:
        return None
    return int(value)


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


def submit_simulation(core: Core, keys: SigningKeys, request: SimulationRequest) -> JobRecord:
    """Convert, validate, split and store a simulation; nothing is kept when any step refuses."""
    service_name = _service_for(core, request.sim_type)
    service = core.catalog.get(service_name)
    limit = core.settings.yaptide.max_active_jobs_per_user
    if limit is not None:
        active = _active_count(core, request.owner_id)
        if active >= limit:
            raise QueueFull(f"You already have {active} active jobs (limit {limit})", 30)
    staged = core.files.new_staging_area()
    try:
        if request.input_type == EDITOR:
            assert request.project is not None
            try:
                files = service.plugin.editor_files(request.project)
            except PluginError as exc:
                raise InputError(exc.message) from exc
            except Exception as exc:
                log.exception("converting an editor project for %s failed", service_name)
                raise CyclotronError(f"Input conversion failed: {exc}") from exc
            primaries = _project_primaries(request.project)
        else:
            assert request.files is not None
            files = dict(request.files)
            primaries = None
        if len(files) > MAX_FILES:
            raise InputError(f"At most {MAX_FILES} input files are accepted")
        seen: set[str] = set()
        for name, text in files.items():
            check_file_name(name, seen)
            if any(ord(c) < 32 for c in name):
                raise InputError(f"File name must not contain control characters: {name!r}")
            seen.add(name)
            (staged / name).write_text(text, encoding="utf-8")
        try:
            service.plugin.validate(staged)
        except PluginError as exc:
            raise InputError(exc.message) from exc
        if primaries is None:
            primaries = service.plugin.total_primaries(staged)
        if primaries is None or primaries < 1:
            raise InputError("Cannot determine the number of primaries")
        ntasks = min(max(request.ntasks, 1), primaries)
        if ntasks > service.settings.max_ntasks:
            raise InputError(
                f"ntasks must be at most {service.settings.max_ntasks} for '{service_name}'"
            )
        job_id = new_simulation_id(utcnow(), request.platform)
        attrs: dict[str, Any] = {
            "title": request.title,
            "input_type": request.input_type,
            "platform": request.platform,
            "primaries": primaries,
            "update_kid": keys.current,
        }
        if request.batch is not None:
            attrs["batch"] = dict(request.batch)
        documents: dict[str, bytes] = {}
        if request.project is not None:
            attrs["output_names"] = _output_names(request.project)
            documents[PROJECT_DOCUMENT] = json.dumps(request.project).encode("utf-8")
        record = submit_staged_files(
            core,
            JobRequest(
                owner_id=request.owner_id,
                service=service_name,
                name=request.title[:255] or "simulation",
                ntasks=ntasks,
                primaries=primaries,
                task_primaries=split_primaries(primaries, ntasks),
                yaptide_id=job_id,
                attrs=attrs,
                update_key_sha256=key_digest(update_key_for(keys, job_id)),
                executor=SLURM if request.batch is not None else None,
                documents=documents,
            ),
            staged,
        )
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return record


def find_simulation(core: Core, simulation_id: str, owner_id: int | None) -> JobRecord:
    """The job with its tasks; 404 unknown, 403 another user's (when ``owner_id`` is given)."""
    if "\x00" in simulation_id:
        # No id holds NUL, and PostgreSQL refuses it in a query parameter (a 500 otherwise).
        raise NotFound(NOT_FOUND)
    with core.db.transaction(write=False) as session:
        row = session.scalar(select(JobRow).where(JobRow.yaptide_id == simulation_id))
        if row is None:
            raise NotFound(NOT_FOUND)
        if owner_id is not None and row.owner_id != owner_id:
            raise Forbidden(NOT_YOURS)
        return repo.job_record(row, repo.job_tasks(session, row.id))


def check_update_key(core: Core, job: JobRecord, stored_digest: str | None, key: str) -> None:
    """403 unless ``key`` is this job's update key and it has not expired."""
    valid = stored_digest is not None and hmac.compare_digest(key_digest(key), stored_digest)
    if valid and job.state in JOB_TERMINAL and job.ended_at is not None:
        days = core.settings.yaptide.update_key_days
        valid = utcnow() - job.ended_at <= timedelta(days=days)
    if not valid:
        raise Forbidden("Invalid update key")


def update_key_digest(core: Core, job_id: str) -> str | None:
    with core.db.transaction(write=False) as session:
        return session.scalar(select(JobRow.update_key_sha256).where(JobRow.id == job_id))


def read_project(core: Core, job: JobRecord) -> Any:
    path = core.files.document_path(job.id, PROJECT_DOCUMENT)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def read_input_files(core: Core, job: JobRecord) -> dict[str, str]:
    directory = core.files.input_dir(job.id)
    if not directory.is_dir():
        return {}
    return {
        p.name: p.read_text(encoding="utf-8", errors="replace")
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


@dataclass(frozen=True)
class SimulationPage:
    items: list[JobRecord]
    total: int


def list_simulations(
    core: Core,
    owner_id: int,
    states: frozenset[JobState] | None,
    order_by_end: bool,
    descending: bool,
    offset: int,
    limit: int,
) -> SimulationPage:
    """A user's jobs of every face, ordered as /user/simulations asks (no end time = latest)."""
    with core.db.transaction(write=False) as session:
        clauses = [JobRow.owner_id == owner_id, JobRow.yaptide_id.is_not(None)]
        if states is not None:
            clauses.append(JobRow.state.in_([s.value for s in states]))
        keys = [JobRow.created_at, JobRow.id]
        if order_by_end:
            unended = JobRow.ended_at.is_(None)
            # SQL sorts NULL differently per backend: order by "has no end" first, explicitly.
            ordering = [unended.desc() if descending else unended.asc(), JobRow.ended_at, *keys]
            ordering = [ordering[0]] + [k.desc() if descending else k.asc() for k in ordering[1:]]
        else:
            ordering = [k.desc() if descending else k.asc() for k in keys]
        total = int(session.scalar(select(func.count()).select_from(JobRow).where(*clauses)) or 0)
        rows = list(
            session.scalars(
                select(JobRow).where(*clauses).order_by(*ordering).offset(offset).limit(limit)
            )
        )
        tasks = repo.tasks_of_jobs(session, [r.id for r in rows])
        return SimulationPage([repo.job_record(r, tasks[r.id]) for r in rows], total)
