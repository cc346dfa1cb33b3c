"""YAPTIDE face, simulations: submit, status, cancel, list, delete and clusters.

Checklist cases 17–31 and 41–51 of spec/yaptide.md §8, with the rules of §3.9–§3.13 and
§3.18–§3.21 they rest on. Jobs of the ``reported`` service never run by themselves: they stay
PENDING until a test moves their tasks through the worker route, which holds a job RUNNING
as long as a test needs it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from support.live import LiveServer
from support.yaptide import (
    JOB_ID,
    NOT_FOUND,
    TERMINAL,
    assert_error,
    fixture_body,
    login,
    status,
    submit,
    update_key,
    wait_for,
)

FILES_MODE = "captured_post_jobs_direct_files_mode_from_ex1.json"
FLUKA = "captured_post_jobs_direct_from_ex7.json"
HTTP_DATE = "%a, %d %b %Y %H:%M:%S %Z"
JOB_STATES = {
    "UNKNOWN",
    "PENDING",
    "RUNNING",
    "MERGING_QUEUED",
    "MERGING_RUNNING",
    "COMPLETED",
    "FAILED",
    "CANCELED",
}
STATUS_KEYS = {"message", "job_state", "job_tasks_status"}
TASK_KEYS = {
    "task_id",
    "task_state",
    "requested_primaries",
    "simulated_primaries",
    "last_update_time",
}
LIST_KEYS = {"message", "simulations", "page_count", "simulations_count"}
ITEM_KEYS = {
    "job_id",
    "title",
    "start_time",
    "end_time",
    "sim_type",
    "input_type",
    "platform",
    "ntasks",
    "metadata",
    "progress",
}
METADATA_KEYS = {"platform", "server", "input_type", "sim_type"}
EX1_PRIMARIES = 10000
EX1_FILES = {"beam.dat", "detect.dat", "geo.dat", "info.json", "mat.dat"}
NSTAT = re.compile(r"^\s*NSTAT\s+(\S+)", re.MULTILINE)


def http_date(value: Any) -> datetime:
    """A §1.5 HTTP-date, parsed; fails the test for anything else."""
    assert isinstance(value, str), value
    assert value.endswith(" GMT"), value
    return datetime.strptime(value, HTTP_DATE).replace(tzinfo=UTC)


def listing(client: httpx.Client, **params: Any) -> dict[str, Any]:
    answer = client.get("/user/simulations", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert set(body) == LIST_KEYS
    return body


def listed_ids(client: httpx.Client, **params: Any) -> list[str]:
    return [item["job_id"] for item in listing(client, page_size=100, **params)["simulations"]]


def item_of(client: httpx.Client, job_id: str) -> dict[str, Any]:
    found = [i for i in listing(client, page_size=100)["simulations"] if i["job_id"] == job_id]
    assert len(found) == 1, f"{job_id} is listed {len(found)} times"
    return found[0]


def requested(body: dict[str, Any]) -> list[int]:
    return [task["requested_primaries"] for task in body["job_tasks_status"]]


def report_task(server: LiveServer, job_id: str, task_id: int, **update: Any) -> None:
    """A worker's ``POST /tasks`` with the job's own update key."""
    with server.client() as worker:
        answer = worker.post(
            "/tasks",
            json={
                "simulation_id": job_id,
                "task_id": task_id,
                "update_key": update_key(server, job_id),
                "update_dict": update,
            },
        )
    assert answer.status_code == 202, answer.text


def running_job(server: LiveServer, client: httpx.Client, ntasks: int = 2) -> str:
    """A ``reported`` job whose first task a worker has started: RUNNING until told otherwise."""
    job_id = submit(client, ntasks=ntasks, sim_type="reported")
    report_task(server, job_id, 1, task_state="RUNNING", simulated_primaries=10)
    assert status(client, job_id)["job_state"] == "RUNNING"
    return job_id


def cli(server: LiveServer, *args: str) -> None:
    """``cyclotron <args>`` against the live server's configuration."""
    command = [sys.executable, "-m", "cyclotron", *args, "--config", str(server.config_path)]
    done = subprocess.run(
        command, env=server.env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def submitted(alice: httpx.Client) -> httpx.Response:
    """Case 17's submission: the UI's ex1 body exactly as captured, with ntasks 3."""
    return alice.post("/jobs/direct", json=fixture_body(ntasks=3))


@pytest.fixture(scope="module")
def job_id(submitted: httpx.Response) -> str:
    assert submitted.status_code == 202, submitted.text
    value: str = submitted.json()["job_id"]
    return value


@pytest.fixture(scope="module")
def finished(alice: httpx.Client, job_id: str) -> dict[str, Any]:
    """Case 17's job polled until it ended (case 28)."""
    return wait_for(alice, job_id)


@pytest.fixture(scope="module")
def mixed(server: LiveServer) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """A fresh user, and that user's jobs by state: COMPLETED, FAILED, RUNNING and PENDING."""
    with closing(login(server, "erin")) as client:
        jobs = {
            "COMPLETED": submit(client, ntasks=1),
            "FAILED": submit(client, ntasks=1, sim_type="failing"),
            "RUNNING": running_job(server, client),
            "PENDING": submit(client, ntasks=1, sim_type="reported"),
        }
        for state in ("COMPLETED", "FAILED"):
            assert wait_for(client, jobs[state])["job_state"] == state
        yield client, jobs


# --- POST /jobs/direct (§3.9) ------------------------------------------------------------


def test_case_17_submit_captured_editor_body(submitted: httpx.Response) -> None:
    """17: POST /jobs/direct, ex1 captured body with ntasks 3 → 202; keys {message, job_id};
    job_id matches §1.6 and ends with DIRECT."""
    assert submitted.status_code == 202, submitted.text
    body = submitted.json()
    assert set(body) == {"message", "job_id"}
    assert isinstance(body["message"], str) and body["message"]
    assert re.match(JOB_ID, body["job_id"])
    assert body["job_id"].endswith("DIRECT")
    stamp = datetime.strptime(body["job_id"][:15], "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 600


def test_case_18_submit_with_sim_data(alice: httpx.Client) -> None:
    """18: the same with sim_data instead of input_json → 202; keys {message, job_id}."""
    body = fixture_body(ntasks=3)
    project = body.pop("input_json")
    body["sim_data"] = project
    answer = alice.post("/jobs/direct", json=body)
    assert answer.status_code == 202, answer.text
    assert set(answer.json()) == {"message", "job_id"}
    job_id = answer.json()["job_id"]
    assert re.match(JOB_ID, job_id) and job_id.endswith("DIRECT")
    assert requested(status(alice, job_id)) == [3334, 3333, 3333]
    stored = alice.get("/inputs", params={"job_id": job_id}).json()["input"]
    assert stored["input_json"] == project


def test_case_19_submit_without_ntasks(alice: httpx.Client) -> None:
    """19: POST /jobs/direct without ntasks → 400; the message names ntasks."""
    body = fixture_body()
    del body["ntasks"]
    error = assert_error(alice.post("/jobs/direct", json=body), 400)
    assert "ntasks" in error["message"]


def test_case_20_editor_without_project(alice: httpx.Client) -> None:
    """20: input_type editor with neither input_json nor sim_data → 400 ⊇ {message, status_code}."""
    body = fixture_body()
    del body["input_json"]
    assert_error(alice.post("/jobs/direct", json=body), 400)


def test_case_21_unknown_sim_type(alice: httpx.Client) -> None:
    """21: POST /jobs/direct with sim_type nosuch → 400 ⊇ {message, status_code}."""
    error = assert_error(alice.post("/jobs/direct", json=fixture_body(sim_type="nosuch")), 400)
    assert "nosuch" in error["message"]


def test_fluka_body_without_fluka_service_lists_the_available_ones(alice: httpx.Client) -> None:
    """§3.9: the UI's FLUKA (ex7) body on a server with no fluka service → 400 listing the
    configured services."""
    before = listing(alice)["simulations_count"]
    body = fixture_body(FLUKA, ntasks=2)
    assert body["sim_type"] == "fluka"
    error = assert_error(alice.post("/jobs/direct", json=body), 400)
    assert "fluka" in error["message"]
    available = error["message"].split("Available", 1)[1]
    for service in ("shieldhit", "failing", "flaky", "reported"):
        assert service in available
    assert listing(alice)["simulations_count"] == before


def test_case_22_submit_without_cookies(anonymous: httpx.Client) -> None:
    """22: POST /jobs/direct without cookies → 401, message No token provided."""
    error = assert_error(anonymous.post("/jobs/direct", json=fixture_body(ntasks=3)), 401)
    assert error["message"] == "No token provided"


def test_primaries_split_exactly(alice: httpx.Client) -> None:
    """§3.9 split: task k requests ⌊P/n⌋ + 1 if k ≤ P mod n, else ⌊P/n⌋; the sum is P."""
    job_id = submit(alice, ntasks=7, sim_type="reported")
    tasks = status(alice, job_id)["job_tasks_status"]
    assert [t["task_id"] for t in tasks] == list(range(1, 8))
    assert requested(status(alice, job_id)) == [1429] * 4 + [1428] * 3
    assert sum(requested(status(alice, job_id))) == EX1_PRIMARIES
    assert all(t["simulated_primaries"] == 0 for t in tasks)


def test_ntasks_is_clamped_to_primaries_and_to_one(alice: httpx.Client) -> None:
    """§3.9: ntasks > P becomes P, ntasks < 1 becomes 1 (the list shows the clamped value)."""
    project = fixture_body()["input_json"]
    project["beam"]["numberOfParticles"] = 5
    job_id = submit(alice, ntasks=8, sim_type="reported", input_json=project)
    assert requested(status(alice, job_id)) == [1] * 5
    assert item_of(alice, job_id)["ntasks"] == 5
    assert (
        alice.get("/inputs", params={"job_id": job_id}).json()["input"]["number_of_all_primaries"]
        == 5
    )
    single = submit(alice, ntasks=0, sim_type="reported")
    assert requested(status(alice, single)) == [EX1_PRIMARIES]
    assert item_of(alice, single)["ntasks"] == 1


def test_ntasks_as_digit_string_is_accepted(alice: httpx.Client) -> None:
    """§3.9: ntasks may be a string of digits."""
    answer = alice.post("/jobs/direct", json=fixture_body(ntasks="3", sim_type="reported"))
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    assert requested(status(alice, job_id)) == [3334, 3333, 3333]


@pytest.mark.parametrize(
    "ntasks", [True, 1.5, "1.5", "three"], ids=["true", "fraction", "fraction-text", "word"]
)
def test_ntasks_booleans_and_fractions_are_refused(alice: httpx.Client, ntasks: Any) -> None:
    """§3.9: booleans and fractions (or other text) for ntasks give 400; nothing is stored."""
    before = listing(alice)["simulations_count"]
    body = fixture_body(ntasks=ntasks, sim_type="reported")
    error = assert_error(alice.post("/jobs/direct", json=body), 400)
    assert "ntasks" in error["message"]
    assert listing(alice)["simulations_count"] == before


# --- GET /jobs/direct, GET /jobs (§3.10, §3.13) ------------------------------------------


def test_case_23_status_at_once(alice: httpx.Client, job_id: str) -> None:
    """23: GET /jobs/direct?job_id=<#17> at once → 200; keys {message, job_state,
    job_tasks_status}; task_id 1, 2, 3; requested 3334, 3333, 3333."""
    answer = alice.get("/jobs/direct", params={"job_id": job_id})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == STATUS_KEYS
    assert body["job_state"] in JOB_STATES - {"UNKNOWN"}
    assert body["message"] == f"Job state: {body['job_state']}"
    assert [t["task_id"] for t in body["job_tasks_status"]] == [1, 2, 3]
    assert requested(body) == [3334, 3333, 3333]
    for task in body["job_tasks_status"]:
        assert set(task) >= TASK_KEYS
        assert 0 <= task["simulated_primaries"] <= task["requested_primaries"]
        http_date(task["last_update_time"])


def test_case_24_unknown_query_parameter_ignored(alice: httpx.Client, job_id: str) -> None:
    """24: GET /jobs/direct?job_id=<#17>&_=123 → 200; the unknown parameter is ignored."""
    answer = alice.get("/jobs/direct", params={"job_id": job_id, "_": "123"})
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == STATUS_KEYS
    assert [t["task_id"] for t in answer.json()["job_tasks_status"]] == [1, 2, 3]


def test_trailing_slash_is_served_without_redirect(alice: httpx.Client, job_id: str) -> None:
    """§1.1: GET /jobs/direct/?job_id=… is served like the path without the slash."""
    answer = alice.get("/jobs/direct/", params={"job_id": job_id}, follow_redirects=False)
    assert answer.status_code == 200, answer.text
    assert "location" not in answer.headers
    assert set(answer.json()) == STATUS_KEYS
    assert requested(answer.json()) == [3334, 3333, 3333]


def test_case_25_unknown_job(alice: httpx.Client) -> None:
    """25: GET /jobs/direct?job_id=nosuch → 404, message exactly
    Job with provided ID does not exist."""
    error = assert_error(alice.get("/jobs/direct", params={"job_id": "nosuch"}), 404)
    assert error["message"] == NOT_FOUND


def test_case_26_another_users_job(bob: httpx.Client, job_id: str) -> None:
    """26: GET /jobs/direct?job_id=<#17> as bob → 403 ⊇ {message, status_code}."""
    error = assert_error(bob.get("/jobs/direct", params={"job_id": job_id}), 403)
    assert "job_tasks_status" not in error


def test_case_27_status_without_job_id(alice: httpx.Client) -> None:
    """27: GET /jobs/direct without job_id → 400 ⊇ {message, status_code} (also when empty)."""
    assert_error(alice.get("/jobs/direct"), 400)
    assert_error(alice.get("/jobs/direct", params={"job_id": ""}), 400)


def test_case_28_poll_until_completed(finished: dict[str, Any]) -> None:
    """28: poll #17 until it ends → final COMPLETED; every task COMPLETED, simulated =
    requested, both times set."""
    assert set(finished) == STATUS_KEYS
    assert finished["job_state"] == "COMPLETED", finished
    assert finished["message"] == "Job state: COMPLETED"
    tasks = finished["job_tasks_status"]
    assert [t["task_id"] for t in tasks] == [1, 2, 3]
    for task in tasks:
        assert task["task_state"] == "COMPLETED"
        assert task["simulated_primaries"] == task["requested_primaries"]
        assert http_date(task["start_time"]) <= http_date(task["end_time"])
        assert "estimated_time" not in task
    assert sum(requested(finished)) == EX1_PRIMARIES


def test_case_29_status_for_any_platform(
    alice: httpx.Client, job_id: str, finished: dict[str, Any]
) -> None:
    """29: GET /jobs?job_id=<#17> → 200; keys {message, job_state, job_tasks_status}."""
    answer = alice.get("/jobs", params={"job_id": job_id})
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == STATUS_KEYS
    assert answer.json() == finished


# --- GET /inputs (§3.16) -------------------------------------------------------------------


def test_case_30_inputs_of_editor_job(alice: httpx.Client, job_id: str) -> None:
    """30: GET /inputs?job_id=<#17> → 200; keys {message, input}; input keys {input_type,
    input_files, input_json, number_of_all_primaries}; EDITOR; files ⊇ {beam.dat, detect.dat,
    geo.dat, info.json, mat.dat}; primaries 10000."""
    answer = alice.get("/inputs", params={"job_id": job_id})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"message", "input"}
    given = body["input"]
    assert set(given) == {"input_type", "input_files", "input_json", "number_of_all_primaries"}
    assert given["input_type"] == "EDITOR"
    assert set(given["input_files"]) >= EX1_FILES
    assert given["number_of_all_primaries"] == EX1_PRIMARIES
    assert given["input_json"] == fixture_body()["input_json"]
    nstat = NSTAT.search(given["input_files"]["beam.dat"])
    assert nstat is not None and float(nstat.group(1)) == EX1_PRIMARIES


def test_case_31_inputs_of_files_job(alice: httpx.Client) -> None:
    """31: GET /inputs for a files-mode job → 200; input keys {input_type, input_files,
    number_of_all_primaries}; FILES."""
    body = fixture_body(FILES_MODE, ntasks=2)
    answer = alice.post("/jobs/direct", json=body)
    assert answer.status_code == 202, answer.text
    assert set(answer.json()) == {"message", "job_id"}
    job_id = answer.json()["job_id"]
    assert requested(status(alice, job_id)) == [5000, 5000]
    answer = alice.get("/inputs", params={"job_id": job_id})
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"message", "input"}
    given = answer.json()["input"]
    assert set(given) == {"input_type", "input_files", "number_of_all_primaries"}
    assert given["input_type"] == "FILES"
    assert given["input_files"] == body["input_files"]
    assert given["number_of_all_primaries"] == EX1_PRIMARIES
    item = item_of(alice, job_id)
    assert item["input_type"] == "files"
    assert item["metadata"]["input_type"] == "FILES"


# --- GET /user/simulations (§3.18) --------------------------------------------------------


def test_case_41_list_newest_first(server: LiveServer) -> None:
    """41: submit 7 jobs; GET /user/simulations → 200; keys {message, simulations,
    page_count, simulations_count}; 7, 2 pages, 6 items, newest first; items ⊇ {job_id, title,
    start_time, end_time, sim_type, input_type, platform, ntasks, metadata, progress};
    metadata keys {platform, server, input_type, sim_type}; start_time is an HTTP-date."""
    with closing(login(server, "carol")) as carol:
        jobs = [submit(carol, ntasks=2, sim_type="reported", title=f"job {n}") for n in range(7)]
        first = listing(carol)
        assert first["simulations_count"] == 7
        assert first["page_count"] == 2
        items = first["simulations"]
        assert [i["job_id"] for i in items] == jobs[::-1][:6]
        second = listing(carol, page_idx=2)
        assert [i["job_id"] for i in second["simulations"]] == [jobs[0]]
        assert (second["simulations_count"], second["page_count"]) == (7, 2)
    for item, title in zip(items, [f"job {n}" for n in range(6, 0, -1)], strict=True):
        assert set(item) >= ITEM_KEYS
        assert item["title"] == title
        assert item["end_time"] is None
        assert (item["sim_type"], item["input_type"], item["platform"]) == (
            "reported",
            "editor",
            "direct",
        )
        assert item["ntasks"] == 2
        assert set(item["metadata"]) == METADATA_KEYS
        assert item["metadata"] == {
            "platform": "DIRECT",
            "server": "Cyclotron",
            "input_type": "EDITOR",
            "sim_type": "reported",
        }
        progress = item["progress"]
        assert progress["job_state"] == "PENDING"
        assert (progress["requested_primaries"], progress["simulated_primaries"]) == (10000, 0)
        assert (progress["tasks_total"], progress["tasks_pending"]) == (2, 2)
    starts = [http_date(item["start_time"]) for item in items]
    assert starts == sorted(starts, reverse=True)
    assert abs((datetime.now(UTC) - starts[0]).total_seconds()) < 600


def test_case_42_list_running_and_completed(mixed: tuple[httpx.Client, dict[str, str]]) -> None:
    """42: one RUNNING and one COMPLETED job in the list → the RUNNING item has no flat
    job_state and progress.job_state RUNNING; the COMPLETED item has job_state COMPLETED."""
    client, jobs = mixed
    running = item_of(client, jobs["RUNNING"])
    assert "job_state" not in running
    assert running["progress"]["job_state"] == "RUNNING"
    assert running["progress"]["tasks_running"] == 1
    assert running["progress"]["tasks_pending"] == 1
    assert running["progress"]["simulated_primaries"] == 10
    assert running["end_time"] is None
    pending = item_of(client, jobs["PENDING"])
    assert "job_state" not in pending
    assert pending["progress"]["job_state"] == "PENDING"
    completed = item_of(client, jobs["COMPLETED"])
    assert completed["job_state"] == "COMPLETED"
    assert completed["progress"]["job_state"] == "COMPLETED"
    assert completed["progress"]["tasks_completed"] == completed["progress"]["tasks_total"] == 1
    assert completed["progress"]["simulated_primaries"] == EX1_PRIMARIES
    assert http_date(completed["start_time"]) <= http_date(completed["end_time"])
    failed = item_of(client, jobs["FAILED"])
    assert failed["job_state"] == "FAILED"
    assert failed["progress"]["tasks_failed"] == 1


def test_case_43_page_size_clamped(server: LiveServer) -> None:
    """43: GET /user/simulations?page_size=1000 → 200; ≤ 100 items; page_count computed with
    100. Also: page_size 0 gives 400, a page past the end is empty."""
    with closing(login(server, "grace")) as grace:
        jobs = [submit(grace, ntasks=1, sim_type="reported") for _ in range(101)]
        body = listing(grace, page_size=1000)
        assert len(body["simulations"]) == 100
        assert body["simulations_count"] == 101
        assert body["page_count"] == 2
        assert [i["job_id"] for i in body["simulations"]] == jobs[::-1][:100]
        last = listing(grace, page_size=1000, page_idx=2)
        assert [i["job_id"] for i in last["simulations"]] == [jobs[0]]
        beyond = listing(grace, page_size=1000, page_idx=3)
        assert beyond["simulations"] == []
        assert (beyond["simulations_count"], beyond["page_count"]) == (101, 2)
        for bad in ({"page_size": 0}, {"page_size": -1}, {"page_size": "x"}, {"page_idx": 0}):
            assert_error(grace.get("/user/simulations", params=bad), 400)


def test_case_44_filter_by_state(mixed: tuple[httpx.Client, dict[str, str]]) -> None:
    """44: ?job_state=COMPLETED,FAILED → 200 listing only ended jobs; ?job_state=BOGUS → 400.
    Names are case-insensitive and empty items are ignored."""
    client, jobs = mixed
    ended = listing(client, job_state="COMPLETED,FAILED")
    assert {i["job_id"] for i in ended["simulations"]} == {jobs["COMPLETED"], jobs["FAILED"]}
    assert ended["simulations_count"] == 2 and ended["page_count"] == 1
    assert listed_ids(client, job_state="completed") == [jobs["COMPLETED"]]
    assert listed_ids(client, job_state=",Completed,,") == [jobs["COMPLETED"]]
    assert set(listed_ids(client, job_state="running,pending")) == {
        jobs["RUNNING"],
        jobs["PENDING"],
    }
    assert len(listed_ids(client)) == 4
    error = assert_error(client.get("/user/simulations", params={"job_state": "BOGUS"}), 400)
    assert "BOGUS" in error["message"] and "COMPLETED" in error["message"]
    assert_error(client.get("/user/simulations", params={"job_state": "COMPLETED,BOGUS"}), 400)


# --- DELETE /user/simulations (§3.19) -----------------------------------------------------


def test_case_45_delete_without_job_id(alice: httpx.Client) -> None:
    """45: DELETE /user/simulations without job_id → 400 ⊇ {message, status_code}."""
    assert_error(alice.delete("/user/simulations"), 400)
    error = assert_error(alice.delete("/user/simulations", params={"job_id": ""}), 400)
    assert error["message"] == "Missing job_id"


def test_case_46_delete_running_job(server: LiveServer, alice: httpx.Client) -> None:
    """46: DELETE /user/simulations of a RUNNING job → 409 ⊇ {message, status_code,
    job_state}; the job is still listed (a PENDING job is refused alike)."""
    job_id = running_job(server, alice)
    error = assert_error(alice.delete("/user/simulations", params={"job_id": job_id}), 409)
    assert error["job_state"] == "RUNNING"
    assert job_id in listed_ids(alice)
    assert status(alice, job_id)["job_state"] == "RUNNING"
    pending = submit(alice, ntasks=1, sim_type="reported")
    error = assert_error(alice.delete("/user/simulations", params={"job_id": pending}), 409)
    assert error["job_state"] == "PENDING"
    assert pending in listed_ids(alice)


def test_case_47_delete_owner_checks_and_completed(
    server: LiveServer, alice: httpx.Client, bob: httpx.Client
) -> None:
    """47: DELETE /user/simulations: bob on alice's job → 403; nosuch → 404; alice on her
    COMPLETED job → 200; afterwards GET /jobs for that job gives 404."""
    job_id = submit(alice, ntasks=1)
    assert wait_for(alice, job_id)["job_state"] == "COMPLETED"
    assert_error(bob.delete("/user/simulations", params={"job_id": job_id}), 403)
    assert job_id in listed_ids(alice)
    error = assert_error(alice.delete("/user/simulations", params={"job_id": "nosuch"}), 404)
    assert error["message"] == NOT_FOUND
    answer = alice.delete("/user/simulations", params={"job_id": job_id})
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"message"}
    error = assert_error(alice.get("/jobs", params={"job_id": job_id}), 404)
    assert error["message"] == NOT_FOUND
    for path in ("/jobs/direct", "/inputs", "/results"):
        assert_error(alice.get(path, params={"job_id": job_id}), 404)
    assert job_id not in listed_ids(alice)
    with server.client() as worker:
        late = worker.post(
            "/tasks",
            json={
                "simulation_id": job_id,
                "task_id": 1,
                "update_key": update_key(server, job_id),
                "update_dict": {"simulated_primaries": 1},
            },
        )
    assert_error(late, 404)


# --- DELETE /jobs/direct (§3.11) ----------------------------------------------------------


def test_case_48_cancel_running_job(server: LiveServer, alice: httpx.Client) -> None:
    """48: DELETE /jobs/direct of a RUNNING job → 200, job_state CANCELED; polls then show
    CANCELED and every task terminal."""
    job_id = running_job(server, alice, ntasks=3)
    answer = alice.delete("/jobs/direct", params={"job_id": job_id})
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"message", "job_state"}
    assert answer.json()["job_state"] == "CANCELED"
    after = status(alice, job_id)
    assert after["job_state"] == "CANCELED"
    assert [t["task_state"] for t in after["job_tasks_status"]] == ["CANCELED"] * 3
    assert all(t["task_state"] in TERMINAL for t in after["job_tasks_status"])
    item = item_of(alice, job_id)
    assert item["job_state"] == "CANCELED"
    assert http_date(item["end_time"]) >= http_date(item["start_time"])
    again = alice.delete("/jobs/direct", params={"job_id": job_id})
    assert again.status_code == 200, again.text
    assert again.json()["job_state"] == "CANCELED"
    assert status(alice, job_id) == after


def test_case_49_cancel_completed_job(
    alice: httpx.Client, job_id: str, finished: dict[str, Any]
) -> None:
    """49: DELETE /jobs/direct of a COMPLETED job → 200, job_state COMPLETED; nothing
    changes."""
    listed = item_of(alice, job_id)
    answer = alice.delete("/jobs/direct", params={"job_id": job_id})
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"message", "job_state"}
    assert answer.json()["job_state"] == "COMPLETED"
    assert "COMPLETED" in answer.json()["message"]
    assert status(alice, job_id) == finished
    assert item_of(alice, job_id) == listed
    assert alice.get("/results", params={"job_id": job_id}).status_code == 200


# --- Clusters (§3.12, §3.21, §6) ----------------------------------------------------------


def test_case_50_no_cluster_access(server: LiveServer) -> None:
    """50: POST /jobs/batch and GET /clusters without cluster access → 403, 403 ⊇ {message,
    status_code}; the other /jobs/batch methods are refused alike and nothing is stored."""
    with closing(login(server, "heidi")) as heidi:
        direct = submit(heidi, ntasks=1, sim_type="reported")
        assert_error(heidi.post("/jobs/batch", json=fixture_body(ntasks=2)), 403)
        assert_error(heidi.get("/clusters"), 403)
        assert_error(heidi.get("/jobs/batch", params={"job_id": direct}), 403)
        assert_error(heidi.delete("/jobs/batch", params={"job_id": direct}), 403)
        assert listed_ids(heidi) == [direct]
        assert status(heidi, direct)["job_state"] == "PENDING"


def test_case_51_clusters_with_access(server: LiveServer) -> None:
    """51: GET /clusters with access → 200; keys {message, clusters}; items ⊇ {cluster_name,
    display_name, available}. Access and clusters come from the command line."""
    with closing(login(server, "ivan")) as ivan:
        assert_error(ivan.get("/clusters"), 403)
        cli(server, "clusters", "add", "ares", "--display-name", "Ares (Cyfronet)")
        cli(server, "users", "grant-clusters", "ivan")
        answer = ivan.get("/clusters")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"message", "clusters"}
        assert isinstance(body["message"], str) and body["message"]
        for cluster in body["clusters"]:
            assert set(cluster) >= {"cluster_name", "display_name", "available"}
        ares = [c for c in body["clusters"] if c["cluster_name"] == "ares"]
        assert len(ares) == 1
        assert ares[0]["display_name"] == "Ares (Cyfronet)"
        assert ares[0]["available"] is True
