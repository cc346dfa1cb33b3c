"""Progress messages built from the event log as it was at each event (spec/native.md §11): the
same message for a live subscriber, a replay from the start and a resumed stream."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from cyclotron.api.native.messages import ProgressView, snapshot, terminal_message
from cyclotron.domain.records import JobRecord, TaskRecord
from cyclotron.domain.states import JobStage, JobState, TaskState
from cyclotron.services.jobs.progress import EventRecord

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def event(seq: int, kind: str, task: int | None = None, **data: Any) -> EventRecord:
    return EventRecord(seq, kind, task, data, NOW)


LOG = [
    event(1, "submitted", service="sim", ntasks=2),
    event(2, "stage", stage="preparing"),
    event(3, "state", state="RUNNING", stage="running"),
    event(4, "task_state", 0, state="RUNNING"),
    event(5, "task_state", 1, state="RUNNING"),
    event(6, "progress", 0, done=50.0, total=100.0),
    event(7, "progress", 1, done=100.0, total=100.0),
    event(8, "task_state", 1, state="COMPLETED"),
    event(9, "task_state", 0, state="PENDING"),  # its lease expired: retried
    event(10, "task_state", 0, state="RUNNING"),
    event(11, "progress", 0, done=20.0, total=100.0),
    event(12, "task_state", 0, state="COMPLETED"),
    event(13, "state", state="MERGING_QUEUED", stage="merging_queued"),
    event(14, "state", state="COMPLETED", stage="done"),
]


def task(index: int, state: TaskState, done: float, total: float) -> TaskRecord:
    return TaskRecord(
        job_id="j" * 32,
        index=index,
        state=state,
        attempt=1,
        seed=index + 1,
        progress_done=done,
        progress_total=total,
        exit_code=None,
        error=None,
        started_at=NOW,
        ended_at=None,
    )


def job(state: JobState, stage: JobStage, seq: int, tasks: tuple[TaskRecord, ...]) -> JobRecord:
    return JobRecord(
        id="j" * 32,
        number=1,
        owner_id=0,
        service="sim",
        name="job",
        state=state,
        stage=stage,
        priority=0,
        ntasks=2,
        error=None,
        error_kind=None,
        created_at=NOW,
        updated_at=NOW,
        admitted_at=NOW,
        started_at=NOW,
        ended_at=None,
        cleaned_at=None,
        last_event_seq=seq,
        tasks=tasks,
    )


ENDED = job(
    JobState.COMPLETED,
    JobStage.DONE,
    14,
    (task(0, TaskState.COMPLETED, 100, 100), task(1, TaskState.COMPLETED, 100, 100)),
)


def replayed(view: ProgressView, log: list[EventRecord]) -> dict[int, dict[str, Any]]:
    return {e.seq: m for e in log if (m := view.message(e)) is not None}


def test_replay_of_an_ended_job_shows_each_moment_not_the_end() -> None:
    messages = replayed(ProgressView.before_any_event(ENDED), LOG)
    assert messages[1]["type"] == "stage_change" and messages[1]["stage"] == "queued"
    first = messages[6]
    assert first["type"] == "progress" and first["stage"] == "running"
    assert first["percent"] == first["percent_complete"] == 25.0  # 50 of 200, not 100
    assert messages[7]["percent"] == 75.0
    assert messages[11]["percent"] == 60.0  # the retried task starts again from 0
    assert messages[13]["stage"] == "merging_queued" and messages[13]["percent"] == 99.0
    assert messages[14] == {
        "type": "completed",
        "seq": 14,
        "percent": 100.0,
        "percent_complete": 100.0,
    }
    assert sorted(messages) == list(range(1, 15))  # every one of these events is shown


def test_a_subscriber_from_a_snapshot_gets_the_replayed_messages() -> None:
    """The job as the database had it at seq 5 (what a snapshot is built from)."""
    at_five = job(
        JobState.RUNNING,
        JobStage.RUNNING,
        5,
        (task(0, TaskState.RUNNING, 0, 0), task(1, TaskState.RUNNING, 0, 0)),
    )
    live = replayed(ProgressView(at_five), LOG[5:])
    everything = replayed(ProgressView.before_any_event(ENDED), LOG)
    assert live == {seq: m for seq, m in everything.items() if seq > 5}


def test_terminal_message_of_a_failed_job_keeps_its_percent_then() -> None:
    failed = dataclasses.replace(ENDED, state=JobState.FAILED, error="task 0 failed")
    log = [*LOG[:7], event(8, "state", state="FAILED", stage="done", reason="task 0 failed")]
    final = terminal_message(failed, log)
    assert final is not None
    assert final["type"] == "failed" and final["seq"] == 8 and final["error"] == "task 0 failed"
    assert final["percent"] == 75.0
    assert terminal_message(failed, LOG[:7]) is None


def test_values_this_version_does_not_know_are_kept_out() -> None:
    view = ProgressView.before_any_event(ENDED)
    view.message(event(1, "stage", stage="some_future_stage"))
    unknown = view.message(event(2, "task_state", 7, state="RUNNING"))  # no task 7
    assert view.job.stage == JobStage.QUEUED and unknown is not None
    assert unknown["type"] == "task_state" and unknown["task_index"] == 7


def test_a_running_job_shows_the_stage_its_tasks_last_reported() -> None:
    """AlphaFold 3 tasks report their stages; the job's stage is the latest one running."""
    view = ProgressView.before_any_event(ENDED)
    log = [
        *LOG[:5],
        event(6, "progress", 0, done=5.0, total=100.0, stage="data_pipeline"),
        event(7, "progress", 1, done=40.0, total=100.0, stage="recycling"),
    ]
    messages = replayed(view, log)
    assert messages[6]["stage"] == "data_pipeline" and messages[7]["stage"] == "recycling"
    assert snapshot(view.job)["stage"] == "recycling"
    view.message(event(8, "task_state", 1, state="PENDING"))  # retried: its stage is gone
    assert snapshot(view.job)["stage"] == "data_pipeline"
    view.message(event(9, "progress", 1, done=1.0, total=100.0))  # a report without a stage
    assert snapshot(view.job)["stage"] == "data_pipeline"
    view.message(event(10, "state", state="MERGING_QUEUED", stage="merging_queued"))
    assert snapshot(view.job)["stage"] == "merging_queued"


def test_a_job_whose_tasks_report_no_stage_shows_its_own() -> None:
    view = ProgressView.before_any_event(ENDED)
    replayed(view, LOG[:7])
    assert snapshot(view.job)["stage"] == "running"
