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
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
from support.depth_dose import plateau_ratio, r80
from support.gamma import gamma_index, gamma_pass_rate
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


@dataclass(frozen=True)
class Run:
    """A completed job: its results and its final status."""

    estimators: list[dict[str, Any]]
    status: dict[str, Any]


def _run(client: httpx.Client, sim_type: str, project: dict[str, Any]) -> Run:
    body = fixture_body(sim_type=sim_type, ntasks=2, input_json=project)
    answer = client.post("/jobs/direct", json=body)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    final = wait_for(client, job_id, timeout=600.0)
    assert final["job_state"] == "COMPLETED", final
    results = client.get("/results", params={"job_id": job_id})
    assert results.status_code == 200, results.text
    return Run(results.json()["estimators"], final)


@pytest.fixture(scope="module")
def ex1() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / "ex1.json").read_text())
    return document


@pytest.fixture(scope="module")
def builtin_run(alice: httpx.Client, ex1: dict[str, Any]) -> Run:
    return _run(alice, "builtin", ex1["input"]["inputJson"])


@pytest.fixture(scope="module")
def mcsquare_run(alice: httpx.Client, ex1: dict[str, Any]) -> Run:
    reason = unavailable_reason()
    if reason:
        pytest.fail(f"MCsquare must be installed for these tests: {reason}")
    return _run(alice, "mcsquare", _reduced_to_mcsquare(ex1["input"]["inputJson"]))


@pytest.fixture(scope="module")
def builtin_results(builtin_run: Run) -> list[dict[str, Any]]:
    return builtin_run.estimators


@pytest.fixture(scope="module")
def mcsquare_results(mcsquare_run: Run) -> list[dict[str, Any]]:
    return mcsquare_run.estimators


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


def _dose_map(page: dict[str, Any], axis: str) -> tuple[np.ndarray, list[float]]:
    """A page's values on its axes (the first varies fastest) and the axes' bin widths."""
    axes = [page[f"{axis}{k}"]["values"] for k in range(1, page["dimensions"] + 1)]
    values = np.asarray(page["data"]["values"], dtype=float)
    shaped = values.reshape([len(a) for a in axes][::-1]).T
    return shaped, [float(a[1] - a[0]) for a in axes]


def _dose_page(estimators: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for estimator in estimators:
        if estimator["name"].lower() == name:
            return next(p for p in estimator["pages"] if p["data"]["name"] == "DOSE")
    raise AssertionError(f"no estimator {name!r}")


# SHIELD-HIT12A's result has 666 primaries; each engine's 10,000. MCsquare scores ex1's
# 0.5 mm bins on 0.5 mm voxels (mcsquare/scoring.py): 100 % and 99.3 % pass (16 of 2,256
# points fail on the 2D map, on the axis in the first 3 cm). On its 1 mm CT voxels the pencil
# beam's axis read half its dose, and the 2D map passed at 80.7 %.
GAMMA_CASES = [
    pytest.param(engine, name, id=f"{engine}-{name}")
    for engine in ("builtin", "mcsquare")
    for name in ("z_profile", "yz_profile")
]


@pytest.mark.parametrize(("engine", "name"), GAMMA_CASES)
def test_dose_passes_gamma_2_percent_2_mm_against_shieldhit(
    request: pytest.FixtureRequest, ex1: dict[str, Any], engine: str, name: str
) -> None:
    """Issue 19: global 2 %/2 mm gamma against SHIELD-HIT12A's ex1, 10 % low-dose threshold,
    at least 99 % of the points passing, on every dose estimator ex1 has (1D and 2D)."""
    run: Run = request.getfixturevalue(f"{engine}_run")
    reference, spacing = _dose_map(_dose_page(ex1["estimators"], name), "axisDim")
    evaluated, evaluated_spacing = _dose_map(_dose_page(run.estimators, name), "axis_dim")
    assert evaluated.shape == reference.shape
    assert evaluated_spacing == pytest.approx(spacing)
    rate = gamma_pass_rate(reference, evaluated, spacing, dose=0.02, distance=0.2)
    gamma = gamma_index(reference, evaluated, spacing, dose=0.02, distance=0.2)
    failing = np.argwhere((gamma > 1) & (reference >= 0.1 * reference.max()))
    assert rate >= 0.99, f"{rate:.2%} of the points pass; failing bins {failing[:20].tolist()}"


def test_mcsquare_status_counts_the_primaries_its_results_do(mcsquare_run: Run) -> None:
    """Issue 19, item 7: MCsquare runs whole batches (5,120 for 5,000 asked); the status said
    10,000 while the results were normalised to what it ran."""
    tasks = mcsquare_run.status["job_tasks_status"]
    simulated = sum(int(t["simulated_primaries"]) for t in tasks)
    assert simulated > sum(int(t["requested_primaries"]) for t in tasks) == 10000
    counted = {int(e["metadata"]["number_of_primaries"]) for e in mcsquare_run.estimators}
    assert counted == {simulated}


# ex1's EntrySlab (0-1 mm of water) as SHIELD-HIT12A scored it: dLET of protons, MeV/cm.
SHIELDHIT_ENTRANCE_DLET = 6.159


def _scalar(estimators: list[dict[str, Any]], name: str, quantity: str) -> float:
    estimator = find_estimator(estimators, name)
    assert estimator is not None
    [value] = next(p for p in estimator["pages"] if p["data"]["name"] == quantity)["data"]["values"]
    return float(value)


def test_mcsquare_dlet_is_that_of_protons(mcsquare_results: list[dict[str, Any]]) -> None:
    """Issue 19, item 6: MCsquare's LET averages over the deuterons and alphas it transports
    too, and was served as the dLET of protons: 16.9 MeV/cm at ex1's entrance against
    SHIELD-HIT12A's 6.16. Its LET run now stops them where they are born (the spread is that
    of the few low-energy secondary protons in 1 mm of water)."""
    dlet = _scalar(mcsquare_results, "entrance", "DLET")
    assert dlet == pytest.approx(SHIELDHIT_ENTRANCE_DLET, rel=0.15)


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
