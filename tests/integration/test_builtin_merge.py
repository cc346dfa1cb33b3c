"""Four ``builtin`` tasks merged equal one run of all their primaries, within statistics.

ex1's project runs as the engine's tasks run it (voxelise, transport, score all outputs), four
times with seeds 1–4 and a quarter of the primaries each, then once with seed 99 and all of
them. The four are merged by the job's own merge (results.md §6); each depth-dose bin of the
merge must agree with the single run within the merge's standard error.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.yaptide import FIXTURES, FIXTURES_ABSENT

from cyclotron.estimators.model import find_estimator
from cyclotron.estimators.store import merge_task_files, write_task_estimators
from cyclotron.simulators.builtin import task
from cyclotron.simulators.editor.model import parse_project
from cyclotron.simulators.editor.task import ProgressPrinter, TaskSpec

PRIMARIES = 20_000


def _run(workdir: Path, primaries: int, seed: int) -> list[dict[str, Any]]:
    document = json.loads((FIXTURES / "ex1.json").read_text())
    project = parse_project(document["input"]["inputJson"])
    spec = TaskSpec(workdir, project, primaries, seed, voxel_cm=None, threads=1)
    with contextlib.redirect_stdout(io.StringIO()):
        return task.run(spec, ProgressPrinter(primaries))


def _depth_dose(estimators: list[dict[str, Any]]) -> dict[str, Any]:
    estimator = find_estimator(estimators, "z_profile")
    assert estimator is not None
    page: dict[str, Any] = estimator["pages"][0]
    assert page["data"]["name"] == "DOSE"
    return {**page, "estimator": estimator["metadata"]}


def test_four_merged_tasks_agree_with_one_run_of_all_their_primaries(tmp_path: Path) -> None:
    if not FIXTURES.is_dir():
        pytest.skip(FIXTURES_ABSENT)
    for index in range(4):
        write_task_estimators(
            tmp_path / "tasks" / str(index), _run(tmp_path, PRIMARIES // 4, index + 1)
        )
    merged = _depth_dose(merge_task_files(tmp_path, [0, 1, 2, 3]))
    single = _depth_dose(_run(tmp_path, PRIMARIES, 99))

    assert merged["estimator"]["number_of_primaries"] == str(PRIMARIES)
    assert merged["estimator"]["file_counter"] == "4"
    a = np.asarray(merged["data"]["values"])
    b = np.asarray(single["data"]["values"])
    error = np.asarray(merged["error"]["values"])
    dosed = (a > 0) & (b > 0)
    assert dosed.sum() > 300  # the beam's whole range, 0.5 mm bins
    # The single run has the merge's variance too (same primaries): compare by √2 σ. With σ
    # estimated from four tasks the pulls follow Student's t with 3 degrees of freedom, whose
    # median |t| is 0.765 (0.674 for a normal).
    pulls = (a[dosed] - b[dosed]) / (np.sqrt(2.0) * error[dosed])
    assert abs(float(np.mean(pulls))) < 0.25
    assert 0.5 < float(np.median(np.abs(pulls))) < 1.05
    # The integral dose (energy per primary along the axis) agrees to well under a percent.
    assert a.sum() == pytest.approx(b.sum(), rel=0.005)
