"""The ``fluka`` plug-in end to end, with a test double of FLUKA's ``rfluka``.

The double (``tests/support/rfluka_binary_double.py``) replays the real FLUKA 4-3.2 run of
``fixtures/shieldhit/fluka/fluka_minimal`` (its console output and USRBIN files) and writes the
progress table of a FLUKA ``.out`` listing; everything else is real: the START and RANDOMIZ
cards, progress read from the ``.out`` file, pymchelper's FLUKA reader, the merge and the
YAPTIDE face.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.doubles import DOUBLE_READS
from support.yaptide import TESTS_DIR, login, run_to_end, saw_progress, yaptide_server

RUN = TESTS_DIR.parent.parent / "shared" / "fixtures" / "shieldhit" / "fluka" / "fluka_minimal"
DOUBLE = TESTS_DIR / "support" / "rfluka_binary_double.py"
PRIMARIES_PER_FILE = 20  # what each replayed USRBIN file records


@pytest.fixture(scope="module")
def alice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    if not RUN.is_dir():
        pytest.skip(f"the shared FLUKA fixtures are absent ({RUN})")
    config = {
        "services": {
            "fluka": {"plugin": "fluka", "executable": str(DOUBLE), "read_only_paths": DOUBLE_READS}
        }
    }
    tmp = tmp_path_factory.mktemp("fluka-engine")
    with yaptide_server("sqlite", tmp, config, {"RFLUKA_DOUBLE_SECONDS": "2.5"}) as live:
        client = login(live, "alice")
        yield client
        client.close()


def _body() -> dict[str, Any]:
    return {
        "sim_type": "fluka",
        "ntasks": 3,
        "input_type": "files",
        "input_files": {"minimal.inp": (RUN / "minimal.inp").read_text()},
        "title": "fluka minimal",
    }


def test_three_tasks_show_progress_and_end_with_merged_results(alice: httpx.Client) -> None:
    job_id, seen = run_to_end(alice, _body())
    final = seen[-1]
    assert final["job_state"] == "COMPLETED", final
    assert [t["requested_primaries"] for t in final["job_tasks_status"]] == [7, 7, 6]
    # Progress comes only from the .out file's table, read while the tasks ran.
    assert saw_progress(seen), "no poll saw a task part-way through"

    results = alice.get("/results", params={"job_id": job_id})
    assert results.status_code == 200, results.text
    merged = {e["name"]: e for e in results.json()["estimators"]}
    assert list(merged) == ["21", "22"]
    for estimator in merged.values():
        # Weights come from the files: the sum of what each task's USRBIN file records.
        assert estimator["metadata"]["number_of_primaries"] == str(3 * PRIMARIES_PER_FILE)
        assert estimator["metadata"]["file_counter"] == "3"
        (page,) = estimator["pages"]
        assert page["dimensions"] == 2 and len(page["data"]["values"]) == 16
        assert any(page["data"]["values"])

    logs = alice.get("/logfiles", params={"job_id": job_id}).json()["logfiles"]
    assert "End of FLUKA run" in logs["task-2/stdout"]
