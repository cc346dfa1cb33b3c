"""spec/native.md §5, §6 and §7.4 (listing, inspecting, cancelling, deleting, logs) over HTTP.

Submission through /api is not there yet; jobs come in through the file-upload face, which
is the same job in the core.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

import httpx
import pytest
from support.upload import submit, wait_until

CONFIG = {
    "services": {
        "example": {"plugin": "script", "max_runs": 10, "runs_per_user": 10},
        "other": {"plugin": "script"},
    }
}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def native_id(client: httpx.Client, number: int) -> str:
    body = client.get(f"/api/jobs/{number}").json()
    job_id: str = body["id"]
    return job_id


def test_detail_by_id_and_by_number(client: httpx.Client) -> None:
    number = submit(client, "echo out; echo err >&2\n")
    wait_until(client, number)
    by_number = client.get(f"/api/jobs/{number}")
    assert by_number.status_code == 200
    body = by_number.json()
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"])
    assert client.get(f"/api/jobs/{body['id']}").json() == body
    assert body["status"] == "completed" and body["percent"] == 100.0 and body["progress"] == 100.0
    assert body["tasks_done"] == 1 and body["tasks_failed"] == 0 and body["error"] is None
    assert body["files_available"] is True
    for key in ("created_at", "updated_at", "started_at", "finished_at"):
        assert RFC3339.match(body[key]), (key, body[key])
    task = body["tasks"][0]
    assert task["state"] == "completed" and task["exit_code"] == 0 and task["attempt"] == 1
    assert task["executor"] == "local"


@pytest.mark.parametrize(
    "bad", ["nope", "ABCDEF0123456789ABCDEF0123456789", "12345678901", "0", "999999"]
)
def test_unknown_or_malformed_ids_are_404(client: httpx.Client, bad: str) -> None:
    response = client.get(f"/api/jobs/{bad}")
    assert response.status_code == 404 and "detail" in response.json()


def test_failed_job_carries_an_error_code(client: httpx.Client) -> None:
    number = submit(client, "echo broken >&2\nexit 2\n")
    wait_until(client, number)
    body = client.get(f"/api/jobs/{number}").json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "task_failed" and "broken" in body["error"]["message"]
    assert body["error_message"] == body["error"]["message"]
    invalid = submit(client, "")
    wait_until(client, invalid)
    assert client.get(f"/api/jobs/{invalid}").json()["error"]["code"] == "invalid_input"


def test_listing_filters_and_pages(client: httpx.Client) -> None:
    tag = hashlib.sha256(str(id(client)).encode()).hexdigest()[:6]
    numbers = [submit(client, "true\n", user_id=4242) for _ in range(3)]
    for number in numbers:
        wait_until(client, number)
    listing = client.get("/api/jobs", params={"user_id": 4242, "page_size": 2}).json()
    assert listing["total"] == 3 and listing["page"] == 1 and listing["page_size"] == 2
    assert [j["number"] for j in listing["jobs"]] == sorted(numbers, reverse=True)[:2]
    past = client.get("/api/jobs", params={"user_id": 4242, "page": 5, "page_size": 2}).json()
    assert past["jobs"] == [] and past["total"] == 3
    search = client.get("/api/jobs", params={"search": f"UPLOAD-{numbers[0]}"}).json()
    assert [j["number"] for j in search["jobs"]] == [numbers[0]]
    assert client.get("/api/jobs", params={"search": "%"}).json()["total"] == 0
    assert client.get("/api/jobs", params={"search": f"_{tag}"}).json()["total"] == 0
    completed = client.get(
        "/api/jobs", params={"status": "completed,failed", "page_size": 100}
    ).json()
    assert {j["status"] for j in completed["jobs"]} <= {"completed", "failed"}
    assert client.get("/api/jobs", params={"service": "other"}).json()["total"] == 0
    assert client.get("/api/jobs", params={"service": "unknown"}).json()["jobs"] == []
    for params in ({"status": "done"}, {"page": 0}, {"page_size": 101}, {"page_size": 0}):
        assert client.get("/api/jobs", params=params).status_code == 422, params


def test_cancel_and_delete(client: httpx.Client) -> None:
    number = submit(client, "sleep 60\n")
    wait_until(client, number, lambda b: b["status"] == "Running")
    job_id = native_id(client, number)
    deleted_early = client.delete(f"/api/jobs/{job_id}")
    assert deleted_early.status_code == 400
    assert deleted_early.json() == {
        "detail": "Cannot delete job with status running. Cancel it first."
    }
    response = client.post(f"/api/jobs/{job_id}/cancel")
    assert response.status_code == 200 and response.json() == {"status": "cancelled"}
    body = client.get(f"/api/jobs/{job_id}").json()
    assert body["status"] == "cancelled" and body["tasks"][0]["state"] == "cancelled"
    again = client.post(f"/api/jobs/{job_id}/cancel")
    assert again.status_code == 400
    assert again.json() == {"detail": "Cannot cancel job with status cancelled"}
    assert client.delete(f"/api/jobs/{job_id}").json() == {"status": "deleted"}
    assert client.get(f"/api/jobs/{job_id}").status_code == 404
    assert client.delete(f"/api/jobs/{job_id}").status_code == 404
    # The number is never reused.
    assert submit(client, "true\n") > number


def test_cancel_pending_job(start_server: Any) -> None:
    live = start_server({"services": {"example": {"plugin": "script", "max_runs": 1}}})
    with live.client() as client:
        blocker = submit(client, "sleep 60\n")
        queued = submit(client, "true\n")
        response = client.post(f"/api/jobs/{queued}/cancel")
        assert response.status_code == 200 and response.json() == {"status": "cancelled"}
        assert client.get(f"/api/jobs/{queued}").json()["status"] == "cancelled"
        client.post(f"/api/jobs/{blocker}/cancel")


def test_logs(client: httpx.Client) -> None:
    number = submit(client, "printf 'line1\\nline2\\n'\necho problem >&2\n")
    wait_until(client, number)
    body = client.get(f"/api/jobs/{number}/logs").json()
    assert body["job_id"] == native_id(client, number)
    [task] = body["tasks"]
    assert task["stdout"] == "line1\nline2\n" and task["stderr"] == "problem\n"
    assert task["stdout_size"] == 12 and task["truncated"] is False and task["exit_code"] == 0
    tail = client.get(f"/api/jobs/{number}/logs", params={"tail": 6}).json()["tasks"][0]
    assert tail["stdout"] == "line2\n" and tail["truncated"] is True
    assert client.get(f"/api/jobs/{number}/logs", params={"task": 1}).status_code == 404
    assert client.get(f"/api/jobs/{number}/logs", params={"tail": 0}).status_code == 422


def test_api_keys_scope_jobs_to_their_owner(start_server: Any) -> None:
    k1, k2 = "native-key-1-" + "x" * 20, "native-key-2-" + "y" * 20
    keys = [
        {"sha256": hashlib.sha256(k1.encode()).hexdigest(), "user_id": 1},
        {"sha256": hashlib.sha256(k2.encode()).hexdigest(), "user_id": 2},
    ]
    live = start_server({"auth": {"enabled": True, "keys": keys}})
    h1, h2 = {"Authorization": f"Bearer {k1}"}, {"Authorization": f"Bearer {k2}"}
    with live.client() as client:
        response = client.get("/api/jobs")
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        upload = client.post(
            "/upload",
            data={"user_id": "1", "service": "example"},
            files={"file": ("run.sh", b"sleep 30\n")},
            headers=h1,
        )
        number = upload.json()["id"]
        assert client.get("/api/jobs", headers=h2).json()["total"] == 0
        assert client.get("/api/jobs", headers=h1).json()["total"] == 1
        for method, path in (("GET", ""), ("GET", "/logs"), ("POST", "/cancel"), ("DELETE", "")):
            response = client.request(method, f"/api/jobs/{number}{path}", headers=h2)
            assert response.status_code == 404, (method, path)
        assert client.post(f"/api/jobs/{number}/cancel", headers=h1).status_code == 200


# 16 -----------------------------------------------------------------------------------------
def test_16_cancel_racing_completion(client: httpx.Client) -> None:
    """Cancel sent around the moment the job completes: one outcome wins, never both."""
    outcomes = []
    for attempt in range(50):
        number = submit(client, "sleep 0.2\n")
        wait_until(client, number, lambda b: b["status"] == "Running")
        time.sleep(0.15 + (attempt % 10) * 0.01)
        response = client.post(f"/api/jobs/{number}/cancel")
        assert response.status_code in (200, 202, 400, 409), response.text
        final = wait_until(client, number)["status"]
        if response.status_code in (200, 202):
            assert final == "Killed", (response.status_code, final)
        else:
            assert final == "Completed", (response.status_code, final)
        events = client.get(f"/api/jobs/{number}").json()
        assert events["status"] in ("completed", "cancelled")
        outcomes.append(response.status_code)
    # The race was run on both sides: some cancels won, some came after completion.
    assert {200, 202} & set(outcomes) and {400, 409} & set(outcomes), outcomes


def test_cancel_racing_the_claim_never_fails(client: httpx.Client) -> None:
    """A cancel sent while the dispatcher claims the task (both write the job and its task)."""
    for _ in range(40):
        number = submit(client, "sleep 5\n")
        response = client.post(f"/api/jobs/{number}/cancel")
        assert response.status_code in (200, 202), response.text
        assert wait_until(client, number)["status"] == "Killed"
