"""Admission under load: per-user limits hold and users are served round-robin."""

from __future__ import annotations

import time
from typing import Any

from support.upload import TERMINAL, admitted_now, status_of, submit, upload, zip_members

STAMPED = "date +%s%N > start.txt\nsleep {}\ndate +%s%N > end.txt\n"


def _spans(client: Any, jobs: list[int]) -> dict[int, tuple[int, int]]:
    spans = {}
    for job in jobs:
        members = zip_members(client.get(f"/download/{job}"))
        spans[job] = (int(members["start.txt"]), int(members["end.txt"]))
    return spans


def _max_overlap(spans: list[tuple[int, int]]) -> int:
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_fifty_jobs_at_once_with_runs_per_user_five(start_server: Any) -> None:
    live = start_server(
        {
            "services": {"example": {"plugin": "script", "max_runs": 20, "runs_per_user": 5}},
            "executors": {"local": {"max_parallel": 8}},
        }
    )
    with live.client() as client:
        jobs = []
        for _ in range(50):
            response = upload(client, {"run.sh": STAMPED.format(0.2).encode()})
            assert response.status_code == 201
            jobs.append(response.json()["id"])
        peak_seen = 0
        deadline = time.monotonic() + 120
        while True:
            peak_seen = max(peak_seen, len(admitted_now(client)))
            statuses = [status_of(client, job)["status"] for job in jobs]
            if all(s in TERMINAL for s in statuses):
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert set(statuses) == {"Completed"}
        spans = _spans(client, jobs)
    assert peak_seen <= 5
    peak = _max_overlap(list(spans.values()))
    assert 2 <= peak <= 5, f"{peak} jobs of one user overlapped"


def test_two_users_submitting_alternately_are_served_round_robin(start_server: Any) -> None:
    live = start_server(
        {"services": {"example": {"plugin": "script", "max_runs": 1, "runs_per_user": 5}}}
    )
    with live.client() as client:
        owner = {}
        # User 1 queues four jobs before user 2 queues four: first-come order would run
        # all of user 1's first; round-robin interleaves them.
        for user in (1, 1, 1, 1, 2, 2, 2, 2):
            owner[submit(client, STAMPED.format(0.3), user_id=user)] = user
        deadline = time.monotonic() + 120
        while not all(status_of(client, job)["status"] in TERMINAL for job in owner):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        spans = _spans(client, list(owner))
    order = [owner[job] for job in sorted(owner, key=lambda j: spans[j][0])]
    assert order == [1, 2, 1, 2, 1, 2, 1, 2]
