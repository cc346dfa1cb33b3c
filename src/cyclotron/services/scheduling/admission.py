"""Fair admission: per-service ``max_runs``, per-user ``runs_per_user``, round-robin over users."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Collection, Mapping, Sequence

from cyclotron.domain.states import JobStage
from cyclotron.services.core import Core
from cyclotron.storage import jobs as repo
from cyclotron.storage.tables import utcnow
from cyclotron.storage.transitions import change_job_stage


def round_robin_order(
    queued: Sequence[repo.QueuedJob],
    admitted: Mapping[int, int],
    last_user: int | None,
    max_runs: int,
    runs_per_user: int,
) -> list[repo.QueuedJob]:
    """Which queued jobs to admit now, in order; a pure function of the queue and the counts.

    Users are visited in ascending id, starting just after ``last_user`` (wrapping); each
    visited user under ``runs_per_user`` gets their next job; rounds repeat until ``max_runs``
    is reached or nobody can be admitted.
    """
    per_user: dict[int, deque[repo.QueuedJob]] = defaultdict(deque)
    for job in queued:
        per_user[job.owner_id].append(job)
    users = sorted(per_user)
    if not users:
        return []
    start = next((i for i, u in enumerate(users) if last_user is not None and u > last_user), 0)
    order = users[start:] + users[:start]
    counts = dict(admitted)
    total = sum(counts.values())
    chosen: list[repo.QueuedJob] = []
    while total < max_runs:
        progressed = False
        for user in order:
            if total >= max_runs:
                break
            if per_user[user] and counts.get(user, 0) < runs_per_user:
                chosen.append(per_user[user].popleft())
                counts[user] = counts.get(user, 0) + 1
                total += 1
                progressed = True
        if not progressed:
            break
    return chosen


def admit_jobs(core: Core, services: Collection[str] | None = None) -> int:
    """One admission pass over the services (all by default), each in its own transaction."""
    return len(admit(core, services))


def admit(core: Core, services: Collection[str] | None = None) -> list[tuple[str, str]]:
    """``admit_jobs``, which says which jobs it admitted: (job id, service), in order."""
    admitted: list[tuple[str, str]] = []
    for service in core.catalog:
        if services is not None and service.name not in services:
            continue
        limits = service.settings
        with core.db.transaction() as session:
            cursor = repo.lock_admission_cursor(session, service.name)
            queued = repo.queued_jobs(session, service.name)
            if not queued:
                continue
            chosen = round_robin_order(
                queued,
                repo.admitted_counts(session, service.name),
                cursor.last_user_id,
                limits.max_runs,
                limits.runs_per_user,
            )
            if not chosen:
                continue
            now = utcnow()
            for job in chosen:
                if change_job_stage(session, job.id, JobStage.PREPARING, admitted_at=now):
                    admitted.append((job.id, service.name))
            cursor.last_user_id = chosen[-1].owner_id
    return admitted
