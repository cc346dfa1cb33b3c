"""Results, estimators and logs of simulations (yaptide.md §3.14–§3.17, §5.3; results.md §6):
checklist cases 32–40, 58 and 59.
"""

from __future__ import annotations

import json
import math
import tomllib
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.live import LiveServer
from support.yaptide import (
    UI_ORIGIN,
    assert_cors,
    assert_error,
    fixture_body,
    status,
    submit,
    update_key,
    wait_for,
)

from cyclotron.storage.database import Database
from cyclotron.storage.tables import JobRow


def outputs() -> list[dict[str, Any]]:
    """The editor project's scoring outputs (read when a test runs: the fixtures may be absent)."""
    found: list[dict[str, Any]] = fixture_body()["input_json"]["scoringManager"]["outputs"]
    return found


PRIMARIES = 10_000
# page_normalized values merged by a primaries-weighted mean, with an error (results.md §6.1).
WEIGHTED = {"2", "3"}


def internal_job_id(server: LiveServer, job_id: str) -> str:
    """The job's id inside Cyclotron (its directory's name), read from the server's database."""
    url = tomllib.loads(server.config_path.read_text())["server"]["database_url"]
    database = Database(url)
    try:
        with database.transaction(write=False) as session:
            found = session.scalar(select(JobRow.id).where(JobRow.yaptide_id == job_id))
    finally:
        database.dispose()
    assert found is not None, f"no job {job_id} in the database"
    return str(found)


def task_estimators(server: LiveServer, job_id: str, index: int) -> list[dict[str, Any]]:
    """One task's own output, as the engine left it in its task directory."""
    task_dir = server.data_dir / "jobs" / internal_job_id(server, job_id) / "tasks" / str(index)
    estimators: list[dict[str, Any]] = json.loads((task_dir / "estimators.json").read_text())[
        "estimators"
    ]
    return estimators


def mean_and_error(values: list[float], weights: list[float]) -> tuple[float, float]:
    """The weighted mean of one bin and its standard error (results.md §6.2)."""
    total = sum(weights)
    squares = sum(w * w for w in weights)
    mean = sum(w * x for w, x in zip(weights, values, strict=True)) / total
    spread = sum(w * (x - mean) ** 2 for w, x in zip(weights, values, strict=True))
    variance = spread / (total - squares / total)
    return mean, math.sqrt(variance) * math.sqrt(squares) / total


def pages_by_number(estimator: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(page["metadata"]["page_number"]): page for page in estimator["pages"]}


def results(client: httpx.Client, job_id: str, **params: Any) -> httpx.Response:
    return client.get("/results", params={"job_id": job_id, **params})


@pytest.fixture(scope="module")
def ex1_job(alice: httpx.Client) -> str:
    """A 3-task ex1 job of the SHIELD-HIT12A double, completed."""
    job_id = submit(alice, ntasks=3)
    final = wait_for(alice, job_id)
    assert final["job_state"] == "COMPLETED", final
    return job_id


@pytest.fixture(scope="module")
def ex1_estimators(alice: httpx.Client, ex1_job: str) -> list[dict[str, Any]]:
    answer = results(alice, ex1_job)
    assert answer.status_code == 200, answer.text
    estimators: list[dict[str, Any]] = answer.json()["estimators"]
    return estimators


def test_case_32_results_of_a_completed_job(
    server: LiveServer, alice: httpx.Client, ex1_job: str
) -> None:
    """#32 `GET /results?job_id=<#17>` → 200; keys `{message, estimators}`; each estimator has
    keys `{name, metadata, pages}`, in output order."""
    answer = results(alice, ex1_job)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"message", "estimators"}
    estimators = body["estimators"]
    assert [e["name"] for e in estimators] == [str(output["name"]) for output in outputs()]
    for estimator, output in zip(estimators, outputs(), strict=True):
        assert set(estimator) == {"name", "metadata", "pages"}
        numbers = [int(page["metadata"]["page_number"]) for page in estimator["pages"]]
        assert numbers == list(range(len(output["quantities"]))), estimator["name"]
        metadata = estimator["metadata"]
        assert metadata["number_of_primaries"] == str(PRIMARIES)
        assert metadata["file_counter"] == "3"
        assert metadata["page_count"] == str(len(estimator["pages"]))

    # The merge is the primaries-weighted mean of the three tasks' own outputs, with its error.
    tasks = [task_estimators(server, ex1_job, index) for index in range(3)]
    weights = [float(t[0]["metadata"]["number_of_primaries"]) for t in tasks]
    assert sum(weights) == PRIMARIES
    compared = 0
    for estimator in estimators:
        own = [pages_by_number(next(e for e in t if e["name"] == estimator["name"])) for t in tasks]
        for number, page in pages_by_number(estimator).items():
            assert page["metadata"]["page_normalized"] in WEIGHTED
            errors = page["error"]["values"]
            assert page["error"]["unit"] == page["data"]["unit"]
            assert len(errors) == len(page["data"]["values"])
            for k, merged in enumerate(page["data"]["values"]):
                values = [pages[number]["data"]["values"][k] for pages in own]
                if any(v is None for v in values):
                    assert merged is None and errors[k] is None
                    continue
                mean, error = mean_and_error(values, weights)
                assert math.isclose(merged, mean, rel_tol=1e-9), (estimator["name"], number, k)
                assert math.isclose(errors[k], error, rel_tol=1e-9), (estimator["name"], number, k)
                compared += 1
    assert compared > 60_000  # every bin of every page, the 2-D ones included
    # The tasks' values differ, so the merged DOSE is not any one task's.
    dose = pages_by_number(estimators[0])[0]["data"]["values"]
    assert all(pages_by_number(t[0])[0]["data"]["values"] != dose for t in tasks)


def test_case_33_one_estimator(
    alice: httpx.Client, ex1_job: str, ex1_estimators: list[dict[str, Any]]
) -> None:
    """#33 `…&estimator_name=<first>` → 200; keys `{message, name, metadata, pages}`; equals
    `estimators[0]`."""
    first = ex1_estimators[0]
    answer = results(alice, ex1_job, estimator_name=first["name"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"message", "name", "metadata", "pages"}
    assert {k: v for k, v in body.items() if k != "message"} == first
    # Old scripts ask with the engine's trailing underscore.
    legacy = results(alice, ex1_job, estimator_name=f"{first['name']}_")
    assert legacy.status_code == 200, legacy.text
    assert legacy.json()["name"] == first["name"]


def test_case_34_unknown_estimator(alice: httpx.Client, ex1_job: str) -> None:
    """#34 `…&estimator_name=nosuch` → 404; ⊇ `{message, status_code}`."""
    assert_error(results(alice, ex1_job, estimator_name="nosuch"), 404)
    assert_error(results(alice, ex1_job, estimator_name="nosuch", page_number=0), 404)


def test_case_35_one_page(
    alice: httpx.Client, ex1_job: str, ex1_estimators: list[dict[str, Any]]
) -> None:
    """#35 `…&estimator_name=<first>&page_number=0` → 200; keys `{message, page}`; equals
    `pages[0]`."""
    first = ex1_estimators[0]
    answer = results(alice, ex1_job, estimator_name=first["name"], page_number=0)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"message", "page"}
    assert body["page"] == first["pages"][0]
    # page_number wins over page_numbers.
    both = results(alice, ex1_job, estimator_name=first["name"], page_number=2, page_numbers="0-1")
    assert both.status_code == 200, both.text
    assert set(both.json()) == {"message", "page"}
    assert both.json()["page"] == first["pages"][2]
    assert_error(results(alice, ex1_job, estimator_name=first["name"], page_number=99), 404)
    assert_error(results(alice, ex1_job, estimator_name=first["name"], page_number=-1), 400)


def test_case_36_several_pages(
    alice: httpx.Client, ex1_job: str, ex1_estimators: list[dict[str, Any]]
) -> None:
    """#36 `…&estimator_name=<one with ≥ 4 pages>&page_numbers=0-1,3` → 200; keys
    `{message, pages}`; page numbers [0, 1, 3]."""
    chosen = next(e for e in ex1_estimators if len(e["pages"]) >= 4)
    assert chosen["name"] == "z_profile"
    answer = results(alice, ex1_job, estimator_name=chosen["name"], page_numbers="0-1,3")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"message", "pages"}
    assert [int(p["metadata"]["page_number"]) for p in body["pages"]] == [0, 1, 3]
    assert body["pages"] == [chosen["pages"][n] for n in (0, 1, 3)]
    # The union, deduplicated and ascending; spaces allowed; absent pages skipped.
    mixed = results(alice, ex1_job, estimator_name="z_profile_", page_numbers=" 3, 1 - 1,0-1,7-9")
    assert mixed.status_code == 200, mixed.text
    assert [int(p["metadata"]["page_number"]) for p in mixed.json()["pages"]] == [0, 1, 3]


def test_case_37_malformed_page_numbers(
    alice: httpx.Client, ex1_job: str, ex1_estimators: list[dict[str, Any]]
) -> None:
    """#37 `…&estimator_name=<first>&page_numbers=1-x` → 400; ⊇ `{message, status_code}`."""
    first = ex1_estimators[0]["name"]
    assert_error(results(alice, ex1_job, estimator_name=first, page_numbers="1-x"), 400)
    for bad in ("3-1", "-1", "1,,2", "0-10000"):  # the last is 10,001 numbers
        assert_error(results(alice, ex1_job, estimator_name=first, page_numbers=bad), 400)
    assert results(alice, ex1_job, estimator_name=first, page_numbers="0-9999").status_code == 200
    for params in ({"page_number": 0}, {"page_numbers": "0-1"}):
        assert_error(results(alice, ex1_job, **params), 400)


def test_case_38_results_are_cached(alice: httpx.Client, ex1_job: str) -> None:
    """#38 `GET /results` twice, the second with `If-None-Match: <ETag>` → 200, 304; the first
    has an ETag and `Cache-Control: private, no-cache`; the 304 has no body, with CORS
    headers."""
    origin = {"Origin": UI_ORIGIN}
    first = alice.get("/results", params={"job_id": ex1_job}, headers=origin)
    assert first.status_code == 200, first.text
    etag = first.headers.get("etag", "")
    assert etag.startswith('W/"') and etag.endswith('"') and len(etag) > 4
    assert first.headers.get("cache-control") == "private, no-cache"
    assert_cors(first)

    again = alice.get(
        "/results", params={"job_id": ex1_job}, headers={**origin, "If-None-Match": etag}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers.get("etag") == etag
    assert again.headers.get("cache-control") == "private, no-cache"
    assert_cors(again)

    # The tag names the query too: another selection of the same results is sent in full.
    other = alice.get(
        "/results",
        params={"job_id": ex1_job, "estimator_name": "peak"},
        headers={**origin, "If-None-Match": etag},
    )
    assert other.status_code == 200, other.text
    assert other.headers.get("etag") not in (None, etag)


def test_case_39_no_results_while_running(
    server: LiveServer, alice: httpx.Client, anonymous: httpx.Client
) -> None:
    """#39 `GET /results` while the job is RUNNING → 404; message `Results are unavailable`."""
    job_id = submit(alice, ntasks=2, sim_type="reported")
    report = anonymous.post(
        "/tasks",
        json={
            "simulation_id": job_id,
            "task_id": 1,
            "update_key": update_key(server, job_id),
            "update_dict": {"task_state": "RUNNING", "simulated_primaries": 100},
        },
    )
    assert report.status_code == 202, report.text
    assert status(alice, job_id)["job_state"] == "RUNNING"
    body = assert_error(results(alice, job_id), 404)
    assert body["message"] == "Results are unavailable"
    assert_error(alice.get("/estimators", params={"job_id": job_id}), 404)


def test_case_40_estimators_metadata(
    alice: httpx.Client, ex1_job: str, ex1_estimators: list[dict[str, Any]]
) -> None:
    """#40 `GET /estimators?job_id=<#17>` → 200; keys `{message, estimators_metadata}`; names
    equal #32 in order; page items have keys `{page_number, page_name, page_dimension}` with
    integers."""
    answer = alice.get("/estimators", params={"job_id": ex1_job})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"message", "estimators_metadata"}
    listed = body["estimators_metadata"]
    assert [item["name"] for item in listed] == [e["name"] for e in ex1_estimators]
    for item, estimator in zip(listed, ex1_estimators, strict=True):
        pages = item["pages_metadata"]
        assert len(pages) == len(estimator["pages"])
        for entry, page in zip(pages, estimator["pages"], strict=True):
            assert set(entry) == {"page_number", "page_name", "page_dimension"}
            assert type(entry["page_number"]) is int and type(entry["page_dimension"]) is int
            assert entry["page_number"] == int(page["metadata"]["page_number"])
            assert entry["page_name"] == page["data"]["name"]
            assert entry["page_dimension"] == page["dimensions"]


def test_case_58_every_task_fails(alice: httpx.Client) -> None:
    """#58 A job whose every task fails → final FAILED; `GET /logfiles` 200 with `task-<k>/…`
    for every task; `GET /results` 404."""
    job_id = submit(alice, ntasks=3, sim_type="failing")
    final = wait_for(alice, job_id)
    assert final["job_state"] == "FAILED", final
    assert [t["task_state"] for t in final["job_tasks_status"]] == ["FAILED"] * 3

    answer = alice.get("/logfiles", params={"job_id": job_id})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"message", "logfiles"}
    logs = body["logfiles"]
    for k in (1, 2, 3):
        own = {name: text for name, text in logs.items() if name.startswith(f"task-{k}/")}
        assert any("particle lost in geometry" in text for text in own.values()), (k, list(logs))
    assert "job/summary.txt" in logs

    assert_error(results(alice, job_id), 404)


def test_case_59_one_task_of_four_fails(alice: httpx.Client) -> None:
    """#59 A 4-task job whose task 2 fails → final COMPLETED; task 2 FAILED, the others
    COMPLETED; the message mentions the failure; `/results` 200; `/logfiles` ⊇
    `job/summary.txt`."""
    job_id = submit(alice, ntasks=4, sim_type="flaky")
    final = wait_for(alice, job_id)
    assert final["job_state"] == "COMPLETED", final
    states = [t["task_state"] for t in final["job_tasks_status"]]
    assert states == ["COMPLETED", "FAILED", "COMPLETED", "COMPLETED"]
    assert "fail" in final["message"].lower(), final["message"]

    answer = results(alice, job_id)
    assert answer.status_code == 200, answer.text
    # Only the completed tasks count: 3 of the 4 shares of 2500 primaries.
    for estimator in answer.json()["estimators"]:
        assert estimator["metadata"]["number_of_primaries"] == "7500"
        assert estimator["metadata"]["file_counter"] == "3"

    logs = alice.get("/logfiles", params={"job_id": job_id})
    assert logs.status_code == 200, logs.text
    texts = logs.json()["logfiles"]
    assert any(name.startswith("task-2/") for name in texts), list(texts)
    summary = texts["job/summary.txt"]
    assert any("2" in line and "FAILED" in line for line in summary.splitlines()), summary
