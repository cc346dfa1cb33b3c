"""spec/native.md §4 and §9 (submission, its checks and capacity, validation, cache) over HTTP:
checklist cases 1-5, 7, 8, 28 and 29, for the ``sim`` simulator and the ``example`` script.

Not here: case 6 and the AlphaFold 3 half of case 29 (``sequences`` in two orders), which need
an AlphaFold 3 plug-in; none exists yet."""

from __future__ import annotations

import base64
import hashlib
import math
import re
import time
from datetime import datetime
from typing import Any

import httpx
import pytest
from native_support import ENV, SIM, create, poll, sim_body
from support.live import LiveServer

CONFIG = {
    "services": {
        "example": {"plugin": "script", "max_runs": 10, "runs_per_user": 10, "max_ntasks": 8},
        "sim": SIM,
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
def test_case_01_submit_splits_primaries_and_numbers_seeds(client: httpx.Client) -> None:
    response = client.post("/api/jobs", json=sim_body())
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"id", "status", "number"}
    assert re.fullmatch(r"[0-9a-f]{32}", created["id"]) and created["status"] == "pending"
    assert isinstance(created["number"], int) and created["number"] >= 1
    assert response.headers["location"] == f"/api/jobs/{created['id']}"
    detail = client.get(f"/api/jobs/{created['id']}").json()
    assert (
        detail["service"] == "sim"
        and detail["ntasks"] == 3
        and detail["number"] == created["number"]
    )
    assert [t["requested_primaries"] for t in detail["tasks"]] == [3334, 3333, 3333]
    # Counts of primaries are written as JSON integers, as the contract's examples are.
    assert all(type(t["requested_primaries"]) is int for t in detail["tasks"])
    assert detail["seeds"] == [1, 2, 3] and [t["seed"] for t in detail["tasks"]] == [1, 2, 3]
    assert detail["input"]["kind"] == "editor" and detail["input"]["primaries"] == 10_000
    assert poll(client, created["id"])["status"] == "completed"


def test_script_runs_one_task_per_seed(client: httpx.Client) -> None:
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


def test_explicit_seeds_and_binary_files(client: httpx.Client) -> None:
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
def test_case_02_ntasks_bounds(client: httpx.Client) -> None:
    before = total(client)
    zero = client.post("/api/jobs", json=body(ntasks=0))
    assert zero.status_code == 422 and zero.json()["detail"][0]["loc"] == ["body", "ntasks"]
    above = client.post("/api/jobs", json=body(ntasks=9, seeds=list(range(9))))
    assert above.status_code == 422 and above.json()["detail"][0]["loc"] == ["body", "ntasks"]
    assert total(client) == before


# 3 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seeds", [[1, 2], [1, 1, 2], [1, 2, -1]])
def test_case_03_bad_seeds(client: httpx.Client, seeds: list[int]) -> None:
    before = total(client)
    response = client.post("/api/jobs", json=body(seeds=seeds))
    assert response.status_code == 422 and response.json()["detail"], response.text
    assert total(client) == before


# 4 ------------------------------------------------------------------------------------------
def test_case_04_unknown_service_or_input_kind_stores_nothing(
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
    assert ["body", "input", "kind"] in [d["loc"] for d in kind.json()["detail"]]
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
def test_case_05_extra_keys_and_name_title(client: httpx.Client) -> None:
    before = total(client)
    assert client.post("/api/jobs", json=body(colour="red")).status_code == 422
    assert client.post("/api/jobs", json=body(title="Other")).status_code == 422
    assert total(client) == before
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


def _keys() -> list[dict[str, Any]]:
    return [
        {"sha256": hashlib.sha256(KEYS["user1"].encode()).hexdigest(), "user_id": 1},
        {"sha256": hashlib.sha256(KEYS["user2"].encode()).hexdigest(), "user_id": 2},
        {"sha256": hashlib.sha256(KEYS["admin"].encode()).hexdigest(), "user_id": 9, "admin": True},
    ]


HEADERS = {name: {"Authorization": f"Bearer {key}"} for name, key in KEYS.items()}


def test_case_07_queue_capacity(start_server: Any) -> None:
    """``sim`` with ``max_runs`` 1: one long job runs, the queue holds 3 (2 per user)."""
    long_sim = {**SIM, "seconds": 120, "max_runs": 1, "max_queued": 3, "max_queued_per_user": 2}
    live = start_server(
        {"auth": {"enabled": True, "keys": _keys()}, "services": {"sim": long_sim}}, env=ENV
    )
    h = HEADERS
    with live.client() as client:
        first_job = create(client, sim_body(ntasks=1), headers=h["user1"])
        poll(client, first_job, lambda d: d["status"] != "pending", headers=h["user1"])
        first = client.post("/api/jobs", json=sim_body(ntasks=1), headers=h["user1"])
        second = client.post("/api/jobs", json=sim_body(ntasks=1), headers=h["user1"])
        assert (first.status_code, second.status_code) == (201, 201)
        assert first.json()["status"] == second.json()["status"] == "pending"
        before = client.get("/api/jobs", headers=h["admin"]).json()["total"]
        own = client.get("/api/jobs", headers=h["user1"]).json()["total"]
        third = client.post("/api/jobs", json=sim_body(ntasks=1), headers=h["user1"])
        assert third.status_code == 429, third.text
        assert int(third.headers["retry-after"]) >= 1
        assert third.json() == {"detail": "Queue for service 'sim' is full. Try again later."}
        assert client.get("/api/jobs", headers=h["admin"]).json()["total"] == before
        assert client.get("/api/jobs", headers=h["user1"]).json()["total"] == own
        other = client.post("/api/jobs", json=sim_body(ntasks=1), headers=h["user2"])
        assert other.status_code == 201 and other.json()["status"] == "pending"
        pending = client.get("/api/jobs", params={"status": "pending"}, headers=h["admin"])
        assert pending.json()["total"] == 3
        again = client.post("/api/jobs", json=sim_body(ntasks=1), headers=h["user2"])
        assert again.status_code == 429 and int(again.headers["retry-after"]) >= 1
        assert client.get("/api/jobs", headers=h["admin"]).json()["total"] == before + 1
        # The file-upload face is never refused for capacity, and counts in the queue.
        upload = client.post(
            "/upload",
            data={"user_id": "2", "service": "sim"},
            files={"file": ("beam.dat", b"NSTAT 10\n")},
            headers=h["user2"],
        )
        assert upload.status_code != 429, upload.text
        for job in client.get("/api/jobs", headers=h["admin"], params={"page_size": 100}).json()[
            "jobs"
        ]:
            client.post(f"/api/jobs/{job['id']}/cancel", headers=h["admin"])


def test_case_08_positive_priority_needs_an_admin_key(start_server: Any) -> None:
    live = start_server(
        {"auth": {"enabled": True, "keys": _keys()}, "services": {"sim": SIM}}, env=ENV
    )
    with live.client() as client:
        before = client.get("/api/jobs", headers=HEADERS["admin"]).json()["total"]
        refused = client.post("/api/jobs", json=sim_body(priority=5), headers=HEADERS["user2"])
        assert refused.status_code == 403 and "detail" in refused.json()
        assert client.get("/api/jobs", headers=HEADERS["admin"]).json()["total"] == before
        foretold = client.post("/api/validate", json=sim_body(priority=5), headers=HEADERS["user2"])
        assert foretold.status_code == 200 and foretold.json()["valid"] is False
        assert [e for e in foretold.json()["errors"] if e.startswith("priority:")]
        admin = client.post("/api/validate", json=sim_body(priority=5), headers=HEADERS["admin"])
        assert admin.json()["valid"] is True, admin.text
        accepted = client.post("/api/jobs", json=sim_body(priority=5), headers=HEADERS["admin"])
        assert accepted.status_code == 201, accepted.text
        detail = client.get(f"/api/jobs/{accepted.json()['id']}", headers=HEADERS["admin"])
        assert detail.json()["priority"] == 5
        # Zero and negative priorities need no admin key.
        assert (
            client.post("/api/jobs", json=sim_body(priority=-3), headers=HEADERS["user2"])
        ).status_code == 201
        assert client.post("/api/jobs", json=sim_body()).status_code == 401


# 28 -----------------------------------------------------------------------------------------
def test_case_28_validate_answers_200_and_creates_nothing(client: httpx.Client) -> None:
    before = total(client)
    zero = client.post("/api/validate", json=sim_body(ntasks=0))
    assert zero.status_code == 200 and zero.json()["valid"] is False
    assert zero.json()["errors"] and all(isinstance(e, str) for e in zero.json()["errors"])
    unknown = client.post("/api/validate", json=sim_body(service="nope"))
    assert unknown.status_code == 200 and unknown.json()["valid"] is False
    good = client.post("/api/validate", json=sim_body())
    assert good.status_code == 200 and good.json()["valid"] is True, good.text
    assert good.json()["errors"] == []
    assert good.json()["estimates"]["primaries_per_task"] == [3334, 3333, 3333]
    assert good.json()["estimates"]["total_primaries"] == 10_000
    too_many = client.post("/api/validate", json=sim_body(ntasks=20_000, seeds=None))
    assert too_many.status_code == 200 and too_many.json()["valid"] is False
    assert client.post("/api/validate", json=[1, 2]).status_code == 422
    assert total(client) == before


def _seconds(detail: dict[str, Any]) -> float:
    started, ended = (datetime.fromisoformat(detail[k]) for k in ("started_at", "finished_at"))
    return (ended - started).total_seconds()


def test_case_28_estimated_seconds_and_a_full_queue(start_server: Any) -> None:
    """``estimated_seconds`` learnt from the service's completed tasks; a full queue is a
    warning of a body that stays valid, and the submission it foretells gets 429."""
    slow = {**SIM, "seconds": 120, "max_runs": 1, "max_queued": 1}
    live = start_server({"services": {"sim": SIM, "slow": slow}}, env=ENV)
    one_task = sim_body(ntasks=1)
    with live.client() as client:
        fresh = client.post("/api/validate", json=one_task).json()
        assert fresh["valid"] is True and fresh["warnings"] == []
        assert fresh["estimates"]["estimated_seconds"] is None  # nothing learnt yet
        done = poll(client, create(client, one_task))
        assert done["status"] == "completed"
        task_seconds = _seconds(done["tasks"][0])
        same = client.post("/api/validate", json=one_task).json()["estimates"]
        assert isinstance(same["estimated_seconds"], int)
        assert abs(same["estimated_seconds"] - math.ceil(task_seconds)) <= 1, task_seconds
        tenfold = {**one_task["input"], "primaries": 100_000}
        larger = client.post("/api/validate", json=sim_body(ntasks=1, input=tenfold)).json()
        assert larger["estimates"]["estimated_seconds"] >= 5 * same["estimated_seconds"]

        running = create(client, sim_body(ntasks=1, service="slow"))
        poll(client, running, lambda d: d["status"] == "running")
        queued = create(client, sim_body(ntasks=1, service="slow"))
        answer = client.post("/api/validate", json=sim_body(ntasks=1, service="slow")).json()
        assert answer["valid"] is True and answer["errors"] == []
        assert answer["warnings"] == [
            "service 'slow': queue is full, a submission now would get 429"
        ]
        refused = client.post("/api/jobs", json=sim_body(ntasks=1, service="slow"))
        assert refused.status_code == 429
        assert client.post("/api/validate", json=one_task).json()["warnings"] == []
        invalid = client.post("/api/validate", json=sim_body(ntasks=1001, service="slow")).json()
        assert invalid["valid"] is False and invalid["errors"] == ["ntasks: must be at most 1000"]
        assert invalid["warnings"] == answer["warnings"]
        assert client.post(f"/api/jobs/{queued}/cancel").status_code == 200
        after = client.post("/api/validate", json=sim_body(ntasks=1, service="slow")).json()
        assert after["warnings"] == []
        client.post(f"/api/jobs/{running}/cancel")


def test_validate_script_bodies(client: httpx.Client) -> None:
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
def test_case_29_cache_key_and_reuse_of_completed_results(client: httpx.Client) -> None:
    body_ = sim_body(name="cached", ntasks=2)
    before = client.post("/api/cache/check", json=body_)
    assert before.status_code == 200, before.text
    key = before.json()["key"]
    assert re.fullmatch(r"[0-9a-f]{64}", key) and before.json()["cache_key"] == key
    renamed = client.post("/api/cache/check", json={**body_, "name": "other name", "priority": -1})
    assert renamed.json()["key"] == key  # name and priority are not part of the input
    other = sim_body(ntasks=2, input={**body_["input"], "primaries": 5_000})
    assert client.post("/api/cache/check", json=other).json()["key"] != key
    source = create(client, body_)
    assert client.get(f"/api/jobs/{source}").json()["input"]["key"] == key
    assert poll(client, source)["status"] == "completed"
    after = client.post("/api/cache/check", json=body_).json()
    assert after["cached"] is True and after["key"] == key and after["job_id"] == source
    assert after["size"] > 0 and re.fullmatch(r"\d{4}-.*Z", after["timestamp"])
    # Other seeds would give other numbers: not a hit.
    assert (
        client.post("/api/cache/check", json={**body_, "seeds": [5, 6]}).json()["cached"] is False
    )
    response = client.post("/api/jobs", json={**body_, "reuse": True})
    assert response.status_code == 201, response.text
    reused_id = response.json()["id"]
    detail = client.get(f"/api/jobs/{reused_id}").json()
    assert detail["status"] == "completed" and detail["percent"] == 100.0
    assert detail["reused"] == {"kind": "results", "job_id": source, "key": key}
    original = client.get(f"/api/jobs/{source}/results").json()["estimators"]
    copied = client.get(f"/api/jobs/{reused_id}/results").json()["estimators"]
    assert copied == original and copied
    script = client.post("/api/jobs", json=body(reuse=True))
    assert script.status_code == 422  # simulation services only


def test_cache_key_of_script_files(client: httpx.Client) -> None:
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
