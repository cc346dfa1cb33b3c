"""Idempotency keys at intake: a key answers its first submission again for a day, per owner;
another request under it is refused; concurrent submissions with one key store one job."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from cyclotron.domain.records import JobRecord
from cyclotron.errors import IdempotencyKeyReused
from cyclotron.services.core import Core
from cyclotron.services.intake import pipeline
from cyclotron.services.intake.request import (
    Answer,
    FilesInput,
    IdempotencyKey,
    IntakeRequest,
    StagedInput,
)
from cyclotron.storage.tables import IdempotencyKeyRow, JobRow, utcnow


def stored_jobs(core: Core) -> int:
    with core.db.transaction(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(JobRow)) or 0)


def request(key: str = "k-1", digest: str = "d-1", owner: int = 7) -> IntakeRequest:
    return IntakeRequest(
        owner_id=owner,
        service="example",
        input=FilesInput({"run.sh": b"echo hi > out.txt\n"}),
        idempotency=IdempotencyKey(key, digest),
    )


def shape(job: JobRecord, reused: bool) -> Answer:
    return Answer(201, {"id": job.id, "number": job.number})


def test_the_same_key_and_request_answer_the_first_submission(core: Core) -> None:
    first = pipeline.submit(core, request(), shape)
    again = pipeline.submit(core, request(), shape)
    assert (first.replayed, again.replayed) == (False, True)
    assert again.job.id == first.job.id and again.answer == first.answer
    assert first.answer == Answer(201, {"id": first.job.id, "number": first.job.number})
    assert stored_jobs(core) == 1


def test_a_staged_upload_answered_again_leaves_nothing_staged(core: Core) -> None:
    pipeline.submit(core, request(), shape)
    staging = core.files.new_staging_area()
    (staging / "input").mkdir()
    (staging / "input" / "run.sh").write_bytes(b"true\n")
    uploaded = IntakeRequest(
        owner_id=7,
        service="example",
        input=StagedInput(staging),
        check_now=False,
        idempotency=IdempotencyKey("k-1", "d-1"),
    )
    assert pipeline.submit(core, uploaded, shape).replayed
    assert list(core.files.staging_dir.iterdir()) == []


def test_another_request_under_a_key_is_refused_and_stores_nothing(core: Core) -> None:
    pipeline.submit(core, request(), shape)
    with pytest.raises(IdempotencyKeyReused):
        pipeline.submit(core, request(digest="d-2"), shape)
    assert stored_jobs(core) == 1


def test_keys_are_per_owner_and_last_a_day(core: Core) -> None:
    first = pipeline.submit(core, request(), shape)
    other_owner = pipeline.submit(core, request(owner=8), shape)
    assert not other_owner.replayed and other_owner.job.id != first.job.id
    with core.db.transaction() as session:
        session.execute(update(IdempotencyKeyRow).values(created_at=utcnow() - timedelta(hours=25)))
    later = pipeline.submit(core, request(digest="d-2"), shape)
    assert not later.replayed and later.job.id != first.job.id
    assert stored_jobs(core) == 3


def test_concurrent_submissions_with_one_key_store_one_job(core: Core) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: pipeline.submit(core, request(), shape), range(12)))
    assert len({a.job.id for a in answers}) == 1
    assert len({str(a.answer) for a in answers}) == 1
    assert sum(not a.replayed for a in answers) == 1
    assert stored_jobs(core) == 1
    # The losers' staged directories went with their transactions.
    assert list(core.files.staging_dir.iterdir()) == []
    assert [p.name for p in core.files.jobs_dir.iterdir()] == [answers[0].job.id]
