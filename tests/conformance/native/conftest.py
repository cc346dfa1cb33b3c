"""Fixtures of the native-face suites: one live server per module and backend."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from native_support import ENV
from support.databases import BACKENDS
from support.live import LiveServer, serving


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server configured by the test module's ``CONFIG``, on SQLite and on PostgreSQL."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    workdir = tmp_path_factory.mktemp(f"{name}-{request.param}")
    with serving(str(request.param), workdir, request.module.CONFIG, ENV) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c
