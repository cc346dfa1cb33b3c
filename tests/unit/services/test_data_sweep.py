"""The data folder after a crash: what a dead process left in staging is moved into place (a
job whose row was committed) or removed; a live process's staging is left alone; a job
directory without its row is set aside, never served nor removed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from cyclotron.services.core import Core
from cyclotron.services.scheduling.retention import sweep_data_dir
from cyclotron.storage.jobfiles import STAGED_JOB

AddJob = Callable[..., str]


def staged(core: Core, owner: str, name: str, files: dict[str, bytes]) -> Path:
    area = core.files.staging_dir / f"{owner}.{name}"
    for relative, data in files.items():
        (area / relative).parent.mkdir(parents=True, exist_ok=True)
        (area / relative).write_bytes(data)
    return area


def test_a_dead_process_leftovers_are_placed_or_removed(
    dead_owner: str, core: Core, add_job: AddJob, live_owner: str
) -> None:
    committed = add_job()
    staged(core, dead_owner, STAGED_JOB + committed, {"input/run.sh": b"true\n"})
    staged(core, dead_owner, STAGED_JOB + "f" * 32, {"input/run.sh": b"never stored\n"})
    staged(core, dead_owner, "0" * 32, {"input/half.dat": b"half an upload"})
    elsewhere = staged(core, live_owner, "1" * 32, {"input/run.sh": b"arriving\n"})
    mine = core.files.new_staging_area()

    sweep_data_dir(core)

    assert (core.files.input_dir(committed) / "run.sh").read_bytes() == b"true\n"
    assert sorted(core.files.staging_dir.iterdir()) == sorted([elsewhere, mine])
    assert [p.name for p in core.files.jobs_dir.iterdir()] == [committed]


def test_a_job_directory_without_its_row_is_set_aside_and_logged(
    core: Core, add_job: AddJob, caplog: pytest.LogCaptureFixture
) -> None:
    kept = add_job()
    (core.files.job_dir(kept) / "input").mkdir(parents=True)
    unknown = "e" * 32
    orphan = core.files.job_dir(unknown)
    (orphan / "results").mkdir(parents=True)
    (orphan / "results" / "dose.txt").write_text("1.0\n")

    with caplog.at_level(logging.WARNING):
        sweep_data_dir(core)

    assert [p.name for p in core.files.jobs_dir.iterdir()] == [kept]
    assert (core.files.unreferenced_dir / unknown / "results" / "dose.txt").read_text() == "1.0\n"
    assert f"job directory {unknown} has no job in the database" in caplog.text
