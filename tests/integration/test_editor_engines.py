"""The engines that run here, end to end: ex1's editor project through POST /jobs/direct.

``builtin`` runs ex1 as the editor exported it; ``mcsquare`` runs it with its outputs reduced
to the quantities MCsquare scores (Dose, dLET). Both are compared with the SHIELD-HIT12A result
stored in ex1.json and with each other, as a physicist would read the curves: the distal 80 %
point of the depth dose, and the plateau.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.depth_dose import plateau_ratio, r80
from support.live import LiveServer
from support.yaptide import FIXTURES, FIXTURES_ABSENT, fixture_body, login, wait_for, yaptide_server

from cyclotron.estimators.model import find_estimator, validate_estimators
from cyclotron.simulators.mcsquare.install import unavailable_reason

ENGINES = {
    "services": {
        "builtin": {"plugin": "builtin", "max_runs": 2, "runs_per_user": 2},
        "mcsquare": {"plugin": "mcsquare", "max_runs": 2, "runs_per_user": 2},
    }
}
MCSQUARE_QUANTITIES = {"Dose", "dLET"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if not FIXTURES.is_dir():
        pytest.skip(FIXTURES_ABSENT)
    with yaptide_server("sqlite", tmp_path_factory.mktemp("engines"), ENGINES) as live:
        yield live


@pytest.fixture(scope="module")
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    client = login(server, "alice")
    yield client
    client.close()


def _reduced_to_mcsquare(project: dict[str, Any]) -> dict[str, Any]:
    """ex1 with each output keeping only the quantities MCsquare scores."""
    reduced = copy.deepcopy(project)
    for output in reduced["scoringManager"]["outputs"]:
        kept = [q for q in output["quantities"] if q["keyword"] in MCSQUARE_QUANTITIES]
        output["quantities"] = [{**q, "modifiers": []} for q in kept]
    return reduced


def _run(client: httpx.Client, sim_type: str, project: dict[str, Any]) -> list[dict[str, Any]]:
    body = fixture_body(sim_type=sim_type, ntasks=2, input_json=project)
    answer = client.post("/jobs/direct", json=body)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    final = wait_for(client, job_id, timeout=600.0)
    assert final["job_state"] == "COMPLETED", final
    results = client.get("/results", params={"job_id": job_id})
    assert results.status_code == 200, results.text
    estimators: list[dict[str, Any]] = results.json()["estimators"]
    return estimators


@pytest.fixture(scope="module")
def ex1() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / "ex1.json").read_text())
    return document


@pytest.fixture(scope="module")
def builtin_results(alice: httpx.Client, ex1: dict[str, Any]) -> list[dict[str, Any]]:
    return _run(alice, "builtin", ex1["input"]["inputJson"])


@pytest.fixture(scope="module")
def mcsquare_results(alice: httpx.Client, ex1: dict[str, Any]) -> list[dict[str, Any]]:
    reason = unavailable_reason()
    if reason:
        pytest.fail(f"MCsquare must be installed for these tests: {reason}")
    return _run(alice, "mcsquare", _reduced_to_mcsquare(ex1["input"]["inputJson"]))


def _depth_dose(estimators: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    estimator = find_estimator(estimators, "z_profile")
    assert estimator is not None, [e["name"] for e in estimators]
    page = estimator["pages"][0]
    assert page["data"]["name"] == "DOSE"
    return page["axis_dim1"]["values"], page["data"]["values"]


def _shieldhit_depth_dose(ex1: dict[str, Any]) -> tuple[list[float], list[float]]:
    # The UI's export: camelCase keys, the estimator named "Z_profile".
    stored = {e["name"].lower(): e for e in ex1["estimators"]}
    page = stored["z_profile"]["pages"][0]
    return page["axisDim1"]["values"], page["data"]["values"]


def test_builtin_runs_ex1_as_the_editor_exported_it(
    builtin_results: list[dict[str, Any]], ex1: dict[str, Any]
) -> None:
    outputs = ex1["input"]["inputJson"]["scoringManager"]["outputs"]
    validate_estimators(builtin_results)
    assert [e["name"] for e in builtin_results] == [o["name"] for o in outputs]
    for estimator, output in zip(builtin_results, outputs, strict=True):
        assert len(estimator["pages"]) == len(output["quantities"])
        assert estimator["metadata"]["number_of_primaries"] == "10000"
        assert estimator["metadata"]["file_counter"] == "2"
    z, dose = _depth_dose(builtin_results)
    z_ref, dose_ref = _shieldhit_depth_dose(ex1)
    assert r80(z, dose) == pytest.approx(r80(z_ref, dose_ref), rel=0.02)


def test_mcsquare_runs_ex1_reduced_to_what_it_scores(
    mcsquare_results: list[dict[str, Any]], ex1: dict[str, Any]
) -> None:
    validate_estimators(mcsquare_results)
    z, dose = _depth_dose(mcsquare_results)
    z_ref, dose_ref = _shieldhit_depth_dose(ex1)
    assert r80(z, dose) == pytest.approx(r80(z_ref, dose_ref), rel=0.02)
    z_profile = find_estimator(mcsquare_results, "z_profile")
    assert z_profile is not None
    # MCsquare rounds the primaries up to whole batches, and the results say so.
    assert int(z_profile["metadata"]["number_of_primaries"]) >= 10000


def test_builtin_plateau_agrees_with_mcsquare(
    builtin_results: list[dict[str, Any]], mcsquare_results: list[dict[str, Any]]
) -> None:
    z, builtin = _depth_dose(builtin_results)
    z_mc, mcsquare = _depth_dose(mcsquare_results)
    assert z == z_mc
    # Between 2 cm and 80 % of the range, in 1 cm windows.
    assert plateau_ratio(z, builtin, mcsquare, 2.0, 0.8 * r80(z, mcsquare)) < 0.05


def test_mcsquare_refuses_a_quantity_it_cannot_score(
    alice: httpx.Client, ex1: dict[str, Any]
) -> None:
    body = fixture_body(sim_type="mcsquare", ntasks=1, input_json=ex1["input"]["inputJson"])
    answer = alice.post("/jobs/direct", json=body)
    assert answer.status_code == 400, answer.text
    assert "Fluence" in answer.json()["message"]


def test_builtin_refuses_a_particle_it_cannot_transport(
    alice: httpx.Client, ex1: dict[str, Any]
) -> None:
    project = copy.deepcopy(ex1["input"]["inputJson"])
    project["beam"]["particle"] = {"a": 12, "id": 25, "name": "Heavy ions", "z": 6}
    answer = alice.post("/jobs/direct", json=fixture_body(sim_type="builtin", input_json=project))
    assert answer.status_code == 400, answer.text
    assert "particle" in answer.json()["message"]


def test_both_engines_are_listed_with_their_versions(server: LiveServer) -> None:
    listed = httpx.get(f"{server.base_url}/api/services").json()["services"]
    services = {s["name"]: s for s in listed}
    for name in ("builtin", "mcsquare"):
        assert services[name]["available"] is True, services[name]
        assert services[name]["version"]
