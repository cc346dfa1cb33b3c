"""The orchestrator's ten status names, derived from the core state (spec §4)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from cyclotron.api.upload.status import (
    CLEANED_MESSAGE,
    TERMINAL_STATUSES,
    upload_message,
    upload_status,
)
from cyclotron.domain.records import ErrorKind, JobRecord
from cyclotron.domain.states import JOB_TERMINAL, JobStage, JobState

TEN = {
    "Queued",
    "Processing",
    "Submitted",
    "Running",
    "Completed",
    "Failed",
    "Invalid",
    "Killed",
    "Cleaned",
    "Unknown",
}
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
FAILURE_KINDS = [
    ErrorKind.EXIT,
    ErrorKind.TIME_LIMIT,
    ErrorKind.LOST,
    ErrorKind.EXECUTOR,
    ErrorKind.MERGE,
    None,
]


def job(
    state: JobState,
    stage: JobStage = JobStage.QUEUED,
    *,
    error: str | None = None,
    error_kind: str | None = None,
    cleaned: bool = False,
) -> JobRecord:
    # Fields the status does not read are left empty.
    unread = {
        f.name: None for f in dataclasses.fields(JobRecord) if f.default is dataclasses.MISSING
    }
    return JobRecord(
        **{
            **unread,
            "id": "0123456789abcdef0123456789abcdef",
            "number": 17,
            "owner_id": 1,
            "service": "example",
            "name": "upload-17",
            "state": state,
            "stage": stage,
            "priority": 0,
            "ntasks": 1,
            "error": error,
            "error_kind": error_kind,
            "created_at": NOW,
            "ended_at": NOW if state in JOB_TERMINAL else None,
            "cleaned_at": NOW if cleaned else None,
        }
    )


@pytest.mark.parametrize(
    ("state", "stage", "status"),
    [
        (JobState.UNKNOWN, JobStage.QUEUED, "Unknown"),
        (JobState.PENDING, JobStage.QUEUED, "Queued"),
        (JobState.PENDING, JobStage.PREPARING, "Processing"),
        (JobState.PENDING, JobStage.SUBMITTED, "Submitted"),
        (JobState.RUNNING, JobStage.RUNNING, "Running"),
        (JobState.MERGING_QUEUED, JobStage.MERGING_QUEUED, "Running"),
        (JobState.MERGING_RUNNING, JobStage.MERGING, "Running"),
        (JobState.COMPLETED, JobStage.DONE, "Completed"),
        (JobState.CANCELED, JobStage.DONE, "Killed"),
        # a job cancelled while still queued goes straight to Killed
        (JobState.CANCELED, JobStage.QUEUED, "Killed"),
    ],
)
def test_state_and_stage_give_the_status(state: JobState, stage: JobStage, status: str) -> None:
    assert upload_status(job(state, stage)) == status


@pytest.mark.parametrize("kind", FAILURE_KINDS)
def test_failed_for_any_reason_but_validation_is_failed(kind: str | None) -> None:
    assert upload_status(job(JobState.FAILED, JobStage.DONE, error_kind=kind)) == "Failed"


def test_failed_at_validation_is_invalid() -> None:
    record = job(
        JobState.FAILED, JobStage.DONE, error="run.sh is empty", error_kind=ErrorKind.INVALID
    )
    assert upload_status(record) == "Invalid"


@pytest.mark.parametrize("state", sorted(JOB_TERMINAL))
@pytest.mark.parametrize("kind", [*FAILURE_KINDS, ErrorKind.INVALID])
def test_every_terminal_job_whose_files_were_removed_is_cleaned(
    state: JobState, kind: str | None
) -> None:
    record = job(state, JobStage.DONE, error="x", error_kind=kind, cleaned=True)
    assert upload_status(record) == "Cleaned"
    assert upload_message(record) == CLEANED_MESSAGE


@pytest.mark.parametrize(
    ("state", "stage", "status"),
    [
        (JobState.PENDING, JobStage.QUEUED, "Queued"),
        (JobState.PENDING, JobStage.PREPARING, "Processing"),
        (JobState.RUNNING, JobStage.RUNNING, "Running"),
        (JobState.UNKNOWN, JobStage.QUEUED, "Unknown"),
    ],
)
def test_a_job_not_terminal_is_never_shown_cleaned(
    state: JobState, stage: JobStage, status: str
) -> None:
    assert upload_status(job(state, stage, cleaned=True)) == status


def test_every_combination_gives_one_of_the_ten_names() -> None:
    seen = set()
    for state in JobState:
        for stage in JobStage:
            for kind in [*FAILURE_KINDS, ErrorKind.INVALID]:
                for cleaned in (False, True):
                    record = job(state, stage, error_kind=kind, cleaned=cleaned)
                    status = upload_status(record)
                    assert status in TEN
                    assert (status in TERMINAL_STATUSES) == (state in JOB_TERMINAL)
                    seen.add(status)
    assert seen == TEN


def test_terminal_statuses_are_the_five_of_the_spec() -> None:
    assert {"Completed", "Failed", "Invalid", "Killed", "Cleaned"} == TERMINAL_STATUSES


def test_status_moves_forward_along_a_normal_life() -> None:
    order = ["Queued", "Processing", "Submitted", "Running", "Completed", "Cleaned"]
    record = job(JobState.PENDING, JobStage.QUEUED)
    life = [
        record,
        dataclasses.replace(record, stage=JobStage.PREPARING),
        dataclasses.replace(record, stage=JobStage.SUBMITTED),
        dataclasses.replace(record, state=JobState.RUNNING, stage=JobStage.RUNNING),
        dataclasses.replace(record, state=JobState.MERGING_QUEUED, stage=JobStage.MERGING_QUEUED),
        dataclasses.replace(record, state=JobState.MERGING_RUNNING, stage=JobStage.MERGING),
        dataclasses.replace(record, state=JobState.COMPLETED, stage=JobStage.DONE),
        dataclasses.replace(record, state=JobState.COMPLETED, stage=JobStage.DONE, cleaned_at=NOW),
    ]
    positions = [order.index(upload_status(r)) for r in life]
    assert positions == sorted(positions)
    assert [order[p] for p in dict.fromkeys(positions)] == order


# --- messages -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "stage"),
    [
        (JobState.PENDING, JobStage.QUEUED),
        (JobState.PENDING, JobStage.PREPARING),
        (JobState.PENDING, JobStage.SUBMITTED),
        (JobState.RUNNING, JobStage.RUNNING),
        (JobState.MERGING_RUNNING, JobStage.MERGING),
        (JobState.COMPLETED, JobStage.DONE),
        (JobState.UNKNOWN, JobStage.QUEUED),
    ],
)
def test_message_is_empty_unless_the_job_failed_was_killed_or_cleaned(
    state: JobState, stage: JobStage
) -> None:
    assert upload_message(job(state, stage, error="stale reason")) == ""


@pytest.mark.parametrize(
    ("state", "kind"),
    [
        (JobState.FAILED, ErrorKind.EXIT),
        (JobState.FAILED, ErrorKind.INVALID),
        (JobState.CANCELED, None),
    ],
)
def test_message_carries_the_reason(state: JobState, kind: str | None) -> None:
    record = job(state, JobStage.DONE, error="exit status 3: boom", error_kind=kind)
    assert upload_message(record) == "exit status 3: boom"


@pytest.mark.parametrize(
    ("state", "kind", "status"),
    [
        (JobState.FAILED, ErrorKind.EXIT, "Failed"),
        (JobState.FAILED, ErrorKind.INVALID, "Invalid"),
        (JobState.CANCELED, None, "Killed"),
    ],
)
def test_message_without_a_recorded_reason_is_not_empty(
    state: JobState, kind: str | None, status: str
) -> None:
    assert upload_message(job(state, JobStage.DONE, error_kind=kind)) == status
