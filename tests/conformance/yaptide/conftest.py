"""Fixtures of the YAPTIDE conformance suite (spec/yaptide.md §8).

One live server per test module and backend. Its ``shieldhit`` service is the SHIELD-HIT12A
test double (``support.shieldhit_double``), which converts the fixture projects and replays
their real results; ``failing`` and ``flaky`` are the same double with failing tasks, and
``reported`` runs its tasks nowhere: workers report them through the worker routes.
Users ``alice`` and ``bob`` exist; ``alice`` and ``bob`` are logged-in clients.
The helpers live in ``support.yaptide`` (benchmarks and other suites use them too).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest
from support.databases import BACKENDS
from support.live import LiveServer
from support.yaptide import FIXTURES, FIXTURES_ABSENT, login, yaptide_server


@pytest.fixture(scope="session", autouse=True)
def _fixtures_present() -> None:
    if not FIXTURES.is_dir():
        pytest.skip(FIXTURES_ABSENT)


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server configured by BASE_CONFIG and the test module's optional ``CONFIG``."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    workdir = tmp_path_factory.mktemp(f"{name}-{request.param}")
    with yaptide_server(str(request.param), workdir, getattr(request.module, "CONFIG", {})) as live:
        yield live


@pytest.fixture(scope="module")
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    with closing(login(server, "alice")) as client:
        yield client


@pytest.fixture(scope="module")
def bob(server: LiveServer) -> Iterator[httpx.Client]:
    with closing(login(server, "bob")) as client:
        yield client


@pytest.fixture
def anonymous(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client
