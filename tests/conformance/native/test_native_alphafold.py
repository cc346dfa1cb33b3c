"""spec/native.md §4.2, §7–§9 and §11 for AlphaFold 3 (checklist 6 and 25), end to end.

The ``alphafold3`` service runs ``support/alphafold3_command_double.py``, a **test double** of
AlphaFold 3's ``run_alphafold.py`` that replays the real outputs of the 7ADT protein–peptide
job in ``../shared/fixtures/alphafold3/af3_local`` (README there): sample ``k`` of seed ``S``
is the real sample ``REAL_SAMPLES[(S + k) % 3]``, with its real full-precision ranking score.
Everything around the model is Cyclotron's own and real: the body sent as-is, one task per
seed, progress parsed from the command's output and streamed, the ranking across seeds, the
results routes, the ZIP and the data-pipeline cache.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from native_support import ENV, poll
from support.alphafold import (
    AF3_LOCAL_JOB,
    DOUBLE_COMMAND,
    SPEC_EXAMPLE,
    af3_body,
    chains_7adt,
    double_service,
    require_af3_fixtures,
)
from support.databases import BACKENDS
from support.live import LiveServer, serving
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from cyclotron.alphafold.progress import BANDS

CONFIG: dict[str, Any] = {
    "services": {
        "alphafold3": double_service(max_runs=4, runs_per_user=4),
        "example": {"plugin": "script"},
    },
}
# Long enough for a stream to see the stages and a request to find the job still running.
DOUBLE_ENV = {**ENV, "AF3_DOUBLE_SECONDS": "4", "AF3_DOUBLE_PIPELINE_SECONDS": "0.5"}
AF3_STAGES = set(BANDS) - {"done"}  # spec/native.md §1


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    require_af3_fixtures()
    workdir = tmp_path_factory.mktemp(f"alphafold-{request.param}")
    with serving(str(request.param), workdir, CONFIG, DOUBLE_ENV) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def reversed_body(seeds: list[int], **more: Any) -> dict[str, Any]:
    """The same molecules in the other dialect, other chain order and other ids."""
    a, u = chains_7adt()
    return {
        "name": "7ADT reversed",
        "modelSeeds": seeds,
        "dialect": "alphafold3",
        "version": 2,
        "sequences": [
            {"protein": {"id": "B", "sequence": u}},
            {"protein": {"id": "C", "sequence": a}},
        ],
        **more,
    }


def submit(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/api/jobs", json=body)
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/api/jobs/{response.json()['id']}"
    job_id: str = response.json()["id"]
    return job_id


def stream(server: LiveServer, job_id: str, timeout: float = 120) -> list[dict[str, Any]]:
    """Every WebSocket message of the job until the server closes the stream."""
    messages = []
    deadline = time.monotonic() + timeout
    with connect(f"ws://127.0.0.1:{server.port}/api/jobs/{job_id}/progress") as socket:
        try:
            while True:
                left = max(0.1, deadline - time.monotonic())
                messages.append(json.loads(socket.recv(timeout=left)))
        except ConnectionClosed:
            return messages


def task_log(client: httpx.Client, job_id: str, index: int) -> str:
    answer = client.get(f"/api/jobs/{job_id}/logs", params={"task": index}).json()
    stdout: str = answer["tasks"][0]["stdout"]
    return stdout


# 6 ------------------------------------------------------------------------------------------
def test_case_6_alphafold_body_as_is(client: httpx.Client) -> None:
    job_id = submit(client, SPEC_EXAMPLE)
    detail = client.get(f"/api/jobs/{job_id}").json()
    assert detail["service"] == "alphafold3"
    assert detail["name"] == "desi1_dimer"
    assert detail["input_json"] == SPEC_EXAMPLE
    assert (detail["num_samples"], detail["diffusion_steps"]) == (5, 200)
    assert (detail["precision"], detail["run_data_pipeline"], detail["use_cache"]) == (
        "bfloat16",
        True,
        True,
    )
    assert detail["ntasks"] == 2
    assert [t["seed"] for t in detail["tasks"]] == [42, 7]
    assert (detail["num_residues"], detail["num_chains"]) == (44, 3)
    assert detail["input"]["kind"] == "af3" and len(detail["input"]["key"]) == 64
    client.post(f"/api/jobs/{job_id}/cancel")  # the double knows only the 7ADT job


def test_native_af3_input_kind_and_its_refusals(client: httpx.Client) -> None:
    body = af3_body([5, 6])
    native = {"service": "alphafold3", "name": "native", "input": {"kind": "af3", "job": body}}
    job_id = submit(client, native)
    assert [t["seed"] for t in client.get(f"/api/jobs/{job_id}").json()["tasks"]] == [5, 6]
    client.post(f"/api/jobs/{job_id}/cancel")

    before = client.get("/api/jobs").json()["total"]
    refusals = [
        ({**native, "seeds": [1, 2]}, ["body"]),
        ({**native, "ntasks": 3}, ["body", "ntasks"]),
        (af3_body([1, 1]), ["body", "modelSeeds[1]"]),
        (
            {**af3_body([1]), "sequences": [{"proteinChain": {"sequence": "MKZ1", "count": 1}}]},
            ["body", "sequences[0].proteinChain.sequence"],
        ),
        ({"service": "example", "input": {"kind": "af3", "job": body}}, ["body", "input", "kind"]),
    ]
    for refused, loc in refusals:
        response = client.post("/api/jobs", json=refused)
        assert response.status_code == 422, (refused, response.text)
        assert response.json()["detail"][0]["loc"][: len(loc)] == loc, response.text
    assert client.get("/api/jobs").json()["total"] == before


def test_validate_estimates_an_alphafold_body(client: httpx.Client) -> None:
    answer = client.post("/api/validate", json=af3_body([1, 2, 3])).json()
    assert answer["valid"] is True, answer
    assert (answer["num_residues"], answer["num_chains"]) == (176, 2)
    assert answer["estimates"]["num_residues"] == 176
    assert answer["estimated_memory_gb"] == answer["estimates"]["estimated_memory_gb"] > 4
    bad = af3_body([1])
    bad["sequences"][0]["proteinChain"]["sequence"] = "MK7"
    answer = client.post("/api/validate", json=bad).json()
    assert answer["valid"] is False
    assert any(e.startswith("sequences[0].proteinChain.sequence:") for e in answer["errors"])


# 25 and the end-to-end job ---------------------------------------------------------
def test_case_25_three_seeds_ranked_together(server: LiveServer, client: httpx.Client) -> None:
    seeds = [1, 2, 3]
    key = client.post("/api/cache/check", json=af3_body(seeds)).json()
    job_id = submit(client, af3_body(seeds))
    assert client.get(f"/api/jobs/{job_id}").json()["input"]["key"] == key["key"]

    poll(client, job_id, lambda d: d["status"] == "running")
    for path in ("results", "results/confidence/0", "results/structure/1"):
        early = client.get(f"/api/jobs/{job_id}/{path}")
        assert early.status_code == 400, (path, early.text)
        assert "is not completed" in early.json()["detail"]

    messages = stream(server, job_id)
    assert messages[0]["type"] == "snapshot"
    assert messages[-1]["type"] == "completed"
    seqs = [m["seq"] for m in messages[1:]]
    assert seqs == sorted(set(seqs))
    progress = [m for m in messages if m["type"] == "progress"]
    assert {m["task_index"] for m in progress} == {0, 1, 2}
    assert {m["stage"] for m in progress} & AF3_STAGES, progress
    counted = [m for m in progress if "recycling_total" in m]
    assert counted and all(m["recycling_total"] == 10 for m in counted), progress

    detail = poll(client, job_id)
    assert (detail["status"], detail["ntasks"], detail["tasks_done"]) == ("completed", 3, 3)
    assert detail["percent"] == 100.0

    results = client.get(f"/api/jobs/{job_id}/results").json()
    samples = results["samples"]
    assert results["kind"] == "confidence" and results["num_samples"] == 15
    assert sorted(s["rank"] for s in samples) == list(range(1, 16))
    # sample_index = i × numSamples + k: task i runs seed i.
    assert [s["sample_index"] for s in samples] == list(range(15))
    assert [s["seed"] for s in samples] == [seed for seed in seeds for _ in range(5)]
    by_rank = sorted(samples, key=lambda s: s["rank"])
    order = [(-s["ranking_score"], s["sample_index"]) for s in by_rank]
    assert order == sorted(order)  # by score, ties to the earlier seed and sample
    assert {s["seed"] for s in by_rank[:5]} == set(seeds)  # the best come from every seed
    best = by_rank[0]
    assert results["best_sample_index"] == best["sample_index"]
    # The best is the real top-ranked sample of the 7ADT run (summary ptm and iptm 0.88).
    real_summary = json.loads(next(AF3_LOCAL_JOB.glob("*_summary_confidences.json")).read_text())
    assert (results["ptm"], results["iptm"]) == (real_summary["ptm"], real_summary["iptm"])
    assert results["is_complex"] is True
    assert results["mean_plddt"] == pytest.approx(89.53, abs=0.01)

    confidence = client.get(f"/api/jobs/{job_id}/results/confidence/0").json()
    assert (confidence["sample_index"], confidence["seed"]) == (0, 1)
    assert confidence["num_atoms"] == len(confidence["atom_plddts"]) == 1350
    # pLDDT per residue, in step with the PAE matrix (spec/native.md §8).
    assert confidence["num_residues"] == len(confidence["plddt"]) == 176
    assert len(confidence["pae"]) == 176 and {len(row) for row in confidence["pae"]} == {176}
    assert client.get(f"/api/jobs/{job_id}/results/confidence/999").status_code == 404
    assert client.get(f"/api/jobs/{job_id}/results/confidence/first").status_code == 422

    structure = client.get(f"/api/jobs/{job_id}/results/structure/1")
    assert structure.status_code == 200
    assert structure.headers["content-type"].startswith("chemical/x-mmcif")
    assert "7adt_au_rank_1.cif" in structure.headers["content-disposition"]
    assert structure.content == next(AF3_LOCAL_JOB.glob("*_model.cif")).read_bytes()
    assert client.get(f"/api/jobs/{job_id}/results/structure/16").status_code == 404
    raw = client.get(f"/api/jobs/{job_id}/results/confidence-json")
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.content == (AF3_LOCAL_JOB / f"{AF3_LOCAL_JOB.name}_confidences.json").read_bytes()

    archive = zipfile.ZipFile(
        io.BytesIO(client.get(f"/api/jobs/{job_id}/results/download").content)
    )
    names = set(archive.namelist())
    assert {"ranking_scores.csv", "7adt_au_model.cif", "TERMS_OF_USE.md"} <= names
    assert {f"seed-{s}_sample-{k}/model.cif" for s in seeds for k in range(5)} <= names
    assert not any(n.startswith(("input/", "tasks/", "logs/")) for n in names)
    rows = archive.read("ranking_scores.csv").decode().splitlines()
    assert rows[0] == "seed,sample,ranking_score" and len(rows) == 16

    # The data-pipeline output is now cached under the molecules' key.
    again = client.post("/api/cache/check", json=reversed_body([9])).json()
    assert again["cached"] is True and again["key"] == key["key"]
    assert again["size"] > 90_000 and again["cache_key"] == key["key"]


def test_a_later_job_reuses_the_data_pipeline_unless_told_not_to(
    server: LiveServer, client: httpx.Client
) -> None:
    first = submit(client, af3_body([11]))
    # While it runs, the job shows the stage its command reports (the AF3 app's current_stage).
    running = poll(client, first, lambda d: d["stage"] in AF3_STAGES, timeout=60)
    assert running["status"] == "running" and running["current_stage"] == running["stage"]
    assert poll(client, first, timeout=120)["status"] == "completed"  # its pipeline is cached
    assert client.get(f"/api/jobs/{first}").json()["stage"] == "done"

    cached = submit(client, reversed_body([12]))
    detail = poll(client, cached, timeout=120)
    assert detail["status"] == "completed", detail
    assert detail["reused"] == {
        "kind": "data_pipeline",
        "job_id": None,
        "key": detail["input"]["key"],
    }
    log = task_log(client, cached, 0)
    assert "Skipping data pipeline..." in log and "Running data pipeline" not in log

    fresh = submit(client, reversed_body([13], useCache=False))
    detail = poll(client, fresh, timeout=120)
    assert detail["status"] == "completed" and detail["reused"] is None
    assert "Running data pipeline..." in task_log(client, fresh, 0)


def test_results_routes_of_other_jobs_are_not_found(client: httpx.Client) -> None:
    job_id = submit(
        client,
        {"service": "example", "input": {"kind": "files", "files": {"run.sh": "echo hi\n"}}},
    )
    poll(client, job_id)
    for path in ("results/confidence/0", "results/confidence-json", "results/structure/1"):
        assert client.get(f"/api/jobs/{job_id}/{path}").status_code == 404, path


def test_a_failing_command_fails_the_job_with_its_reason(tmp_path: Path) -> None:
    require_af3_fixtures()
    env = {**DOUBLE_ENV, "AF3_DOUBLE_FAIL": "1"}
    with serving("sqlite", tmp_path, CONFIG, env) as live, live.client() as client:
        job_id = submit(client, af3_body([1]))
        detail = poll(client, job_id, timeout=120)
        assert detail["status"] == "failed", detail
        logs = client.get(f"/api/jobs/{job_id}/logs").text
        assert "failing on request" in logs
        assert client.get(f"/api/jobs/{job_id}/results").status_code == 400
        # The engine's exit status and last line; not the command line, its paths or flags.
        error = detail["error"]["message"]
        assert detail["error_message"] == error
        assert error.startswith("alphafold3 exited with status 1: "), error
        assert error.endswith("failing on request"), error
        events = client.get(f"/api/jobs/{job_id}/events").text
        for shown in (error, logs, events):
            for path in (str(tmp_path), str(DOUBLE_COMMAND), "--db_dir", "--json_path"):
                assert path not in shown, (path, shown)


def test_the_apps_ui_default_submission_completes(server: LiveServer, client: httpx.Client) -> None:
    """The requests the AlphaFold 3 app's UI makes for a submission with its form's defaults:
    the status (its switch copies ``run_data_pipeline``), submit, progress over the WebSocket,
    the job, its results, a sample's confidence and its structure."""
    status = client.get("/api/system/status").json()
    assert status["run_data_pipeline"] is True  # the service has its databases (db_dir)
    assert isinstance(status["chip_family"], str) and status["chip_family"]
    assert status["memory_gb"] > 0 and isinstance(status["supports_bfloat16"], bool)
    body = af3_body(
        [31],
        numSamples=5,
        runDataPipeline=status["run_data_pipeline"],
        useCache=False,
    )
    job_id = submit(client, body)
    messages = stream(server, job_id)
    assert messages[-1]["type"] == "completed", messages[-3:]
    detail = client.get(f"/api/jobs/{job_id}").json()
    assert (detail["status"], detail["run_data_pipeline"]) == ("completed", True)
    results = client.get(f"/api/jobs/{job_id}/results").json()
    best = results["best_sample_index"]
    confidence = client.get(f"/api/jobs/{job_id}/results/confidence/{best}").json()
    assert len(confidence["plddt"]) == confidence["num_residues"] == 148 + 28
    assert len(confidence["atom_plddts"]) == confidence["num_atoms"] == 1350
    assert len(confidence["pae"]) == len(confidence["plddt"])
    # Each residue's pLDDT is the mean of its atoms', so the means agree.
    atoms_mean = sum(confidence["atom_plddts"]) / 1350
    assert confidence["mean_plddt"] == pytest.approx(atoms_mean, abs=0.01)
    assert min(confidence["plddt"]) >= min(confidence["atom_plddts"]) - 0.01
    structure = client.get(f"/api/jobs/{job_id}/results/structure/1")
    assert structure.status_code == 200 and structure.content.startswith(b"#")
