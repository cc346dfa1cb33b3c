"""The YAPTIDE web UI against a server configured with nothing (issue 19).

The UI only ever sends sim_type ``shieldhit`` or ``fluka``. With the default services, and
no engine executable configured, ``shieldhit`` runs on the builtin engine and ``fluka`` on
MCsquare where the project fits it (else a 400 that says what to configure); the services
list, each task's first log line and the job's metadata say which engine ran it.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.live import LiveServer, serving
from support.yaptide import FIXTURES, FIXTURES_ABSENT, fixture_body, login, wait_for

from cyclotron.simulators.mcsquare.install import unavailable_reason

PRIMARIES = 2000  # each engine runs ex1 in a few seconds on one core
NO_SERVICES = {"dispatch": {"interval": 0.2}}  # and no [services]: the defaults


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if not FIXTURES.is_dir():
        pytest.skip(FIXTURES_ABSENT)
    with serving("sqlite", tmp_path_factory.mktemp("ui-defaults"), NO_SERVICES) as live:
        yield live


@pytest.fixture(scope="module")
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    client = login(server, "alice")
    yield client
    client.close()


def _ex1(quantities: set[str] | None = None) -> dict[str, Any]:
    """ex1's project with fewer primaries, its outputs cut to ``quantities`` if given."""
    document = json.loads((FIXTURES / "ex1.json").read_text())
    project: dict[str, Any] = copy.deepcopy(document["input"]["inputJson"])
    project["beam"]["numberOfParticles"] = PRIMARIES
    if quantities is not None:
        for output in project["scoringManager"]["outputs"]:
            kept = [q for q in output["quantities"] if q["keyword"] in quantities]
            output["quantities"] = [{**q, "modifiers": []} for q in kept]
    return project


def _submitted(client: httpx.Client, sim_type: str, project: dict[str, Any]) -> str:
    body = fixture_body(sim_type=sim_type, ntasks=2, input_json=project)
    answer = client.post("/jobs/direct", json=body)
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["job_id"]
    final = wait_for(client, job_id, timeout=300.0)
    assert final["job_state"] == "COMPLETED", final
    return job_id


def _metadata(client: httpx.Client, job_id: str) -> dict[str, Any]:
    listed = client.get("/user/simulations", params={"page_size": 100}).json()["simulations"]
    [item] = [s for s in listed if s["job_id"] == job_id]
    metadata: dict[str, Any] = item["metadata"]
    return metadata


def _first_log_lines(client: httpx.Client, job_id: str) -> dict[str, str]:
    answer = client.get("/logfiles", params={"job_id": job_id})
    assert answer.status_code == 200, answer.text
    logs = answer.json()["logfiles"]
    return {name: text.splitlines()[0] for name, text in logs.items() if name.endswith("stdout")}


def test_services_list_the_stand_ins(server: LiveServer) -> None:
    listed = httpx.get(f"{server.base_url}/api/services").json()["services"]
    services = {s["name"]: s for s in listed}
    shieldhit, fluka = services["shieldhit"], services["fluka"]
    assert (shieldhit["plugin"], shieldhit["stands_in_for"]) == ("builtin", "shieldhit")
    assert (fluka["plugin"], fluka["stands_in_for"]) == ("mcsquare", "fluka")
    assert shieldhit["available"] is True, shieldhit
    assert "no SHIELD-HIT12A executable is configured" in shieldhit["description"]
    assert "no FLUKA executable is configured" in fluka["description"]
    assert services["builtin"]["stands_in_for"] is None


def test_ui_shieldhit_runs_on_builtin_and_says_so(server: LiveServer, alice: httpx.Client) -> None:
    job_id = _submitted(alice, "shieldhit", _ex1())
    metadata = _metadata(alice, job_id)
    assert metadata["sim_type"] == "shieldhit" and metadata["engine"] == "builtin"
    first = _first_log_lines(alice, job_id)
    assert set(first) == {"task-1/stdout", "task-2/stdout"}
    assert all(line.startswith("Engine: builtin ") for line in first.values()), first
    results = alice.get("/results", params={"job_id": job_id}).json()["estimators"]
    assert results[0]["metadata"]["number_of_primaries"] == str(PRIMARIES)
    # The native face's record of the job says it too.
    native = httpx.get(f"{server.base_url}/api/jobs", params={"service": "shieldhit"}).json()
    [job] = [j for j in native["jobs"] if j["service"] == "shieldhit"]
    detail = httpx.get(f"{server.base_url}/api/jobs/{job['id']}").json()
    assert (detail["engine"], detail["stands_in_for"]) == ("builtin", "shieldhit")


def test_ui_fluka_runs_on_mcsquare_where_the_project_fits(alice: httpx.Client) -> None:
    reason = unavailable_reason()
    if reason:
        pytest.fail(f"MCsquare must be installed for these tests: {reason}")
    job_id = _submitted(alice, "fluka", _ex1({"Dose", "dLET"}))
    assert _metadata(alice, job_id)["engine"] == "mcsquare"
    first = _first_log_lines(alice, job_id)
    assert all(line.startswith("Engine: mcsquare ") for line in first.values()), first


def test_ui_fluka_that_mcsquare_cannot_run_says_what_to_configure(alice: httpx.Client) -> None:
    answer = alice.post("/jobs/direct", json=fixture_body(sim_type="fluka", input_json=_ex1()))
    assert answer.status_code == 400, answer.text
    message = answer.json()["message"]
    assert "Fluence" in message  # what MCsquare cannot score
    assert '[services.fluka] with plugin = "fluka" and its executable' in message


def test_batch_submissions_find_the_stand_in(server: LiveServer) -> None:
    """POST /jobs/batch resolves sim_type shieldhit like /jobs/direct: what stops it on a
    server without clusters is the cluster, not the sim_type."""
    command = [
        sys.executable, "-m", "cyclotron", "users", "add", "carol", "--cluster-access",
        "--password-stdin", "--config", str(server.config_path),
    ]  # fmt: skip
    done = subprocess.run(
        command, input="s3cret-pass\n", env=server.env, capture_output=True, text=True,
        timeout=60, check=False, cwd=Path(server.workdir),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    with closing(login(server, "carol")) as carol:
        body = fixture_body(sim_type="shieldhit", ntasks=1, input_json=_ex1())
        answer = carol.post("/jobs/batch", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["message"] == "No clusters are available"


def test_ui_files_for_a_stand_in_say_what_to_configure(alice: httpx.Client) -> None:
    """The UI's files mode sends SHIELD-HIT12A's own input files: the builtin engine cannot
    run them, and the refusal says how to run the real engine."""
    body = fixture_body("captured_post_jobs_direct_files_mode_from_ex1.json", sim_type="shieldhit")
    answer = alice.post("/jobs/direct", json=body)
    assert answer.status_code == 400, answer.text
    assert '[services.shieldhit] with plugin = "shieldhit"' in answer.json()["message"]
