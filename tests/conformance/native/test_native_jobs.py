"""spec/native.md §5, §6 and §7.4 (listing, inspecting, cancelling, deleting, logs) over HTTP:
checklist cases 9-17 and 31. Some tests bring jobs in through the file-upload face, which is
the same job in the core.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

import httpx
import pytest
from native_support import SIM, TERMINAL, create, poll, running, script_body, sim_body
from support.live import LiveServer
from support.upload import submit, wait_until
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

CONFIG = {
    "services": {
        "example": {"plugin": "script", "max_runs": 10, "runs_per_user": 10},
        "other": {"plugin": "script"},
        "single": {"plugin": "script", "max_runs": 1},
        "sim": {**SIM, "seconds": 3.0},
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
def test_case_16_cancel_racing_completion(client: httpx.Client) -> None:
    """Cancel sent around the moment the job completes: one outcome wins, never both.

    The delays span 0 to 0.45 s around a 0.2 s job, so that on a loaded machine too some
    cancels come before the end and some after it.
    """
    outcomes = []
    for attempt in range(50):
        number = submit(client, "sleep 0.2\n")
        wait_until(client, number, lambda b: b["status"] == "Running")
        time.sleep((attempt % 10) * 0.05)
        response = client.post(f"/api/jobs/{number}/cancel")
        assert response.status_code in (200, 202, 400, 409), response.text
        final = wait_until(client, number, timeout=90)["status"]
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


# 9 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {"page_size": 0},
        {"page_size": 101},
        {"status": "bogus"},
        {"status": "pending,bogus"},
        {"page": 0},
    ],
)
def test_case_09_listing_parameters_out_of_range(
    client: httpx.Client, params: dict[str, Any]
) -> None:
    """Every 422 is FastAPI's list form, naming the parameter (spec/native.md §2)."""
    response = client.get("/api/jobs", params=params)
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["query", *params] and problem["msg"] and problem["type"]


# 10 -----------------------------------------------------------------------------------------
def test_case_10_newest_first_and_pages(client: httpx.Client) -> None:
    tag = f"order-{time.monotonic_ns()}"
    a, b, c = (create(client, script_body("true\n", name=f"{tag} {n}")) for n in "ABC")
    listing = client.get("/api/jobs", params={"search": tag}).json()
    assert [j["id"] for j in listing["jobs"]] == [c, b, a] and listing["total"] == 3
    second = client.get("/api/jobs", params={"search": tag, "page": 2, "page_size": 2}).json()
    assert [j["id"] for j in second["jobs"]] == [a]
    assert second["total"] == 3 and second["page"] == 2 and second["page_size"] == 2
    past = client.get("/api/jobs", params={"search": tag, "page": 9}).json()
    assert past["jobs"] == [] and past["total"] == 3


# 11 -----------------------------------------------------------------------------------------
def test_case_11_search_is_literal_and_case_insensitive(client: httpx.Client) -> None:
    pencil = create(client, script_body("true\n", name="Proton pencil beam"))
    percent = create(client, script_body("true\n", name="dose 100% at peak"))
    underscore = create(client, script_body("true\n", name="dose_map"))
    other = create(client, script_body("true\n", name="other service job", service="other"))
    found = client.get("/api/jobs", params={"search": "PENCIL", "page_size": 100}).json()
    assert pencil in [j["id"] for j in found["jobs"]]
    assert all("pencil" in j["name"].lower() for j in found["jobs"])
    literal = client.get("/api/jobs", params={"search": "%", "page_size": 100}).json()
    assert [j["id"] for j in literal["jobs"]] == [percent]
    under = client.get("/api/jobs", params={"search": "_", "page_size": 100}).json()
    assert [j["id"] for j in under["jobs"]] == [underscore]
    example = client.get("/api/jobs", params={"service": "example", "page_size": 100}).json()
    ids = [j["id"] for j in example["jobs"]]
    assert pencil in ids and other not in ids
    assert {j["service"] for j in example["jobs"]} == {"example"}
    assert client.get("/api/jobs", params={"service": "unknown"}).json()["jobs"] == []


# 12 -----------------------------------------------------------------------------------------
def test_case_12_unknown_ids_are_404_and_numbers_name_jobs(client: httpx.Client) -> None:
    unknown = client.get(f"/api/jobs/{'0123456789abcdef' * 2}")
    assert unknown.status_code == 404 and isinstance(unknown.json()["detail"], str)
    malformed = client.get("/api/jobs/xyz")
    assert malformed.status_code == 404 and isinstance(malformed.json()["detail"], str)
    job_id = create(client, script_body("true\n"))
    poll(client, job_id)
    by_id = client.get(f"/api/jobs/{job_id}").json()
    by_number = client.get(f"/api/jobs/{by_id['number']}")
    assert by_number.status_code == 200 and by_number.json() == by_id


# 13 -----------------------------------------------------------------------------------------
def test_case_13_running_job_lists_its_tasks(client: httpx.Client) -> None:
    job_id = create(client, sim_body())
    seen: list[dict[str, Any]] = []

    def record(detail: dict[str, Any]) -> bool:
        seen.append(detail)
        return detail["status"] in TERMINAL

    final = poll(client, job_id, record)
    assert final["status"] == "completed" and final["percent"] == 100.0
    assert final["progress"] == 100.0
    during = [d for d in seen if d["status"] == "running"]
    assert during, "the job was never seen running"
    for detail in seen[:-1]:
        assert detail["percent"] <= 99.0 and detail["progress"] == detail["percent"]
    for detail in during:
        assert [t["index"] for t in detail["tasks"]] == [0, 1, 2]
        for task in detail["tasks"]:
            assert task["state"] in ("pending", "running", "completed")
            assert 0.0 <= task["percent"] <= 100.0
            assert (task["started_at"] is not None) == (task["state"] != "pending")
    assert any(t["state"] == "running" for d in during for t in d["tasks"])
    assert all(t["state"] == "completed" and t["percent"] == 100.0 for t in final["tasks"])
    # The engine's own estimate of the time left, while a task runs and reports it.
    etas = [t["eta_seconds"] for d in during for t in d["tasks"] if t["simulated_primaries"]]
    assert any(isinstance(eta, int | float) and eta >= 0 for eta in etas), etas
    assert all(t["eta_seconds"] is None for t in final["tasks"])


# 14 -----------------------------------------------------------------------------------------
def test_case_14_cancel_a_pending_job(client: httpx.Client) -> None:
    blocker = create(client, script_body("sleep 120\n", service="single"))
    poll(client, blocker, running)
    queued = create(client, script_body("true\n", service="single"))
    assert client.get(f"/api/jobs/{queued}").json()["status"] == "pending"
    response = client.post(f"/api/jobs/{queued}/cancel")
    assert response.status_code == 200 and response.json() == {"status": "cancelled"}
    assert client.get(f"/api/jobs/{queued}").json()["status"] == "cancelled"
    again = client.post(f"/api/jobs/{queued}/cancel")
    assert again.status_code == 400
    assert again.json() == {"detail": "Cannot cancel job with status cancelled"}
    assert client.post(f"/api/jobs/{blocker}/cancel").status_code in (200, 202)


# 15 -----------------------------------------------------------------------------------------
def stored_event_types(client: httpx.Client, job_id: str) -> list[str]:
    """The types of the job's stored events, replayed over SSE from the start."""
    types = []
    with client.stream("GET", f"/api/jobs/{job_id}/events", params={"last_event_id": 0}) as sse:
        assert sse.status_code == 200
        for line in sse.iter_lines():
            if line.startswith("event:"):
                types.append(line.partition(":")[2].strip())
    return types


def test_case_15_cancel_a_running_job(client: httpx.Client) -> None:
    job_id = create(client, script_body("sleep 60\n"))
    poll(client, job_id, lambda d: d["status"] == "running")
    response = client.post(f"/api/jobs/{job_id}/cancel")
    assert response.status_code in (200, 202), response.text
    expected = {200: "cancelled", 202: "cancelling"}[response.status_code]
    assert response.json() == {"status": expected}
    # The case's 15 s, with a margin for a loaded machine.
    final = poll(client, job_id, timeout=30)
    assert final["status"] == "cancelled"
    assert final["tasks"][0]["state"] == "cancelled"
    assert "cancelled" in stored_event_types(client, job_id)
    time.sleep(1.0)  # it stays cancelled: nothing finishing late turns it completed
    assert client.get(f"/api/jobs/{job_id}").json()["status"] == "cancelled"


# 17 -----------------------------------------------------------------------------------------
def test_case_17_delete_only_ended_jobs(client: httpx.Client) -> None:
    active = create(client, script_body("sleep 60\n"))
    poll(client, active, running)
    refused = client.delete(f"/api/jobs/{active}")
    assert refused.status_code == 400
    assert refused.json() == {"detail": "Cannot delete job with status running. Cancel it first."}
    client.post(f"/api/jobs/{active}/cancel")
    done = create(client, script_body("echo hi\n"))
    detail = poll(client, done)
    assert detail["status"] == "completed"
    assert client.get(f"/download/{detail['number']}").status_code == 200
    deleted = client.delete(f"/api/jobs/{done}")
    assert deleted.status_code == 200 and deleted.json() == {"status": "deleted"}
    assert client.get(f"/api/jobs/{done}").status_code == 404
    assert client.get(f"/api/jobs/{detail['number']}").status_code == 404
    assert client.get(f"/download/{detail['number']}").status_code == 404


# 31 -----------------------------------------------------------------------------------------
def test_case_31_keys_hide_other_users_jobs(start_server: Any) -> None:
    k1, k2 = "case31-key-1-" + "x" * 20, "case31-key-2-" + "y" * 20
    keys = [
        {"sha256": hashlib.sha256(k1.encode()).hexdigest(), "user_id": 1},
        {"sha256": hashlib.sha256(k2.encode()).hexdigest(), "user_id": 2},
    ]
    live: LiveServer = start_server({"auth": {"enabled": True, "keys": keys}})
    h1, h2 = {"Authorization": f"Bearer {k1}"}, {"Authorization": f"Bearer {k2}"}
    with live.client() as client:
        missing = client.get("/api/jobs")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        wrong = client.get("/api/jobs", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        job_id = create(client, script_body("sleep 60\n"), headers=h1)
        poll(client, job_id, running, headers=h1)
        mine = [j["id"] for j in client.get("/api/jobs", headers=h1).json()["jobs"]]
        theirs = client.get("/api/jobs", headers=h2).json()
        assert job_id in mine and job_id not in [j["id"] for j in theirs["jobs"]]
        for method, path in (
            ("GET", ""),
            ("POST", "/cancel"),
            ("DELETE", ""),
            ("GET", "/files"),
            ("GET", "/files/input/run.sh"),
            ("GET", "/logs"),
        ):
            response = client.request(method, f"/api/jobs/{job_id}{path}", headers=h2)
            assert response.status_code == 404, (method, path, response.status_code)
        url = f"ws://127.0.0.1:{live.port}/api/jobs/{job_id}/progress?token={k2}"
        with connect(url) as socket:
            first = json.loads(socket.recv(timeout=30))
            try:
                socket.recv(timeout=30)
                code = None
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
        assert first["type"] == "error" and code == 4004
        # Still running: none of user 2's requests touched it.
        assert client.get(f"/api/jobs/{job_id}", headers=h1).json()["status"] == "running"
        assert client.post(f"/api/jobs/{job_id}/cancel", headers=h1).status_code in (200, 202)
