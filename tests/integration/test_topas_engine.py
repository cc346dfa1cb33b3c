"""The ``topas`` plug-in end to end, with a test double of the TOPAS executable.

The double (``tests/support/topas_binary_double.py``) replays the real TOPAS 3.9 transcript and
CSV outputs of ``fixtures/shieldhit/topas/topas_minimal``; everything else is real: the histories
split and seeds in the parameter file, progress from TOPAS's history lines, pymchelper's TOPAS
reader, the merge and the YAPTIDE face. Editor projects are not run here: the converter's
scorers write CSVs no fixture holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.doubles import DOUBLE_READS
from support.yaptide import TESTS_DIR, login, run_to_end, saw_progress, yaptide_server

RUN = TESTS_DIR.parent.parent / "shared" / "fixtures" / "shieldhit" / "topas" / "topas_minimal"
DOUBLE = TESTS_DIR / "support" / "topas_binary_double.py"
HISTORIES = 20


@pytest.fixture(scope="module")
def alice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    if not RUN.is_dir():
        pytest.skip(f"the shared TOPAS fixtures are absent ({RUN})")
    config = {
        "services": {
            "topas": {
                "plugin": "topas",
                "executable": str(DOUBLE),
                "read_only_paths": DOUBLE_READS,
            },
            "topas_unconfigured": {"plugin": "topas"},
        }
    }
    tmp = tmp_path_factory.mktemp("topas-engine")
    with yaptide_server("sqlite", tmp, config, {"TOPAS_DOUBLE_SECONDS": "2.5"}) as live:
        client = login(live, "alice")
        yield client
        client.close()


def _body(sim_type: str, **files: str) -> dict[str, Any]:
    parameters = (RUN / "minimal.txt").read_bytes().decode()
    return {
        "sim_type": sim_type,
        "ntasks": 3,
        "input_type": "files",
        "input_files": {"minimal.txt": parameters, **files},
        "title": "topas minimal",
    }


def test_three_tasks_show_progress_and_end_with_merged_results(alice: httpx.Client) -> None:
    job_id, seen = run_to_end(alice, _body("topas"))
    final = seen[-1]
    assert final["job_state"] == "COMPLETED", final
    assert [t["requested_primaries"] for t in final["job_tasks_status"]] == [7, 7, 6]
    assert saw_progress(seen), "no poll saw a task part-way through"

    results = alice.get("/results", params={"job_id": job_id})
    assert results.status_code == 200, results.text
    merged = {e["name"]: e for e in results.json()["estimators"]}
    assert set(merged) == {"fluence_bp_protons_xy", "fluence_bp_protons_xy2"}
    for estimator in merged.values():
        # Weights come from each task's parameter file: 7 + 7 + 6 histories.
        assert estimator["metadata"]["number_of_primaries"] == str(HISTORIES)
        assert estimator["metadata"]["file_counter"] == "3"
        (page,) = estimator["pages"]
        assert page["data"]["unit"] == "/mm2"
        assert page["dimensions"] == 2 and len(page["data"]["values"]) == 16
        assert len(page["error"]["values"]) == 16
    # The real run's first bin is 0.001778 /mm2; 5 % noise per task leaves it within 15 %.
    first = merged["fluence_bp_protons_xy"]["pages"][0]["data"]["values"][0]
    assert first == pytest.approx(0.0017777778, rel=0.15)

    logs = alice.get("/logfiles", params={"job_id": job_id}).json()["logfiles"]
    assert "Particle source Demo: Total number of histories: 7" in logs["task-1/stdout"]


def test_input_without_histories_is_refused_with_the_reason(alice: httpx.Client) -> None:
    body = _body("topas")
    body["input_files"]["minimal.txt"] = body["input_files"]["minimal.txt"].replace(
        "NumberOfHistoriesInRun", "NumberOfHistories"
    )
    answer = alice.post("/jobs/direct", json=body)
    assert answer.status_code == 400
    assert "NumberOfHistoriesInRun" in answer.json()["message"]


def test_a_service_without_its_executable_refuses_jobs(alice: httpx.Client) -> None:
    answer = alice.post("/jobs/direct", json=_body("topas_unconfigured"))
    assert answer.status_code == 400
    assert "TOPAS executable is not configured" in answer.json()["message"]
