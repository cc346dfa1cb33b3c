"""Unit-suite fixtures: a migrated database on each backend, a way to put jobs in it, and a
core (the default settings over that database)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.leaks import assert_no_server_paths

from cyclotron.domain.states import JobStage, JobState
from cyclotron.services.core import Core, build_core
from cyclotron.settings import load_settings
from cyclotron.storage import jobs as repo
from cyclotron.storage.database import Database
from cyclotron.storage.migrate import upgrade
from cyclotron.storage.tables import JobRow, utcnow

AddJob = Callable[..., str]


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    """An empty database at the current schema (SQLite and PostgreSQL, via ``db_url``)."""
    db = Database(db_url)
    upgrade(db)
    yield db
    db.dispose()


@pytest.fixture
def core_overrides() -> dict[str, Any]:
    """Settings a module's ``core`` has besides the defaults (a module overrides this)."""
    return {}


@pytest.fixture
def core(db_url: str, tmp_path: Path, core_overrides: dict[str, Any]) -> Iterator[Core]:
    """A core with the embedded defaults and ``core_overrides`` over ``db_url``, its data
    directory in ``tmp_path``."""
    config = tmp_path / "cyclotron.toml"
    config.write_text("")
    server = {"database_url": db_url, "data_dir": str(tmp_path / "data")}
    settings = load_settings(config, environ={}, overrides={**core_overrides, "server": server})
    built = build_core(settings)
    yield built
    built.close()
    assert_no_server_paths(db_url, tmp_path)


@pytest.fixture
def add_job(database: Database) -> AddJob:
    """Store a job (and its tasks) directly, as submission would; returns its id."""

    def add(
        owner_id: int = 1,
        *,
        service: str = "example",
        priority: int = 0,
        state: JobState = JobState.PENDING,
        stage: JobStage = JobStage.QUEUED,
        ntasks: int = 1,
    ) -> str:
        job_id = uuid.uuid4().hex
        with database.transaction() as session:
            repo.add_job(
                session,
                JobRow(
                    id=job_id,
                    owner_id=owner_id,
                    service=service,
                    name="job",
                    state=state.value,
                    stage=stage.value,
                    priority=priority,
                    ntasks=ntasks,
                    created_at=utcnow(),
                ),
                ntasks,
            )
        return job_id

    return add
