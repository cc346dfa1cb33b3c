"""Fixtures of the services' unit tests: lease owners that are alive and dead on this host."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from cyclotron.services.leases import lease_owner_of, this_host


@pytest.fixture
def dead_owner() -> str:
    """The owner name of a process of this host that does not exist."""
    return f"{this_host()}:999999999:0"


@pytest.fixture
def live_owner() -> Iterator[str]:
    """The owner name of another live process of this host."""
    process = subprocess.Popen(["sleep", "60"])
    try:
        yield lease_owner_of(process.pid)
    finally:
        process.kill()
        process.wait()
