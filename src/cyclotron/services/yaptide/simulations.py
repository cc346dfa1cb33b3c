"""Simulations of the YAPTIDE face: simulation ids, per-job update keys, and the reads the
face's routes answer from (intake/yaptide.py stores them).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from cyclotron.domain.records import JobRecord
from cyclotron.domain.states import JOB_TERMINAL, JobState
from cyclotron.errors import (
    Forbidden,
    InputError,
    NotFound,
)
from cyclotron.services.access.accounts import Accounts
from cyclotron.services.access.tokens import TokenClaims
from cyclotron.services.core import Core
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
MISSING_ID = "Missing job_id"
MARKED_FROM = 100  # a job of this many tasks is read with its tasks' mark


@dataclass(frozen=True)
class Login:
    """A request's login, its token verified: whether it still stands is read in the
    transaction of what the request asks for (a poll reads both in one)."""

    accounts: Accounts
    claims: TokenClaims

    def owner_id(self, session: Session) -> int:
        """The login's owner id; 401 when the login no longer stands."""
        return self.accounts.user_of_login_in(session, self.claims).owner_id


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


def updated_simulation_in(core: Core, session: Session, simulation_id: str, key: str) -> JobRecord:
    """The job a worker's report names, without its tasks, once ``key`` is checked, read in
    the caller's transaction (the update's own: a worker of a 1,000-task job reports each
    task's progress). 404 unknown, 403 wrong key."""
    if "\x00" in simulation_id:
        raise NotFound(NOT_FOUND)
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


def check_login(core: Core, login: Login) -> None:
    """401 unless the login still stands."""
    with core.db.transaction(write=False) as session:
        login.owner_id(session)


@dataclass(frozen=True)
class StatusRead:
    """A job, without its tasks, and what its status shows of them (``task_statuses``
    rows), or none where the caller holds them under ``mark``; ``mark`` (None for a job of
    few tasks) changes whenever a shown column of a task does."""

    job: JobRecord
    tasks: Sequence[Sequence[Any]] | None
    mark: Hashable | None


def login_status(
    core: Core,
    login: Login,
    simulation_id: str,
    held: Callable[[JobRecord, Hashable], bool],
) -> StatusRead:
    """The login's owner, then the simulation's status, in one read transaction: 401, then
    400 for no id, then 404 and 403 as ``find_simulation``. A job of ``MARKED_FROM`` tasks
    or more comes with its tasks' mark, and with its tasks only where ``held(job, mark)``
    says False."""
    with core.db.transaction(write=False) as session:
        owner_id = login.owner_id(session)
        if not simulation_id:
            raise InputError(MISSING_ID)
        row = _simulation_row(session, simulation_id, owner_id)
        job = repo.job_record(row)
        if row.ntasks < MARKED_FROM:
            return StatusRead(job, repo.task_statuses(session, row.id), None)
        mark = (row.last_event_seq, listing.task_mark(session, row.id))
        if held(job, mark):
            return StatusRead(job, None, mark)
        return StatusRead(job, repo.task_statuses(session, row.id), mark)


@dataclass(frozen=True)
class ListedPage:
    """Job rows (``rows.make`` makes one's named tuple: the columns by name, as
    ``JobRow``'s) and, by job id, their tasks added up by state name: (tasks, requested
    primaries, simulated primaries)."""

    rows: listing.JobRows
    progress: dict[str, dict[str, tuple[int, int, int]]]
    marks: dict[str, Hashable]  # by job id: changes whenever what a list shows of it may
    total: int


def login_simulation_page(
    core: Core,
    login: Login,
    states: frozenset[JobState] | None,
    order_by_end: bool,
    descending: bool,
    offset: int,
    limit: int,
) -> ListedPage:
    """As ``list_simulations``, for the login's owner (401 first), in one read transaction,
    as plain rows."""
    wanted = None if states is None else {s.value for s in states}
    with core.db.transaction(write=False) as session:
        owner_id = login.owner_id(session)
        if not order_by_end:  # the web UI's order: the page, its progress and total at once
            rows, progress, total = listing.simulation_page_progress(
                session, owner_id, wanted, descending, offset, limit
            )
        else:
            made, total = listing.simulation_page(
                session, owner_id, wanted, order_by_end, descending, offset, limit
            )
            rows = listing.JobRows.of(made)
            progress = {job_id: {} for job_id in rows.ids()}
            for job_id, state, n, requested, simulated in listing.task_progress(
                session, rows.ids()
            ):
                progress[job_id][state] = (int(n), int(requested or 0), int(simulated or 0))
    marks = {
        job_id: listing.row_mark(raw, tuple(sorted(progress[job_id].items())))
        for raw, job_id in zip(rows.raw, rows.ids(), strict=True)
    }
    return ListedPage(rows, progress, marks, total)
