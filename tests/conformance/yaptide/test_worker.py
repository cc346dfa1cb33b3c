"""Worker callbacks of the YAPTIDE face (yaptide.md §4, §5; §7.3–§7.4): checklist cases 52–57
and 60, with the rest of §4's rules.

Every job here runs on the ``reported`` service: nothing runs its tasks, and the test plays the
worker, reporting through the worker routes with the job's update key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from support.live import LiveServer
from support.yaptide import assert_error, status, submit, update_key, wait_for

UNKNOWN_SIMULATION = "Simulation does not exist"


@dataclass
class Worker:
    """A worker of one job, posting with that job's id and a key (the job's own unless told)."""

    client: httpx.Client
    job_id: str
    key: str

    def post(self, path: str, **fields: Any) -> httpx.Response:
        body = {"simulation_id": self.job_id, "update_key": self.key, **fields}
        return self.client.post(path, json=body)

    def task(self, task_id: int | str, **update: Any) -> httpx.Response:
        return self.post("/tasks", task_id=task_id, update_dict=update)


def estimator(values: Sequence[float], primaries: int = 10_000) -> dict[str, Any]:
    """A small one-page estimator in the wire format of results.md (§2, §3)."""
    return {
        "name": "z_profile",
        "metadata": {
            "file_corename": "z_profile",
            "number_of_primaries": str(primaries),
            "file_counter": "1",
            "page_count": "1",
        },
        "pages": [
            {
                "dimensions": 1,
                "data": {"name": "DOSE", "unit": "MeV/g/prim", "values": list(values)},
                "axis_dim1": {"name": "Position (Z)", "unit": "cm", "values": [0.5, 1.5]},
                "metadata": {"page_number": "0", "name": "DOSE", "page_normalized": "2"},
            }
        ],
    }


def task_status(client: httpx.Client, job_id: str, task_id: int) -> dict[str, Any]:
    item: dict[str, Any] = status(client, job_id)["job_tasks_status"][task_id - 1]
    assert item["task_id"] == task_id
    return item


def logfiles(client: httpx.Client, job_id: str) -> dict[str, str]:
    answer = client.get("/logfiles", params={"job_id": job_id})
    assert answer.status_code == 200, answer.text
    found: dict[str, str] = answer.json()["logfiles"]
    return found


@pytest.fixture
def job(alice: httpx.Client) -> str:
    """A fresh 3-task job whose tasks only workers report on."""
    return submit(alice, ntasks=3, sim_type="reported")


@pytest.fixture
def worker(server: LiveServer, anonymous: httpx.Client, job: str) -> Worker:
    return Worker(anonymous, job, update_key(server, job))


def test_case_52_a_wrong_key_is_refused(
    server: LiveServer, alice: httpx.Client, worker: Worker
) -> None:
    """#52 `POST /tasks` with a wrong key; with job B's key on job A → 403, 403; task
    unchanged."""
    before = status(alice, worker.job_id)
    wrong = Worker(worker.client, worker.job_id, "0" * 64)
    assert_error(wrong.task(1, task_state="RUNNING", simulated_primaries=5), 403)
    other_job = submit(alice, ntasks=1, sim_type="reported")
    borrowed = Worker(worker.client, worker.job_id, update_key(server, other_job))
    assert_error(borrowed.task(1, task_state="RUNNING", simulated_primaries=5), 403)
    assert status(alice, worker.job_id) == before
    assert before["job_tasks_status"][0]["task_state"] == "PENDING"
    # The key itself is good, for its own job.
    own = Worker(worker.client, other_job, borrowed.key)
    assert own.task(1, task_state="RUNNING").status_code == 202


def test_case_53_a_repeated_update_changes_nothing(alice: httpx.Client, worker: Worker) -> None:
    """#53 `POST /tasks` `{task_state: RUNNING, simulated_primaries: 5}`, twice → 202, 202;
    status shows RUNNING, 5; unchanged after the second call."""
    first = worker.task(1, task_state="RUNNING", simulated_primaries=5)
    assert first.status_code == 202, first.text
    after_first = status(alice, worker.job_id)
    task = after_first["job_tasks_status"][0]
    assert (task["task_state"], task["simulated_primaries"]) == ("RUNNING", 5)
    assert "start_time" in task and "end_time" not in task
    assert after_first["job_state"] == "RUNNING"

    second = worker.task(1, task_state="RUNNING", simulated_primaries=5)
    assert second.status_code == 202, second.text
    assert status(alice, worker.job_id) == after_first


def test_case_54_primaries_never_decrease(alice: httpx.Client, worker: Worker) -> None:
    """#54 Then `POST /tasks` `{simulated_primaries: 3}` → 202; still 5."""
    assert worker.task(1, task_state="RUNNING", simulated_primaries=5).status_code == 202
    answer = worker.task(1, simulated_primaries=3)
    assert answer.status_code == 202, answer.text
    task = task_status(alice, worker.job_id, 1)
    assert (task["task_state"], task["simulated_primaries"]) == ("RUNNING", 5)
    # A larger count still applies, capped at the task's share.
    assert worker.task(1, simulated_primaries=10**9).status_code == 202
    task = task_status(alice, worker.job_id, 1)
    assert task["simulated_primaries"] == task["requested_primaries"] == 3334


def test_case_55_a_completed_task_ignores_updates(alice: httpx.Client, worker: Worker) -> None:
    """#55 `POST /tasks` RUNNING to a COMPLETED task → 202; unchanged; message says ignored."""
    assert worker.task(2, task_state="COMPLETED").status_code == 202
    before = status(alice, worker.job_id)
    assert before["job_tasks_status"][1]["task_state"] == "COMPLETED"

    answer = worker.task(2, task_state="RUNNING", simulated_primaries=5)
    assert answer.status_code == 202, answer.text
    assert "ignored" in answer.json()["message"].lower()
    assert status(alice, worker.job_id) == before


def test_case_56_bulk_updates_reject_items_alone(alice: httpx.Client, worker: Worker) -> None:
    """#56 `POST /tasks/bulk`, 2 valid items and 1 unknown task_id → 202; ⊇ `{message, applied,
    ignored, rejected}`; one rejected item."""
    answer = worker.post(
        "/tasks/bulk",
        tasks=[
            {"task_id": 1, "update_dict": {"task_state": "RUNNING", "simulated_primaries": 10}},
            {"task_id": 99, "update_dict": {"task_state": "RUNNING"}},
            {"task_id": "3", "update_dict": {"task_state": "COMPLETED"}},
        ],
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert {"message", "applied", "ignored", "rejected"} <= set(body)
    assert (body["applied"], body["ignored"]) == (2, 0)
    assert len(body["rejected"]) == 1
    assert body["rejected"][0]["task_id"] == 99 and body["rejected"][0]["message"]

    tasks = status(alice, worker.job_id)["job_tasks_status"]
    assert [(t["task_state"], t["simulated_primaries"]) for t in tasks] == [
        ("RUNNING", 10),
        ("PENDING", 0),
        ("COMPLETED", 3333),
    ]


def test_case_57_an_unknown_task_is_404(alice: httpx.Client, worker: Worker) -> None:
    """#57 `POST /tasks` with `task_id` 99 → 404; ⊇ `{message, status_code}`."""
    before = status(alice, worker.job_id)
    assert_error(worker.task(99, task_state="RUNNING"), 404)
    assert_error(worker.task("99", simulated_primaries=1), 404)
    assert status(alice, worker.job_id) == before


def test_case_60_final_results_are_immutable(alice: httpx.Client, worker: Worker) -> None:
    """#60 Final `POST /results` twice with the same data, then with different data → 202, 202,
    409; stored results unchanged."""
    results = [estimator([0.25, 0.5])]
    first = worker.post("/results", estimators=results)
    assert first.status_code == 202, first.text
    final = status(alice, worker.job_id)
    assert final["job_state"] == "COMPLETED"
    for task in final["job_tasks_status"]:
        assert task["task_state"] == "COMPLETED"
        assert task["simulated_primaries"] == task["requested_primaries"]
        assert "start_time" in task and "end_time" in task
    stored = alice.get("/results", params={"job_id": worker.job_id})
    assert stored.status_code == 200, stored.text
    assert stored.json()["estimators"] == results

    again = worker.post("/results", estimators=results)
    assert again.status_code == 202, again.text
    different = worker.post("/results", estimators=[estimator([0.25, 0.75])])
    assert_error(different, 409)
    now = alice.get("/results", params={"job_id": worker.job_id})
    assert now.status_code == 200, now.text
    assert now.json() == stored.json()
    assert status(alice, worker.job_id) == final


def test_a_completed_task_gets_its_share_and_both_times(
    alice: httpx.Client, worker: Worker
) -> None:
    """COMPLETED sets simulated = requested, and a task that ends unstarted gets both times
    (§4.2 rules 4 and 6)."""
    answer = worker.task(3, task_state="COMPLETED", simulated_primaries=7)
    assert answer.status_code == 202, answer.text
    task = task_status(alice, worker.job_id, 3)
    assert task["task_state"] == "COMPLETED"
    assert task["simulated_primaries"] == task["requested_primaries"] == 3333
    assert task["start_time"] == task["end_time"]
    assert "estimated_time" not in task
    assert status(alice, worker.job_id)["job_state"] == "RUNNING"


def test_worker_times_are_parsed_and_set_once(alice: httpx.Client, worker: Worker) -> None:
    """Worker times ``YYYY-mm-dd HH:MM:SS[.ffffff]`` (UTC) and ISO 8601 are accepted, set once,
    and shown as HTTP-dates; anything else gives 400 (§1.5, §4.2)."""
    started = worker.task(1, task_state="RUNNING", start_time="2024-11-19 16:24:42.123456")
    assert started.status_code == 202, started.text
    later = worker.task(1, start_time="2024-11-19 17:00:00", estimated_time=65)
    assert later.status_code == 202, later.text
    task = task_status(alice, worker.job_id, 1)
    assert task["start_time"] == "Tue, 19 Nov 2024 16:24:42 GMT"
    assert task["estimated_time"] == {"hours": 0, "minutes": 1, "seconds": 5}

    for bad in ("19/11/2024 16:24", "yesterday", 1732033482):
        assert_error(worker.task(2, task_state="RUNNING", start_time=bad), 400)
    assert task_status(alice, worker.job_id, 2)["task_state"] == "PENDING"

    ended = worker.task(1, task_state="COMPLETED", end_time="2024-11-19T17:24:46+01:00")
    assert ended.status_code == 202, ended.text
    task = task_status(alice, worker.job_id, 1)
    assert task["start_time"] == "Tue, 19 Nov 2024 16:24:42 GMT"
    assert task["end_time"] == "Tue, 19 Nov 2024 16:24:46 GMT"
    assert "estimated_time" not in task
    bare = worker.task(2, task_state="RUNNING", start_time="2024-11-19 16:30:00")
    assert bare.status_code == 202, bare.text
    assert task_status(alice, worker.job_id, 2)["start_time"] == "Tue, 19 Nov 2024 16:30:00 GMT"


def test_a_worker_cannot_set_other_task_states(alice: httpx.Client, worker: Worker) -> None:
    """From a worker, task_state PENDING, UNKNOWN and CANCELED give 400 (§4.2 rule 3)."""
    assert worker.task(1, task_state="RUNNING", simulated_primaries=5).status_code == 202
    before = status(alice, worker.job_id)
    for state in ("PENDING", "UNKNOWN", "CANCELED", "BOGUS"):
        assert_error(worker.task(1, task_state=state), 400)
        assert_error(worker.task(2, task_state=state), 400)
    assert status(alice, worker.job_id) == before


def test_an_unknown_simulation_is_404(anonymous: httpx.Client, worker: Worker) -> None:
    """Every worker route answers an unknown simulation with 404 "Simulation does not exist"
    (§4.1), whatever the key."""
    for simulation in ("nosuch", f"{worker.job_id[:-6]}BATCH"):
        stranger = Worker(anonymous, simulation, worker.key)
        answers = [
            stranger.task(1, task_state="RUNNING"),
            stranger.post("/tasks/bulk", tasks=[{"task_id": 1, "update_dict": {}}]),
            stranger.post("/jobs", job_state="FAILED"),
            stranger.post("/results", estimators=[estimator([1.0, 2.0])]),
            stranger.post("/logfiles", logfiles={"a.log": "text"}),
            anonymous.post(
                "/jobs",
                json={"sim_id": simulation, "update_key": worker.key, "job_state": "FAILED"},
            ),
        ]
        for answer in answers:
            assert assert_error(answer, 404)["message"] == UNKNOWN_SIMULATION, answer.request.url


def test_per_task_results_are_merged_when_the_last_task_ends(
    server: LiveServer, alice: httpx.Client, anonymous: httpx.Client
) -> None:
    """Per-task `POST /results` (with task_id) wait for the last task to end; the server then
    merges them, weighted, and the job ends COMPLETED (§4.5, §5.3)."""
    job_id = submit(alice, ntasks=2, sim_type="reported")
    worker = Worker(anonymous, job_id, update_key(server, job_id))
    uploads = {1: [2.0, 0.4], 2: [3.0, 0.5]}
    for task_id, values in uploads.items():
        answer = worker.post("/results", task_id=task_id, estimators=[estimator(values, 5000)])
        assert answer.status_code == 202, answer.text
    assert status(alice, job_id)["job_state"] == "PENDING"

    assert worker.task(1, task_state="COMPLETED").status_code == 202
    assert status(alice, job_id)["job_state"] == "RUNNING"
    assert_error(alice.get("/results", params={"job_id": job_id}), 404)
    assert worker.task(2, task_state="COMPLETED").status_code == 202
    final = wait_for(alice, job_id)
    assert final["job_state"] == "COMPLETED", final

    answer = alice.get("/results", params={"job_id": job_id})
    assert answer.status_code == 200, answer.text
    (merged,) = answer.json()["estimators"]
    assert merged["name"] == "z_profile"
    assert merged["metadata"]["number_of_primaries"] == "10000"
    assert merged["metadata"]["file_counter"] == "2"
    page = merged["pages"][0]
    for k, (a, b) in enumerate(zip(uploads[1], uploads[2], strict=True)):
        assert math.isclose(page["data"]["values"][k], (a + b) / 2, rel_tol=1e-9)
        # Two equal weights: the standard error of the mean is |a - b| / 2.
        assert math.isclose(page["error"]["values"][k], abs(a - b) / 2, rel_tol=1e-9)


def test_a_failed_job_report_fails_its_tasks_and_keeps_its_log(
    alice: httpx.Client, worker: Worker
) -> None:
    """`POST /jobs` `{job_state: FAILED, log}` → FAILED, open tasks FAILED, the log shown as
    `job/<name>` (§4.4)."""
    assert worker.task(1, task_state="RUNNING").status_code == 202
    assert worker.task(2, task_state="COMPLETED").status_code == 202
    answer = worker.post(
        "/jobs", job_state="FAILED", log={"error": "collect step ran out of memory"}
    )
    assert answer.status_code == 202, answer.text
    final = status(alice, worker.job_id)
    assert final["job_state"] == "FAILED"
    states = [t["task_state"] for t in final["job_tasks_status"]]
    assert states == ["FAILED", "COMPLETED", "FAILED"]
    assert all("end_time" in t for t in final["job_tasks_status"])
    assert logfiles(alice, worker.job_id)["job/error"] == "collect step ran out of memory"

    # A terminal job ignores further reports, and results for it are not stored.
    assert worker.post("/jobs", job_state="RUNNING").status_code == 202
    assert worker.task(1, task_state="COMPLETED").status_code == 202
    assert worker.post("/results", estimators=[estimator([1.0, 2.0])]).status_code == 202
    assert status(alice, worker.job_id) == final
    assert_error(alice.get("/results", params={"job_id": worker.job_id}), 404)


def test_a_job_cannot_complete_without_results(alice: httpx.Client, worker: Worker) -> None:
    """`POST /jobs` COMPLETED before final results are stored → 409 (§4.4)."""
    assert worker.task(1, task_state="RUNNING").status_code == 202
    before = status(alice, worker.job_id)
    assert_error(worker.post("/jobs", job_state="COMPLETED"), 409)
    assert status(alice, worker.job_id) == before
    assert_error(worker.post("/jobs", job_state="CANCELED"), 400)


def test_log_files_are_stored_by_task_and_replaced_by_name(
    alice: httpx.Client, worker: Worker
) -> None:
    """`POST /logfiles` stores `task-<k>/<name>` (with task_id) or `job/<name>`; the same name
    replaces (§4.6)."""
    first = worker.post("/logfiles", task_id=3, logfiles={"shieldhit_0003.log": "first run"})
    assert first.status_code == 202, first.text
    assert logfiles(alice, worker.job_id) == {"task-3/shieldhit_0003.log": "first run"}

    again = worker.post("/logfiles", task_id="3", logfiles={"shieldhit_0003.log": "second run"})
    assert again.status_code == 202, again.text
    job_level = worker.post("/logfiles", logfiles={"submit.log": "submitted"})
    assert job_level.status_code == 202, job_level.text
    assert logfiles(alice, worker.job_id) == {
        "task-3/shieldhit_0003.log": "second run",
        "job/submit.log": "submitted",
    }
    assert_error(worker.post("/logfiles", task_id=99, logfiles={"x.log": "text"}), 404)
