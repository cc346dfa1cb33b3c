"""The ``geant4`` plug-in end to end, with a test double of the site's Geant4 application.

The double (``tests/support/geant4_binary_double.py``) replays the estimators a real Geant4 run
of ``fixtures/yaptide/ex8.json`` produced, as the files ``/score/dumpQuantityToFile`` writes;
everything else is real: the converter (editor mode), the beamOn split and seeds, progress from
the event lines, the reader of the dumped files, the merge and the YAPTIDE face.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from support.doubles import DOUBLE_READS
from support.yaptide import FIXTURES, TESTS_DIR, login, run_to_end, saw_progress, yaptide_server

EX8 = FIXTURES / "ex8.json"
DOUBLE = TESTS_DIR / "support" / "geant4_binary_double.py"
EVENTS = 20000


@pytest.fixture(scope="module")
def ex8() -> dict[str, Any]:
    if not EX8.is_file():
        pytest.skip(f"the shared YAPTIDE fixtures are absent ({EX8})")
    document: dict[str, Any] = json.loads(EX8.read_text())
    return document


@pytest.fixture(scope="module")
def alice(ex8: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    config = {
        "services": {
            "geant4": {
                "plugin": "geant4",
                "executable": str(DOUBLE),
                "read_only_paths": DOUBLE_READS,
            }
        }
    }
    tmp = tmp_path_factory.mktemp("geant4-engine")
    with yaptide_server("sqlite", tmp, config, {"GEANT4_DOUBLE_SECONDS": "2.5"}) as live:
        client = login(live, "alice")
        yield client
        client.close()


@pytest.mark.parametrize("mode", ["files", "editor"])
def test_three_tasks_show_progress_and_merge_to_the_real_run(
    alice: httpx.Client, ex8: dict[str, Any], mode: str
) -> None:
    if mode == "files":
        body = {"input_type": "files", "input_files": ex8["input"]["inputFiles"]}
    else:
        body = {"input_type": "editor", "input_json": ex8["input"]["inputJson"]}
    job_id, seen = run_to_end(alice, {"sim_type": "geant4", "ntasks": 3, "title": "ex8", **body})
    final = seen[-1]
    assert final["job_state"] == "COMPLETED", final
    tasks = final["job_tasks_status"]
    assert [t["requested_primaries"] for t in tasks] == [6667, 6667, 6666]
    # Progress parsed from the "--> Event <n> starts" lines was visible while the tasks ran.
    assert saw_progress(seen), "no poll saw a task part-way through"

    results = alice.get("/results", params={"job_id": job_id})
    assert results.status_code == 200, results.text
    merged = {e["name"]: e for e in results.json()["estimators"]}
    reference = {e["name"]: e for e in ex8["estimators"]}
    assert list(merged) == ["CylZ_Mesh", "YZ_Mesh", "XY_Mesh"]
    for name, estimator in merged.items():
        assert estimator["metadata"]["number_of_primaries"] == str(EVENTS)
        assert estimator["metadata"]["file_counter"] == "3"
        for page, truth in zip(estimator["pages"], reference[name]["pages"], strict=True):
            assert page["data"]["name"] == truth["data"]["name"]
            assert page["data"]["unit"] == truth["data"]["unit"]
            values = np.array(page["data"]["values"], dtype=float)
            expected = np.array(truth["data"]["values"], dtype=float)
            assert values.shape == expected.shape
            # 2 % noise per bin and task: the merged sum is the real run's within 1 %.
            assert values.sum() == pytest.approx(expected.sum(), rel=0.01)
            assert "error" in page
