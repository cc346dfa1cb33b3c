"""Simulations of the YAPTIDE face: simulation ids, per-job update keys, and the reads the
face's routes answer from (intake/yaptide.py stores them).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from cyclotron.domain.records import JobRecord
from cyclotron.domain.states import JOB_TERMINAL, JobState
from cyclotron.errors import (
    Forbidden,
    NotFound,
)
from cyclotron.services.core import Core
from cyclotron.services.jobs.queries import summarised
from cyclotron.signing import SigningKeys
from cyclotron.storage import jobs as repo
from cyclotron.storage import listing
from cyclotron.storage.tables import JobRow, utcnow

log = logging.getLogger(__name__)

DIRECT = "DIRECT"
BATCH = "BATCH"
EDITOR = "editor"
FILES = "files"
PROJECT_DOCUMENT = "project.json"
MAX_TITLE = 512
NOT_FOUND = "Job with provided ID does not exist"
NOT_YOURS = "Job with provided ID does not belong to the user"


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


def find_simulation(core: Core, simulation_id: str, owner_id: int | None) -> JobRecord:
    """The job with its tasks; 404 unknown, 403 another user's (when ``owner_id`` is given)."""
    if "\x00" in simulation_id:
        # No id holds NUL, and PostgreSQL refuses it in a query parameter (a 500 otherwise).
        raise NotFound(NOT_FOUND)
    with core.db.transaction(write=False) as session:
        row = _simulation_row(session, simulation_id, owner_id)
        return repo.job_record(row, repo.task_records(session, row.id))


def simulation_status(
    core: Core, simulation_id: str, owner_id: int
) -> tuple[JobRecord, Sequence[Sequence[Any]]]:
    """The job without its tasks, and what its status shows of each (``task_statuses``);
    404 and 403 as ``find_simulation``."""
    with core.db.transaction(write=False) as session:
        row = _simulation_row(session, simulation_id, owner_id)
        return repo.job_record(row), repo.task_statuses(session, row.id)


def _simulation_row(session: Session, simulation_id: str, owner_id: int | None) -> Row[Any]:
    if "\x00" in simulation_id:  # as in find_simulation
        raise NotFound(NOT_FOUND)
    row = repo.job_by_yaptide_id(session, simulation_id)
    if row is None:
        raise NotFound(NOT_FOUND)
    if owner_id is not None and row.owner_id != owner_id:
        raise Forbidden(NOT_YOURS)
    return row


def check_update_key(core: Core, job: JobRecord, stored_digest: str | None, key: str) -> None:
    """403 unless ``key`` is this job's update key and it has not expired."""
    valid = stored_digest is not None and hmac.compare_digest(key_digest(key), stored_digest)
    if valid and job.state in JOB_TERMINAL and job.ended_at is not None:
        days = core.settings.yaptide.update_key_days
        valid = utcnow() - job.ended_at <= timedelta(days=days)
    if not valid:
        raise Forbidden("Invalid update key")


def updated_simulation(core: Core, simulation_id: str, key: str) -> JobRecord:
    """The job a worker's report names, without its tasks, once ``key`` is checked: one read
    (a worker of a 1,000-task job reports each task's progress). 404 unknown, 403 wrong key."""
    if "\x00" in simulation_id:
        raise NotFound(NOT_FOUND)
    with core.db.transaction(write=False) as session:
        row = repo.job_by_yaptide_id(session, simulation_id)
    if row is None:
        raise NotFound(NOT_FOUND)
    job = repo.job_record(row)
    check_update_key(core, job, row.update_key_sha256, key)
    return job


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
    """A user's simulations, ordered as /user/simulations asks (no end time = latest; ties
    by submission), each with the summary of its tasks."""
    wanted = None if states is None else {s.value for s in states}
    with core.db.transaction(write=False) as session:
        rows, total = listing.simulation_page(
            session, owner_id, wanted, order_by_end, descending, offset, limit
        )
        return SimulationPage(summarised(session, rows), total)
