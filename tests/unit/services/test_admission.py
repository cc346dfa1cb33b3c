"""Fair admission: the limits hold and users take turns (spec/orchestrator.md §5)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from cyclotron.domain.states import JobStage, JobState
from cyclotron.services.core import Core
from cyclotron.services.scheduling.admission import admit_jobs, round_robin_order
from cyclotron.storage import jobs as repo
from cyclotron.storage.events import job_events
from cyclotron.storage.jobs import QueuedJob
from cyclotron.storage.tables import JobRow
from cyclotron.storage.transitions import change_job_state

AddJob = Callable[..., str]  # the ``add_job`` fixture of tests/unit/conftest.py


@dataclass
class Queue:
    """A service's queue across scheduler passes, driven the way ``admit_jobs`` drives it."""

    max_runs: int
    runs_per_user: int
    queued: list[QueuedJob] = field(default_factory=list)
    running: list[QueuedJob] = field(default_factory=list)
    cursor: int | None = None
    admission_order: list[str] = field(default_factory=list)

    def submit(self, owner: int, *names: str) -> None:
        self.queued.extend(QueuedJob(id=name, owner_id=owner) for name in names)

    def schedule(self) -> list[str]:
        counts = Counter(job.owner_id for job in self.running)
        chosen = round_robin_order(
            self.queued, counts, self.cursor, self.max_runs, self.runs_per_user
        )
        for job in chosen:
            self.queued.remove(job)
            self.running.append(job)
        if chosen:
            self.cursor = chosen[-1].owner_id
        names = [job.id for job in chosen]
        self.admission_order.extend(names)
        return names

    def finish(self, name: str) -> list[str]:
        self.running = [job for job in self.running if job.id != name]
        return self.schedule()


def test_worked_example_of_the_spec() -> None:
    q = Queue(max_runs=3, runs_per_user=2)
    q.submit(1, "A1", "A2", "A3", "A4")
    assert q.schedule() == ["A1", "A2"]  # user 1 reaches 2 before user 2 exists
    q.submit(2, "B1", "B2")
    assert q.schedule() == ["B1"]  # 3 of 3
    assert q.schedule() == []  # full: nothing more
    assert q.finish("A1") == ["A3"]  # the cursor is after user 2: user 1's turn
    assert q.finish("B1") == ["B2"]  # user 1 is at runs_per_user
    assert q.finish("A2") == ["A4"]
    assert q.admission_order == ["A1", "A2", "B1", "A3", "B2", "A4"]


def test_checklist_18_round_robin_beats_first_come() -> None:
    q = Queue(max_runs=1, runs_per_user=5)
    q.submit(1, "J1")
    assert q.schedule() == ["J1"]
    q.submit(1, "J2")
    assert q.schedule() == []
    q.submit(1, "J3")
    assert q.schedule() == []
    q.submit(2, "K1")
    assert q.schedule() == []
    assert q.finish("J1") == ["K1"]
    assert q.finish("K1") == ["J2"]
    assert q.finish("J2") == ["J3"]
    assert q.finish("J3") == []
    assert q.admission_order == ["J1", "K1", "J2", "J3"]


def test_checklist_18_with_everything_queued_before_the_first_pass() -> None:
    q = Queue(max_runs=1, runs_per_user=5)
    q.submit(1, "J1", "J2", "J3")
    q.submit(2, "K1")
    q.schedule()
    for name in ("J1", "K1", "J2", "J3"):
        q.finish(name)
    assert q.admission_order == ["J1", "K1", "J2", "J3"]


def test_one_pass_alternates_users_in_ascending_id() -> None:
    q = Queue(max_runs=5, runs_per_user=5)
    q.submit(7, "c1", "c2", "c3")
    q.submit(3, "b1", "b2")
    q.submit(1, "a1")
    assert q.schedule() == ["a1", "b1", "c1", "b2", "c2"]


def test_visit_starts_just_after_the_cursor_and_wraps() -> None:
    queued = [QueuedJob("a", 1), QueuedJob("b", 3), QueuedJob("c", 5)]
    order = lambda last: [j.id for j in round_robin_order(queued, {}, last, 3, 1)]  # noqa: E731
    assert order(None) == ["a", "b", "c"]
    assert order(1) == ["b", "c", "a"]
    assert order(2) == ["b", "c", "a"]  # cursor on a user with nothing queued
    assert order(3) == ["c", "a", "b"]
    assert order(5) == ["a", "b", "c"]  # wraps
    assert order(99) == ["a", "b", "c"]


def test_each_user_keeps_the_order_of_the_queue() -> None:
    """The queue arrives sorted by priority then age; that order is kept within each user."""
    high, old, new = QueuedJob("high", 1), QueuedJob("old", 1), QueuedJob("new", 1)
    other = QueuedJob("other", 2)
    chosen = round_robin_order([high, other, old, new], {}, None, 10, 10)
    assert [j.id for j in chosen if j.owner_id == 1] == ["high", "old", "new"]
    assert [j.id for j in round_robin_order([high, old, new], {}, None, 1, 10)] == ["high"]


def test_nothing_admitted_when_the_service_is_already_full() -> None:
    queued = [QueuedJob("a", 1), QueuedJob("b", 2)]
    assert round_robin_order(queued, {1: 2, 3: 1}, None, 3, 5) == []
    # counts above a lowered limit are not a reason to admit more
    assert round_robin_order(queued, {3: 9}, None, 3, 5) == []


def test_a_user_at_runs_per_user_is_skipped_not_blocking() -> None:
    queued = [QueuedJob("a1", 1), QueuedJob("a2", 1), QueuedJob("b1", 2)]
    chosen = round_robin_order(queued, {1: 2}, None, 10, 2)
    assert [j.id for j in chosen] == ["b1"]


def test_empty_queue() -> None:
    assert round_robin_order([], {1: 1}, 1, 10, 5) == []


@pytest.mark.parametrize("seed", range(300))
def test_limits_are_never_exceeded_and_users_take_turns(seed: int) -> None:
    rng = random.Random(seed)
    max_runs = rng.randint(1, 8)
    runs_per_user = rng.randint(1, 5)
    users = rng.sample(range(0, 20), rng.randint(1, 6))
    queued = [QueuedJob(f"j{n}", rng.choice(users)) for n in range(rng.randint(0, 25))]
    admitted: dict[int, int] = {}
    for user in rng.sample(range(0, 20), rng.randint(0, 4)):
        admitted[user] = rng.randint(0, runs_per_user)
    while sum(admitted.values()) > max_runs:
        user = rng.choice([u for u, n in admitted.items() if n])
        admitted[user] -= 1
    last_user = rng.choice([None, *range(0, 21)])

    chosen = round_robin_order(queued, admitted, last_user, max_runs, runs_per_user)

    assert len({j.id for j in chosen}) == len(chosen)
    assert all(j in queued for j in chosen)
    after = Counter(admitted)
    after.update(j.owner_id for j in chosen)
    assert sum(after.values()) <= max_runs
    assert all(n <= runs_per_user for n in after.values())
    gained = Counter(j.owner_id for j in chosen)
    waiting = {
        u
        for u in {j.owner_id for j in queued}
        if after[u] < runs_per_user and sum(1 for j in queued if j.owner_id == u) > gained[u]
    }
    for user in {j.owner_id for j in queued}:
        mine = [j for j in queued if j.owner_id == user]
        # each user's jobs are taken from the front of their own queue
        assert [j for j in chosen if j.owner_id == user] == mine[: gained[user]]
    # as many as the limits allow: either the service is full or nobody can take more
    assert sum(after.values()) == max_runs or not waiting
    # fairness: a user who could still take more got at most one fewer than anybody
    for user in waiting:
        assert max(gained.values(), default=0) <= gained[user] + 1
    if chosen:
        # the first admission goes to the first eligible user after the cursor
        eligible = sorted(
            u for u in {j.owner_id for j in queued} if admitted.get(u, 0) < runs_per_user
        )
        after_cursor = [u for u in eligible if last_user is None or u > last_user]
        assert chosen[0].owner_id == (after_cursor or eligible)[0]


# --- admission passes against a database ----------------------------------------------------


@pytest.fixture
def core_overrides() -> dict[str, Any]:
    return {
        "services": {
            "example": {"max_runs": 3, "runs_per_user": 2},
            "solo": {"max_runs": 1, "runs_per_user": 5},
        }
    }


def admitted(core: Core, service: str = "example") -> set[str]:
    """Jobs of the service admitted and not ended."""
    with core.db.transaction(write=False) as session:
        stmt = select(JobRow.id).where(
            JobRow.service == service,
            JobRow.state == JobState.PENDING.value,
            JobRow.admitted_at.is_not(None),
        )
        return set(session.scalars(stmt))


def end(core: Core, job_id: str) -> None:
    with core.db.transaction() as session:
        assert change_job_state(session, job_id, JobState.CANCELED, stage=JobStage.DONE)


def test_worked_example_through_the_database(core: Core, add_job: AddJob) -> None:
    a = {n: add_job(1) for n in ("A1", "A2", "A3", "A4")}
    assert admit_jobs(core) == 2
    assert admitted(core) == {a["A1"], a["A2"]}
    b = {n: add_job(2) for n in ("B1", "B2")}
    assert admit_jobs(core) == 1
    assert admitted(core) == {a["A1"], a["A2"], b["B1"]}
    assert admit_jobs(core) == 0  # full
    end(core, a["A1"])
    assert admit_jobs(core) == 1
    assert admitted(core) == {a["A2"], a["A3"], b["B1"]}
    end(core, b["B1"])
    assert admit_jobs(core) == 1
    assert admitted(core) == {a["A2"], a["A3"], b["B2"]}
    with core.db.transaction(write=False) as session:
        row = repo.find_job(session, b["B2"])
        assert row is not None and row.stage == "preparing"
        assert [e.data for e in job_events(session, b["B2"]) if e.kind == "stage"] == [
            {"stage": "preparing"}
        ]


def test_checklist_18_through_the_database(core: Core, add_job: AddJob) -> None:
    j = {n: add_job(1, service="solo") for n in ("J1", "J2", "J3")}
    k1 = add_job(2, service="solo")
    order = []
    for _ in range(4):
        assert admit_jobs(core) == 1
        (job,) = admitted(core, "solo")
        order.append(job)
        end(core, job)
    assert order == [j["J1"], k1, j["J2"], j["J3"]]


def test_highest_priority_first_then_oldest(core: Core, add_job: AddJob) -> None:
    low = add_job(1, service="solo", priority=0)
    high = add_job(1, service="solo", priority=5)
    high_later = add_job(1, service="solo", priority=5)
    urgent = add_job(1, service="solo", priority=9)
    order = []
    for _ in range(4):
        admit_jobs(core)
        (job,) = admitted(core, "solo")
        order.append(job)
        end(core, job)
    assert order == [urgent, high, high_later, low]


def test_services_have_separate_limits(core: Core, add_job: AddJob) -> None:
    solo = [add_job(1, service="solo") for _ in range(2)]
    example = [add_job(1) for _ in range(3)]
    assert admit_jobs(core) == 3
    assert admitted(core, "solo") == {solo[0]}
    assert admitted(core, "example") == set(example[:2])
