"""The ``shieldhit`` plug-in end to end, with a test double of the SHIELD-HIT12A binary.

The double (``tests/support/shieldhit_binary_double.py``) replays the real transcript and
``.bdo`` files of ``fixtures/shieldhit/mocks/shieldhit_minimal``; everything else is real: the
plug-in's NSTAT split, progress parsing, pymchelper reading, the merge and the YAPTIDE face.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.doubles import DOUBLE_READS
from support.live import LiveServer
from support.yaptide import TESTS_DIR, login, yaptide_server

MOCK = TESTS_DIR.parent.parent / "shared" / "fixtures" / "shieldhit" / "mocks" / "shieldhit_minimal"
DOUBLE = TESTS_DIR / "support" / "shieldhit_binary_double.py"
NSTAT = 20


def _config(tmp: Path) -> dict[str, Any]:
    (tmp / "bin").mkdir()  # the wrapper's own folder: its sandbox binds it read-only
    empty_outputs = tmp / "bin" / "shieldhit-empty-outputs"
    empty_outputs.write_text(f'#!/bin/sh\nSHIELDHIT_DOUBLE_EMPTY_SEEDS=2 exec "{DOUBLE}" "$@"\n')
    empty_outputs.chmod(0o755)
    return {
        "services": {
            "shieldhit": {
                "plugin": "shieldhit",
                "executable": str(DOUBLE),
                "read_only_paths": DOUBLE_READS,
            },
            "emptyout": {
                "plugin": "shieldhit",
                "executable": str(empty_outputs),
                "read_only_paths": DOUBLE_READS,
            },
            "unconfigured": {"plugin": "shieldhit"},
        },
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if not MOCK.is_dir():
        pytest.skip(f"the shared SHIELD-HIT12A fixtures are absent ({MOCK})")
    tmp = tmp_path_factory.mktemp("shieldhit-engine")
    env = {"SHIELDHIT_DOUBLE_SECONDS": "2.5"}
    with yaptide_server("sqlite", tmp, _config(tmp), env) as live:
        yield live


@pytest.fixture(scope="module")
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    client = login(server, "alice")
    yield client
    client.close()


def _files_body(sim_type: str, ntasks: int) -> dict[str, Any]:
    files = {p.name: p.read_text() for p in sorted(MOCK.glob("*.dat"))}
    return {
        "sim_type": sim_type,
        "ntasks": ntasks,
        "input_type": "files",
        "input_files": files,
        "title": "minimal mesh",
    }


def _submit(client: httpx.Client, sim_type: str, ntasks: int) -> str:
    answer = client.post("/jobs/direct", json=_files_body(sim_type, ntasks))
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["job_id"]
    return job_id


def _poll(client: httpx.Client, job_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get("/jobs/direct", params={"job_id": job_id}).json()
        seen.append(status)
        if status["job_state"] in ("COMPLETED", "FAILED", "CANCELED"):
            return seen
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end: {seen[-1]}")


def test_three_tasks_show_live_progress_and_end_with_merged_results(
    alice: httpx.Client,
) -> None:
    job_id = _submit(alice, "shieldhit", 3)
    seen = _poll(alice, job_id)
    final = seen[-1]
    assert final["job_state"] == "COMPLETED", final
    tasks = final["job_tasks_status"]
    assert [t["requested_primaries"] for t in tasks] == [7, 7, 6]
    assert all(t["simulated_primaries"] == t["requested_primaries"] for t in tasks)
    # Progress parsed from the engine's own lines was visible while the tasks ran.
    partial = [
        t
        for status in seen
        for t in status["job_tasks_status"]
        if t["task_state"] == "RUNNING" and 0 < t["simulated_primaries"] < t["requested_primaries"]
    ]
    assert partial, "no poll saw a task part-way through"
    assert any("estimated_time" in t for t in partial)

    results = alice.get("/results", params={"job_id": job_id})
    assert results.status_code == 200, results.text
    estimators = {e["name"]: e for e in results.json()["estimators"]}
    assert set(estimators) == {"mesh", "fluence"}
    for estimator in estimators.values():
        # Weights come from the files: each replayed .bdo records 20 primaries.
        assert estimator["metadata"]["number_of_primaries"] == str(3 * NSTAT)
        assert estimator["metadata"]["file_counter"] == "3"
        page = estimator["pages"][0]
        assert page["dimensions"] == 2
        assert len(page["data"]["values"]) == 16
        assert len(page["axis_dim1"]["values"]) == 4 and len(page["axis_dim2"]["values"]) == 4
    dose = estimators["mesh"]["pages"][0]
    assert dose["data"]["name"] == "DOSE" and any(v for v in dose["data"]["values"])

    logs = alice.get("/logfiles", params={"job_id": job_id}).json()["logfiles"]
    assert "Transport completed." in logs["task-1/stdout"]
    assert "Requested number of primaries NSTAT      : 7" in logs["task-1/stdout"]


def test_a_task_whose_outputs_cannot_be_read_fails_with_the_reason(
    alice: httpx.Client,
) -> None:
    job_id = _submit(alice, "emptyout", 3)
    final = _poll(alice, job_id)[-1]
    states = [t["task_state"] for t in final["job_tasks_status"]]
    assert states == ["COMPLETED", "FAILED", "COMPLETED"]
    assert final["job_state"] == "COMPLETED"
    assert "1 of 3 tasks failed" in final["message"]
    summary = alice.get("/logfiles", params={"job_id": job_id}).json()["logfiles"]
    assert (
        "task 2: FAILED (cannot read fluence_0002.bdo: the file is empty"
        in (summary["job/summary.txt"])
    )
    merged = alice.get("/results", params={"job_id": job_id}).json()["estimators"]
    assert {e["metadata"]["file_counter"] for e in merged} == {"2"}


def test_a_service_without_its_executable_is_unavailable_and_refused(
    server: LiveServer, alice: httpx.Client
) -> None:
    listed = httpx.get(f"{server.base_url}/api/services").json()["services"]
    services = {s["name"]: s for s in listed}
    assert services["unconfigured"]["available"] is False
    assert "executable is not configured" in services["unconfigured"]["reason"]
    status = httpx.get(f"{server.base_url}/api/system/status").json()
    named = {s["name"]: s for s in status["services"]}
    assert "executable is not configured" in named["unconfigured"]["reason"]
    assert services["shieldhit"]["available"] is True
    answer = alice.post("/jobs/direct", json=_files_body("unconfigured", 1))
    assert answer.status_code == 400
    assert "executable is not configured" in answer.json()["message"]
