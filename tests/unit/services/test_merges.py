"""Merges under a lease: a merge whose process died, or whose lease ran out, is queued again
and run again from an empty results directory, or fails with a reason after its attempts; a
merge still held, or one a worker reports, is left alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update

from cyclotron.domain.states import JobStage, JobState, TaskState
from cyclotron.services.core import Core
from cyclotron.services.running.merges import merge_job, recover_lost_merges
from cyclotron.storage import jobs as repo
from cyclotron.storage.tables import JobRow, TaskRow, utcnow

AddJob = Callable[..., str]  # the ``add_job`` fixture of tests/unit/conftest.py
SOON = timedelta(minutes=5)


def merging(core: Core, add_job: AddJob, owner: str | None, until: datetime, attempts: int) -> str:
    """A job of the ``example`` service whose task completed and whose merge ``owner`` holds."""
    job_id = add_job(state=JobState.MERGING_RUNNING, stage=JobStage.MERGING)
    with core.db.transaction() as session:
        session.execute(update(TaskRow).values(state=TaskState.COMPLETED.value))
        session.execute(
            update(JobRow)
            .where(JobRow.id == job_id)
            .values(merge_owner=owner, merge_expires_at=until, merge_attempts=attempts)
        )
    core.files.results_dir(job_id).mkdir(parents=True)
    return job_id


def job(core: Core, job_id: str) -> dict[str, Any]:
    with core.db.transaction(write=False) as session:
        row = repo.find_job(session, job_id)
        assert row is not None
        return {
            "state": row.state,
            "stage": row.stage,
            "owner": row.merge_owner,
            "attempts": row.merge_attempts,
            "error": row.error,
            "error_kind": row.error_kind,
        }


def test_a_merge_whose_process_died_runs_again_from_empty_results(
    dead_owner: str, core: Core, add_job: AddJob
) -> None:
    job_id = merging(core, add_job, dead_owner, utcnow() + SOON, attempts=1)
    (core.files.results_dir(job_id) / "half-written.txt").write_text("cut short")

    recover_lost_merges(core)
    assert job(core, job_id)["state"] == JobState.MERGING_QUEUED.value
    assert job(core, job_id)["stage"] == JobStage.MERGING_QUEUED.value
    merge_job(core, job_id)

    assert job(core, job_id) == {
        "state": JobState.COMPLETED.value,
        "stage": JobStage.DONE.value,
        "owner": None,
        "attempts": 2,
        "error": None,
        "error_kind": None,
    }
    assert list(core.files.results_dir(job_id).iterdir()) == []


def test_a_merge_lost_on_its_last_attempt_fails_with_a_reason(
    dead_owner: str, core: Core, add_job: AddJob
) -> None:
    job_id = merging(core, add_job, dead_owner, utcnow() + SOON, attempts=3)
    recover_lost_merges(core)
    ended = job(core, job_id)
    assert (ended["state"], ended["error_kind"]) == (JobState.FAILED.value, "lost")
    assert ended["error"] == (
        "lost: the merge stopped reporting (server restart or crash) on attempt 3 of 3"
    )


def test_only_merges_that_stopped_reporting_are_taken_over(
    core: Core, add_job: AddJob, live_owner: str
) -> None:
    held = merging(core, add_job, live_owner, utcnow() + SOON, attempts=1)
    elsewhere_alive = merging(core, add_job, "other-host:12:34", utcnow() + SOON, attempts=1)
    elsewhere_expired = merging(core, add_job, "other-host:12:34", utcnow() - SOON, attempts=1)
    reported = merging(core, add_job, None, utcnow() - SOON, attempts=0)  # a worker's merge

    recover_lost_merges(core)

    states = {j: job(core, j)["state"] for j in (held, elsewhere_alive, elsewhere_expired)}
    assert states == {
        held: JobState.MERGING_RUNNING.value,
        elsewhere_alive: JobState.MERGING_RUNNING.value,
        elsewhere_expired: JobState.MERGING_QUEUED.value,
    }
    assert job(core, reported)["state"] == JobState.MERGING_RUNNING.value
