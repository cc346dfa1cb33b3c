"""spec/native.md §4 and §9 (submission, its checks and capacity, validation) over HTTP,
for the ``script`` plug-in's ``files`` input; checklist cases 1-5, 7, 8 and 28 as far as
they do not need a simulator or AlphaFold 3 (those come with their plug-ins)."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from typing import Any

import httpx
import pytest
from support.live import LiveServer

CONFIG = {
    "services": {
        "example": {"plugin": "script", "max_runs": 10, "runs_per_user": 10, "max_ntasks": 8},
    },
    "server": {"max_upload_bytes": 1_000_000},
}
SCRIPT = 'echo "task $CYCLOTRON_TASK_INDEX of $CYCLOTRON_NTASKS seed $CYCLOTRON_SEED" > out.txt\n'


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "Three seeds",
        "service": "example",
        "ntasks": 3,
        "input": {"kind": "files", "files": {"run.sh": SCRIPT}},
    }
    return {**base, **overrides}


def total(client: httpx.Client) -> int:
    count: int = client.get("/api/jobs").json()["total"]
    return count


def wait_done(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        detail: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
        if detail["status"] in ("completed", "failed", "cancelled"):
            return detail
        assert time.monotonic() < deadline, detail
        time.sleep(0.05)


# 1 ------------------------------------------------------------------------------------------
def test_01_submit_runs_one_task_per_seed(client: httpx.Client) -> None:
    response = client.post("/api/jobs", json=body())
    assert response.status_code == 201
    created = response.json()
    assert re.fullmatch(r"[0-9a-f]{32}", created["id"]) and created["status"] == "pending"
    assert response.headers["location"] == f"/api/jobs/{created['id']}"
    detail = wait_done(client, created["id"])
    assert detail["status"] == "completed" and detail["number"] == created["number"]
    assert detail["seeds"] == [1, 2, 3] and [t["seed"] for t in detail["tasks"]] == [1, 2, 3]
    assert detail["name"] == "Three seeds" and detail["ntasks"] == 3
    listing = client.get(f"/api/jobs/{created['id']}/logs").json()
    assert len(listing["tasks"]) == 3


def test_01_explicit_seeds_and_binary_files(client: httpx.Client) -> None:
    blob = bytes(range(256))
    files = {
        "run.sh": "cat data.bin | md5sum > sum.txt\n",
        "data.bin": {"base64": base64.b64encode(blob).decode()},
    }
    response = client.post(
        "/api/jobs", json=body(ntasks=2, seeds=[11, 12], input={"kind": "files", "files": files})
    )
    assert response.status_code == 201, response.text
    detail = wait_done(client, response.json()["id"])
    assert detail["status"] == "completed" and detail["seeds"] == [11, 12]


# 2 ------------------------------------------------------------------------------------------
def test_02_ntasks_bounds(client: httpx.Client) -> None:
    before = total(client)
    zero = client.post("/api/jobs", json=body(ntasks=0))
    assert zero.status_code == 422 and zero.json()["detail"][0]["loc"] == ["body", "ntasks"]
    above = client.post("/api/jobs", json=body(ntasks=9, seeds=list(range(9))))
    assert above.status_code == 422 and above.json()["detail"][0]["loc"] == ["body", "ntasks"]
    assert total(client) == before


# 3 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seeds", [[1, 2], [1, 1, 2], [1, 2, -1]])
def test_03_bad_seeds(client: httpx.Client, seeds: list[int]) -> None:
    assert client.post("/api/jobs", json=body(seeds=seeds)).status_code == 422


# 4 ------------------------------------------------------------------------------------------
def test_04_unknown_service_or_input_kind_stores_nothing(
    server: LiveServer, client: httpx.Client
) -> None:
    before, entries = total(client), set((server.data_dir / "jobs").iterdir())
    response = client.post("/api/jobs", json=body(service="nope"))
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == [
        "body",
        "service",
    ]
    kind = client.post("/api/jobs", json=body(input={"kind": "editor", "project": {}}))
    assert kind.status_code == 422
    bad_name = client.post(
        "/api/jobs", json=body(input={"kind": "files", "files": {"run.sh": "true", "../x": "y"}})
    )
    assert bad_name.status_code == 422
    no_script = client.post(
        "/api/jobs", json=body(input={"kind": "files", "files": {"a.txt": "x"}})
    )
    assert no_script.status_code == 422
    assert total(client) == before and set((server.data_dir / "jobs").iterdir()) == entries
    assert not any((server.data_dir / "staging").iterdir())


# 5 ------------------------------------------------------------------------------------------
def test_05_extra_keys_and_name_title(client: httpx.Client) -> None:
    assert client.post("/api/jobs", json=body(colour="red")).status_code == 422
    assert client.post("/api/jobs", json=body(title="Other")).status_code == 422
    same = client.post("/api/jobs", json=body(title="Three seeds"))
    assert same.status_code == 201
    extra_input = body(input={"kind": "files", "files": {"run.sh": "true"}, "more": 1})
    assert client.post("/api/jobs", json=extra_input).status_code == 422


def test_body_over_the_limit_is_413(client: httpx.Client) -> None:
    huge = body(input={"kind": "files", "files": {"run.sh": "true\n", "big.txt": "x" * 1_100_000}})
    assert client.post("/api/jobs", json=huge).status_code == 413


# 7 and 8 ------------------------------------------------------------------------------------
KEYS = {
    "user1": "submit-key-one-" + "1" * 20,
    "user2": "submit-key-two-" + "2" * 20,
    "admin": "submit-admin-" + "a" * 20,
}


def test_07_08_queue_capacity_and_priority(start_server: Any) -> None:
    keys = [
        {"sha256": hashlib.sha256(KEYS["user1"].encode()).hexdigest(), "user_id": 1},
        {"sha256": hashlib.sha256(KEYS["user2"].encode()).hexdigest(), "user_id": 2},
        {"sha256": hashlib.sha256(KEYS["admin"].encode()).hexdigest(), "user_id": 9, "admin": True},
    ]
    live = start_server(
        {
            "auth": {"enabled": True, "keys": keys},
            "services": {
                "example": {
                    "plugin": "script",
                    "max_runs": 1,
                    "max_queued": 3,
                    "max_queued_per_user": 2,
                }
            },
        }
    )
    h = {name: {"Authorization": f"Bearer {key}"} for name, key in KEYS.items()}
    long = body(ntasks=1, input={"kind": "files", "files": {"run.sh": "sleep 60\n"}})
    with live.client() as client:
        running = client.post("/api/jobs", json=long, headers=h["user1"]).json()["id"]
        deadline = time.monotonic() + 30
        while client.get(f"/api/jobs/{running}", headers=h["user1"]).json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first = client.post("/api/jobs", json=long, headers=h["user1"])
        second = client.post("/api/jobs", json=long, headers=h["user1"])
        assert (first.status_code, second.status_code) == (201, 201)
        assert first.json()["status"] == second.json()["status"] == "pending"
        before = client.get("/api/jobs", headers=h["admin"]).json()["total"]
        third = client.post("/api/jobs", json=long, headers=h["user1"])
        assert third.status_code == 429
        assert int(third.headers["retry-after"]) >= 1 and "full" in third.json()["detail"]
        assert client.get("/api/jobs", headers=h["admin"]).json()["total"] == before
        assert client.post("/api/jobs", json=long, headers=h["user2"]).status_code == 201
        assert client.post("/api/jobs", json=long, headers=h["user2"]).status_code == 429
        # The file-upload face is never refused for capacity.
        upload = client.post(
            "/upload",
            data={"user_id": "2", "service": "example"},
            files={"file": ("run.sh", b"true\n")},
            headers=h["user2"],
        )
        assert upload.status_code == 201
        # 8: a positive priority needs an admin key.
        assert (
            client.post("/api/jobs", json={**long, "priority": 5}, headers=h["user2"]).status_code
            == 403
        )
        assert client.post(
            "/api/jobs", json={**long, "priority": 5}, headers=h["admin"]
        ).status_code in (201, 429)
        assert client.post("/api/jobs", json=long).status_code == 401
        for job in client.get("/api/jobs", headers=h["admin"], params={"page_size": 100}).json()[
            "jobs"
        ]:
            client.post(f"/api/jobs/{job['id']}/cancel", headers=h["admin"])


# 28 -----------------------------------------------------------------------------------------
def test_28_validate_reports_problems_in_the_body(client: httpx.Client) -> None:
    before = total(client)
    zero = client.post("/api/validate", json=body(ntasks=0))
    assert zero.status_code == 200 and zero.json()["valid"] is False and zero.json()["errors"]
    unknown = client.post("/api/validate", json=body(service="nope"))
    assert unknown.status_code == 200 and unknown.json()["valid"] is False
    assert "service" in unknown.json()["errors"][0]
    good = client.post("/api/validate", json=body())
    assert good.json() == {"valid": True, "errors": [], "warnings": [], "estimates": {}}
    empty = client.post(
        "/api/validate", json=body(input={"kind": "files", "files": {"run.sh": ""}})
    )
    assert empty.json()["valid"] is False and "empty" in empty.json()["errors"][0]
    assert client.post("/api/validate", json=[1, 2]).status_code == 422
    assert total(client) == before


# 29 -----------------------------------------------------------------------------------------
def test_29_cache_key_is_the_jobs_input_key(client: httpx.Client) -> None:
    files = {"run.sh": "cat a.txt b.txt > out.txt\n", "a.txt": "A", "b.txt": {"base64": "Qg=="}}
    reordered = dict(reversed(list(files.items())))
    first = client.post("/api/cache/check", json=body(input={"kind": "files", "files": files}))
    second = client.post(
        "/api/cache/check",
        json=body(name="other", ntasks=1, input={"kind": "files", "files": reordered}),
    )
    assert first.status_code == 200 and re.fullmatch(r"[0-9a-f]{64}", first.json()["key"])
    assert first.json()["key"] == second.json()["key"] == first.json()["cache_key"]
    assert first.json()["cached"] is False  # a script's results are never reused
    changed = client.post(
        "/api/cache/check", json=body(input={"kind": "files", "files": {**files, "a.txt": "a"}})
    )
    assert changed.json()["key"] != first.json()["key"]
    created = client.post("/api/jobs", json=body(input={"kind": "files", "files": files})).json()
    detail = client.get(f"/api/jobs/{created['id']}").json()
    assert detail["input"]["kind"] == "files" and detail["input"]["key"] == first.json()["key"]
    assert detail["input"]["files"] == [
        {"name": "a.txt", "size": 1},
        {"name": "b.txt", "size": 1},
        {"name": "run.sh", "size": len(files["run.sh"])},
    ]
    assert detail["options"] == {} and detail["warnings"] == [] and detail["reused"] is None
    assert client.post("/api/cache/check", json=body(service="nope")).status_code == 422
