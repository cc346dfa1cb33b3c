"""Reading a ``text/event-stream`` and the errors of answers, without a server."""

from __future__ import annotations

import httpx

from cyclotron.client.errors import InvalidRequest, NotFound, QueueFull, error_for
from cyclotron.client.progress import EventStream


def test_events_are_read_whole_and_comments_skipped() -> None:
    stream = EventStream()
    lines = [
        "retry: 2000",
        "id: 5",
        "event: snapshot",
        'data: {"type": "snapshot", "seq": 5, "status": "running", "percent": 40.0}',
        "",
        ": ping",
        "",
        "id: 6",
        "event: progress",
        'data: {"type": "progress",',
        'data:  "seq": 6, "percent": 50.0, "task_index": 1}',
        "",
    ]
    events = [event for line in lines if (event := stream.feed(line)) is not None]
    assert [(e.type, e.seq, e.percent) for e in events] == [
        ("snapshot", 5, 40.0),
        ("progress", 6, 50.0),
    ]
    assert events[1].task_index == 1 and stream.last_id == 6 and not events[1].terminal


def answer(status: int, body: object, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def test_error_answers_become_the_client_s_errors() -> None:
    refused = error_for(
        answer(422, {"detail": [{"loc": ["body", "ntasks"], "msg": "too small", "type": "x"}]})
    )
    assert isinstance(refused, InvalidRequest)
    assert refused.problems[0].location == ("body", "ntasks") and "ntasks: too small" in str(
        refused
    )
    full = error_for(answer(429, {"detail": "Queue full"}, **{"Retry-After": "7"}))
    assert isinstance(full, QueueFull) and full.retry_after == 7
    missing = error_for(answer(404, {"detail": "Job x not found"}))
    assert isinstance(missing, NotFound) and missing.detail == "Job x not found"
    upload_face = error_for(answer(400, {"id": None, "status": "Invalid", "message": "Bad"}))
    assert upload_face.detail == "Bad"
