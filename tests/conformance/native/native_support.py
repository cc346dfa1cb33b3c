"""Helpers of the native-face suites: the checklist's ``sim`` service and polling with deadlines.

``sim`` (spec/native.md §13's simulator plug-in reporting primaries) is the SHIELD-HIT12A test
double (``support.shieldhit_double``): it converts the YAPTIDE example project ex1, prints
progress in primaries and writes estimators that the server merges.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

TESTS_DIR = Path(__file__).resolve().parents[2]
FIXTURES = TESTS_DIR.parent.parent / "shared" / "fixtures" / "yaptide"
DOUBLE = "support.shieldhit_double:ShieldhitTestDouble"
SIM = {"plugin": DOUBLE, "seconds": 1.0, "max_runs": 10, "runs_per_user": 10}
ENV = {"PYTHONPATH": str(TESTS_DIR)}
TERMINAL = ("completed", "failed", "cancelled")
# Generous: the suites run on a loaded two-core machine beside other work.
DEADLINE = 90.0


def example_project() -> dict[str, Any]:
    """The editor project of the YAPTIDE example ex1 (a proton beam in water)."""
    document = json.loads((FIXTURES / "ex1.json").read_text())
    project: dict[str, Any] = document["input"]["inputJson"]
    return project


def sim_body(**overrides: Any) -> dict[str, Any]:
    """A native submission for ``sim``: ex1 as an editor project, 3 tasks, 10,000 primaries."""
    base: dict[str, Any] = {
        "name": "Proton pencil beam in water",
        "service": "sim",
        "ntasks": 3,
        "input": {"kind": "editor", "project": example_project(), "primaries": 10_000},
    }
    return {**base, **overrides}


def script_body(script: str, **overrides: Any) -> dict[str, Any]:
    """A native submission for the ``example`` script service."""
    base: dict[str, Any] = {
        "name": "script",
        "service": "example",
        "ntasks": 1,
        "input": {"kind": "files", "files": {"run.sh": script}},
    }
    return {**base, **overrides}


def create(client: httpx.Client, body: dict[str, Any], **kwargs: Any) -> str:
    response = client.post("/api/jobs", json=body, **kwargs)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


def poll(
    client: httpx.Client,
    job_id: str,
    done: Callable[[dict[str, Any]], bool] = lambda d: d["status"] in TERMINAL,
    timeout: float = DEADLINE,
    **kwargs: Any,
) -> dict[str, Any]:
    """GET the job's detail until ``done`` holds; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/jobs/{job_id}", **kwargs)
        assert response.status_code == 200, response.text
        detail: dict[str, Any] = response.json()
        if done(detail):
            return detail
        assert time.monotonic() < deadline, f"job {job_id} still {detail['status']}: {detail}"
        time.sleep(0.05)


def running(detail: dict[str, Any]) -> bool:
    return detail["status"] == "running" or detail["status"] in TERMINAL


def total(client: httpx.Client, **kwargs: Any) -> int:
    count: int = client.get("/api/jobs", **kwargs).json()["total"]
    return count
