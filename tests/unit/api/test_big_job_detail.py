"""A job of many tasks, its detail asked again as its tasks change: each answer is the one a
first look at the job gives, the changed tasks shown as they now are."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from support.inprocess import app_client

from cyclotron.domain.states import JobStage, JobState, TaskState
from cyclotron.services.core import Core
from cyclotron.storage.tables import TaskRow, utcnow

AddJob = Callable[..., str]  # the ``add_job`` fixture of tests/unit/conftest.py
NTASKS = 150  # enough for the detail to keep its tasks between answers


def test_each_detail_shows_the_tasks_as_they_are(core: Core, add_job: AddJob) -> None:
    job_id = add_job(state=JobState.RUNNING, stage=JobStage.RUNNING, ntasks=NTASKS)
    now = utcnow()

    def write(index: int, **values: Any) -> None:
        with core.db.transaction() as session:
            session.execute(
                update(TaskRow)
                .where(TaskRow.job_id == job_id, TaskRow.index == index)
                .values(**values)
            )

    for index in range(NTASKS):
        state = TaskState.COMPLETED if index < 50 else TaskState.RUNNING
        write(
            index,
            state=state.value,
            requested_primaries=1000,
            progress_done=1000.0 if index < 50 else float(index),
            progress_total=1000.0,
            started_at=now,
            ended_at=now if index < 50 else None,
            last_update_at=now,
        )
    changes: list[tuple[int, dict[str, Any]]] = [
        (60, {"progress_done": 512.5}),
        (61, {"progress_done": 1 / 3, "stage": "diffusion"}),
        (62, {"state": TaskState.COMPLETED.value, "exit_code": 0, "ended_at": now}),
        (63, {"state": TaskState.FAILED.value, "exit_code": 2, "error": 'it broke: "x"'}),
        (64, {"estimated_seconds": 30, "attempt": 2}),
        (0, {"progress_done": 1008.0}),  # a completed task counted past its share
    ]
    with app_client(core) as client:
        path = f"/api/jobs/{job_id}"
        assert client.get(path).status_code == 200
        for step, (index, values) in enumerate(changes, start=1):
            write(index, last_update_at=now + timedelta(seconds=step), **values)
            answer = client.get(path)
            with app_client(core) as first_look:
                assert answer.content == first_look.get(path).content
            task = answer.json()["tasks"][index]
            if "progress_done" in values and index != 0:
                assert task["simulated_primaries"] == values["progress_done"]
        detail = answer.json()
    tasks = detail["tasks"]
    assert (tasks[62]["state"], tasks[63]["state"], tasks[63]["error"]) == (
        "completed",
        "failed",
        'it broke: "x"',
    )
    assert (tasks[64]["eta_seconds"], tasks[64]["attempt"]) == (30.0, 2)
    assert detail["stage"] == "diffusion"
    assert detail["tasks_done"] == 51 and detail["tasks_failed"] == 1
