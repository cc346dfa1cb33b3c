"""A test double of a plug-in that merges, whose merge waits on a gate.

``GatedMergeScript`` is the ``script`` plug-in (``bash run.sh`` in each task's directory) with a
merge: so that a test can hold a job in MERGING_RUNNING for as long as it needs (and, with
``[dispatch] max_merges = 1``, the next job in MERGING_QUEUED), kill the server there and see
what happens next, without a sleep deciding anything.

Service option ``gates`` (a folder): a merge appends its job's id to ``<gates>/merges`` when it
starts, waits until ``<gates>/merge`` exists, then writes ``results/merged.txt``, the completed
tasks' ``out.txt`` in task order, atomically (a temporary file, then a rename), as a real
plug-in's merge does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from cyclotron.simulators.script import ScriptSimulator

MERGED = "merged.txt"


class GatedMergeScript(ScriptSimulator):
    """Runs ``run.sh`` per task; the merge, held by a gate, concatenates their ``out.txt``."""

    name: ClassVar[str] = "gated-merge-script"
    description: ClassVar[str] = "Test double: run.sh per task, a merge that waits on a gate"
    merges_results: ClassVar[bool] = True

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.gates = Path(str(self.options["gates"]))

    def result_dir(self, job_dir: Path, ntasks: int) -> Path:
        return job_dir / "results"

    def merge(self, job_dir: Path, completed: list[int]) -> None:
        with (self.gates / "merges").open("a") as log:
            log.write(f"{job_dir.name}\n")
        while not (self.gates / "merge").exists():
            time.sleep(0.02)
        tasks = job_dir / "tasks"
        merged = b"".join((tasks / str(i) / "out.txt").read_bytes() for i in sorted(completed))
        target = job_dir / "results" / MERGED
        temporary = target.with_name(f".{MERGED}.{os.getpid()}.tmp")
        temporary.write_bytes(merged)
        os.replace(temporary, target)
