"""The shared progress feed of a job (spec/native.md §11): every watcher gets a snapshot, then
every later event in order and the terminal one; a watcher that overflows its bounded queue
is fed from the stored log and still misses nothing; a deleted job ends the watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from types import SimpleNamespace
from typing import Any

import pytest

from cyclotron.api.native import feeds
from cyclotron.api.native.feeds import Delivery
from cyclotron.api.native.progress import live_messages
from cyclotron.domain.states import JobState
from cyclotron.services.core import Core
from cyclotron.storage import jobs as repo
from cyclotron.storage.events import append_event
from cyclotron.storage.transitions import end_job

AddJob = Callable[..., str]  # the ``add_job`` fixture of tests/unit/conftest.py
PING_EVERY = 30.0
STEP_TIMEOUT = 30.0


def progress(core: Core, job_id: str, done: int) -> None:
    with core.db.transaction() as session:
        append_event(session, job_id, "progress", {"done": done, "total": 10}, task_index=0)


def complete(core: Core, job_id: str) -> None:
    with core.db.transaction() as session:
        end_job(session, job_id, JobState.COMPLETED)


async def collect(stream: AsyncGenerator[Delivery | None, None]) -> list[dict[str, Any]]:
    messages = []
    async with asyncio.timeout(STEP_TIMEOUT):
        async for delivery in stream:
            if delivery is not None:
                messages.append(delivery.message)
    return messages


async def started(stream: AsyncGenerator[Delivery | None, None]) -> dict[str, Any]:
    """The stream's first message (its snapshot)."""
    first = await asyncio.wait_for(anext(stream), STEP_TIMEOUT)
    assert first is not None
    return first.message


def test_every_watcher_gets_every_event_in_order(core: Core, add_job: AddJob) -> None:
    job_id = add_job(state=JobState.RUNNING)

    async def scenario() -> list[list[dict[str, Any]]]:
        state = SimpleNamespace()
        streams = [live_messages(state, core, job_id, PING_EVERY) for _ in range(20)]
        snapshots = [await started(s) for s in streams]
        assert {s["type"] for s in snapshots} == {"snapshot"}
        readers = [asyncio.create_task(collect(s)) for s in streams]
        for done in range(1, 11):
            await asyncio.to_thread(progress, core, job_id, done)
        await asyncio.to_thread(complete, core, job_id)
        return [[snapshots[i], *await reader] for i, reader in enumerate(readers)]

    received = asyncio.run(scenario())
    first = received[0]
    assert [m["type"] for m in first] == ["snapshot"] + ["progress"] * 10 + ["completed"]
    seqs = [m["seq"] for m in first]
    assert seqs == list(range(seqs[0], seqs[0] + 12))
    assert [m["task_percent"] for m in first[1:-1]] == [10.0 * n for n in range(1, 11)]
    assert all(messages == first for messages in received)


def test_an_overflowing_watcher_is_fed_from_the_log(
    core: Core, add_job: AddJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feeds, "QUEUE_SIZE", 2)
    job_id = add_job(state=JobState.RUNNING)

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        state = SimpleNamespace()
        keeping_up = live_messages(state, core, job_id, PING_EVERY)
        slow = live_messages(state, core, job_id, PING_EVERY)
        fast_snapshot, slow_snapshot = await started(keeping_up), await started(slow)
        reader = asyncio.create_task(collect(keeping_up))
        for done in range(1, 11):
            await asyncio.to_thread(progress, core, job_id, done)
            await asyncio.sleep(0.05)  # the feed reads each one before the next
        await asyncio.to_thread(complete, core, job_id)
        fast = [fast_snapshot, *await reader]
        return fast, [slow_snapshot, *await collect(slow)]

    fast, slow = asyncio.run(scenario())
    assert slow == fast
    assert [m["type"] for m in slow] == ["snapshot"] + ["progress"] * 10 + ["completed"]


def test_a_job_deleted_while_watched_ends_the_watch(core: Core, add_job: AddJob) -> None:
    job_id = add_job(state=JobState.RUNNING)

    def delete() -> None:
        with core.db.transaction() as session:
            repo.delete_job(session, job_id)

    async def scenario() -> None:
        stream = live_messages(SimpleNamespace(), core, job_id, PING_EVERY)
        await started(stream)
        await asyncio.to_thread(delete)
        with pytest.raises(LookupError):  # the feed's next look at the log finds no job
            await collect(stream)

    asyncio.run(scenario())


def test_an_ended_job_gives_its_terminal_message_only(core: Core, add_job: AddJob) -> None:
    job_id = add_job(state=JobState.RUNNING)
    progress(core, job_id, 4)
    complete(core, job_id)

    async def scenario() -> list[dict[str, Any]]:
        return await collect(live_messages(SimpleNamespace(), core, job_id, PING_EVERY))

    messages = asyncio.run(scenario())
    assert [m["type"] for m in messages] == ["completed"]
