"""The state and stage tables: what may follow what, and who may precede whom."""

from __future__ import annotations

import pytest

from cyclotron.domain.states import (
    JOB_ACTIVE,
    JOB_TERMINAL,
    JOB_TRANSITIONS,
    STAGE_TRANSITIONS,
    TASK_TERMINAL,
    TASK_TRANSITIONS,
    JobStage,
    JobState,
    TaskState,
    job_predecessors,
    stage_predecessors,
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


# --- stages ---------------------------------------------------------------------------------

S = JobStage


def test_every_stage_has_a_row_in_its_table() -> None:
    assert set(STAGE_TRANSITIONS) == set(JobStage)


def test_every_stage_is_reachable_from_queued() -> None:
    reached, frontier = {S.QUEUED}, [S.QUEUED]
    while frontier:
        for following in STAGE_TRANSITIONS[frontier.pop()] - reached:
            reached.add(following)
            frontier.append(following)
    assert reached == set(JobStage)


def test_done_is_final_and_every_other_stage_may_end() -> None:
    assert STAGE_TRANSITIONS[S.DONE] == frozenset()
    assert stage_predecessors(S.DONE) == set(JobStage) - {S.DONE}


def test_a_stage_moves_forward_except_the_requeue_of_a_merge() -> None:
    order = list(JobStage)
    backward = {
        (stage, following)
        for stage, successors in STAGE_TRANSITIONS.items()
        for following in successors
        if order.index(following) <= order.index(stage)
    }
    assert backward == {(S.MERGING, S.MERGING_QUEUED)}


def test_stage_predecessors() -> None:
    assert stage_predecessors(S.QUEUED) == frozenset()
    assert stage_predecessors(S.PREPARING) == {S.QUEUED}  # admission, or a batch submission
    assert stage_predecessors(S.SUBMITTED) == {S.PREPARING}
    assert stage_predecessors(S.RUNNING) == {S.QUEUED, S.PREPARING, S.SUBMITTED}
    assert stage_predecessors(S.MERGING) == {S.RUNNING, S.MERGING_QUEUED}
    for target in JobStage:
        for source in JobStage:
            assert (source in stage_predecessors(target)) == (target in STAGE_TRANSITIONS[source])


# The stages a job can be in while in each active state, and the stage each state change
# carries (what the services pass to ``change_job_state``).
STAGES_IN_STATE = {
    JobState.PENDING: {S.QUEUED, S.PREPARING, S.SUBMITTED},
    JobState.RUNNING: {S.RUNNING},
    JobState.MERGING_QUEUED: {S.MERGING_QUEUED},
    JobState.MERGING_RUNNING: {S.MERGING},
}
STAGE_OF_STATE = {
    JobState.RUNNING: S.RUNNING,
    JobState.MERGING_QUEUED: S.MERGING_QUEUED,
    JobState.MERGING_RUNNING: S.MERGING,
    **{state: S.DONE for state in JOB_TERMINAL},
}


@pytest.mark.parametrize("state", sorted(STAGES_IN_STATE))
def test_every_allowed_state_change_may_move_the_stage_with_it(state: JobState) -> None:
    for target in JOB_TRANSITIONS[state]:
        for stage in STAGES_IN_STATE[state]:
            assert STAGE_OF_STATE[target] in STAGE_TRANSITIONS[stage], (state, stage, target)
