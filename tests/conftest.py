"""Fixtures shared by every suite: databases on both backends and live servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.databases import BACKENDS, database_url
from support.leaks import assert_no_server_paths
from support.live import LiveServer

ServerFactory = Callable[..., LiveServer]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each test using it runs on SQLite and on PostgreSQL (which must be reachable)."""
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    with database_url(backend, tmp_path) as url:
        yield url


@pytest.fixture
def start_server(db_url: str, tmp_path: Path) -> Iterator[ServerFactory]:
    """Start a live server with a configuration; every server is stopped at the end."""
    servers: list[LiveServer] = []

    def start(
        config: dict[str, Any] | None = None, env: dict[str, str] | None = None
    ) -> LiveServer:
        workdir = tmp_path / f"server{len(servers)}"
        workdir.mkdir()
        server = LiveServer(workdir, db_url, config or {}, env)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
    assert_no_server_paths(db_url, tmp_path)
