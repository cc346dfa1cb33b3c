"""The state table: what may follow what, and who may precede whom."""

from __future__ import annotations

import pytest

from cyclotron.domain.states import (
    JOB_ACTIVE,
    JOB_TERMINAL,
    JOB_TRANSITIONS,
    TASK_TERMINAL,
    TASK_TRANSITIONS,
    JobState,
    TaskState,
    job_predecessors,
    task_predecessors,
)

FINAL = ("COMPLETED", "FAILED", "CANCELED")


def test_every_state_has_a_row_in_its_table() -> None:
    assert set(JOB_TRANSITIONS) == set(JobState)
    assert set(TASK_TRANSITIONS) == set(TaskState)


def test_terminal_states_are_exactly_completed_failed_canceled() -> None:
    assert {s.value for s in JOB_TERMINAL} == set(FINAL)
    assert {s.value for s in TASK_TERMINAL} == set(FINAL)


@pytest.mark.parametrize("state", JOB_TERMINAL)
def test_terminal_job_state_has_no_successor(state: JobState) -> None:
    assert JOB_TRANSITIONS[state] == frozenset()


@pytest.mark.parametrize("state", TASK_TERMINAL)
def test_terminal_task_state_has_no_successor(state: TaskState) -> None:
    assert TASK_TRANSITIONS[state] == frozenset()


@pytest.mark.parametrize("final", FINAL)
def test_a_finished_job_is_no_predecessor_of_anything(final: str) -> None:
    for target in JobState:
        assert JobState(final) not in job_predecessors(target), target


@pytest.mark.parametrize("final", FINAL)
def test_a_finished_task_is_no_predecessor_of_anything(final: str) -> None:
    for target in TaskState:
        assert TaskState(final) not in task_predecessors(target), target


def test_late_cancel_and_late_completion_cannot_overwrite_each_other() -> None:
    assert JobState.COMPLETED not in job_predecessors(JobState.CANCELED)
    assert JobState.CANCELED not in job_predecessors(JobState.COMPLETED)
    assert TaskState.COMPLETED not in task_predecessors(TaskState.CANCELED)
    assert TaskState.CANCELED not in task_predecessors(TaskState.COMPLETED)


def test_job_predecessors() -> None:
    J = JobState
    assert job_predecessors(J.PENDING) == {J.UNKNOWN}
    assert job_predecessors(J.RUNNING) == {J.UNKNOWN, J.PENDING}
    assert job_predecessors(J.MERGING_QUEUED) == {
        J.UNKNOWN,
        J.PENDING,
        J.RUNNING,
        J.MERGING_RUNNING,
    }
    assert job_predecessors(J.MERGING_RUNNING) == {J.UNKNOWN, J.RUNNING, J.MERGING_QUEUED}
    # Final results stored by a worker complete a job from any active state (yaptide.md §5.2).
    assert job_predecessors(J.COMPLETED) == {
        J.UNKNOWN,
        J.PENDING,
        J.RUNNING,
        J.MERGING_QUEUED,
        J.MERGING_RUNNING,
    }
    active = {J.UNKNOWN, J.PENDING, J.RUNNING, J.MERGING_QUEUED, J.MERGING_RUNNING}
    assert job_predecessors(J.FAILED) == active
    assert job_predecessors(J.CANCELED) == active
    assert job_predecessors(J.UNKNOWN) == frozenset()


def test_task_predecessors() -> None:
    T = TaskState
    assert task_predecessors(T.PENDING) == {T.RUNNING}  # a re-queued lease
    assert task_predecessors(T.RUNNING) == {T.PENDING}
    assert task_predecessors(T.COMPLETED) == {T.PENDING, T.RUNNING}
    assert task_predecessors(T.FAILED) == {T.PENDING, T.RUNNING}
    assert task_predecessors(T.CANCELED) == {T.PENDING, T.RUNNING}


def test_predecessors_are_the_inverse_of_the_table() -> None:
    for target in JobState:
        for source in JobState:
            assert (source in job_predecessors(target)) == (target in JOB_TRANSITIONS[source])
    for target in TaskState:
        for source in TaskState:
            assert (source in task_predecessors(target)) == (target in TASK_TRANSITIONS[source])


def test_no_state_moves_to_itself() -> None:
    for state, successors in JOB_TRANSITIONS.items():
        assert state not in successors
    for state, successors in TASK_TRANSITIONS.items():
        assert state not in successors


def test_active_job_states_exclude_terminal_and_unknown() -> None:
    J = JobState
    assert {J.PENDING, J.RUNNING, J.MERGING_QUEUED, J.MERGING_RUNNING} == JOB_ACTIVE
