"""Bob can neither touch nor learn anything of Alice's simulations (yaptide.md §1.8, §3.12, §4.1).

Alice has jobs in every kind of state: PENDING and RUNNING (the ``reported`` service, whose
tasks run nowhere; a worker report makes one RUNNING), CANCELED, COMPLETED and FAILED (the
SHIELD-HIT12A test double). Bob, who has a job of his own and no cluster access, then sweeps
every job-scoped route with Alice's job ids, with random well-formed ids and with malformed
ones, and every worker route with keys he could guess. Every answer must be the refusal the
spec names, none may carry any of Alice's data, and her jobs must be as they were.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from support.databases import BACKENDS
from support.live import LiveServer
from support.yaptide import (
    FIXTURES,
    FIXTURES_ABSENT,
    NO_CLUSTER_ACCESS,
    NOT_FOUND,
    NOT_YOURS,
    fixture_body,
    login,
    status,
    submit,
    update_key,
    wait_for,
    yaptide_server,
)

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=FIXTURES_ABSENT)

MISSING_JOB_ID = "Missing job_id"
INVALID_KEY = "Invalid update key"
FILES_BODY = "captured_post_jobs_direct_files_mode_from_ex1.json"
MARK = uuid.uuid4().hex[:8]
STATES = ("PENDING", "RUNNING", "CANCELED", "COMPLETED", "FAILED")
TITLES = {state: f"alice-{state.lower()}-{MARK}" for state in STATES}
# Job-scoped user routes, with the extra query parameters real clients send to them.
USER_ROUTES: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/jobs/direct", {}),
    ("DELETE", "/jobs/direct", {}),
    ("GET", "/jobs/batch", {}),
    ("DELETE", "/jobs/batch", {}),
    ("GET", "/jobs", {}),
    ("GET", "/results", {}),
    ("GET", "/results", {"estimator_name": "z_profile"}),
    ("GET", "/results", {"estimator_name": "z_profile", "page_number": "0"}),
    ("GET", "/results", {"estimator_name": "peak", "page_numbers": "0-3,5"}),
    ("GET", "/results", {"estimator_name": "nope", "page_numbers": "9-1"}),
    ("GET", "/results", {"page_number": "-1"}),
    ("GET", "/estimators", {}),
    ("GET", "/inputs", {}),
    ("GET", "/logfiles", {}),
    ("DELETE", "/user/simulations", {}),
]
WORKER_ROUTES = ["/tasks", "/tasks/bulk", "/jobs", "/results", "/logfiles"]
RANDOM_IDS = 40
MIN_REQUESTS = 1000


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp(f"isolation-{request.param}")
    with yaptide_server(str(request.param), workdir) as live:
        yield live


@dataclass
class Alice:
    """Alice's client, her jobs by state, what she saw of them, and what Bob must never see."""

    client: httpx.Client
    jobs: dict[str, str]
    snapshot: dict[str, Any]
    secrets: set[str] = field(default_factory=set)


def alice_view(client: httpx.Client, jobs: dict[str, str]) -> dict[str, Any]:
    """Everything Alice can read about her jobs, as comparable JSON."""
    view: dict[str, Any] = {}
    for state, job_id in jobs.items():
        reads = {}
        for path in ("/jobs/direct", "/inputs", "/logfiles", "/estimators", "/results"):
            answer = client.get(path, params={"job_id": job_id})
            reads[path] = (answer.status_code, answer.json())
        view[state] = reads
    listing = client.get("/user/simulations", params={"page_size": 100})
    assert listing.status_code == 200, listing.text
    view["listing"] = listing.json()
    return view


@pytest.fixture(scope="module")
def alice(server: LiveServer) -> Iterator[Alice]:
    with closing(login(server, "alice")) as client:
        jobs = {
            "PENDING": submit(client, sim_type="reported", title=TITLES["PENDING"]),
            "COMPLETED": submit(client, ntasks=2, title=TITLES["COMPLETED"]),
            "FAILED": submit(client, ntasks=2, sim_type="failing", title=TITLES["FAILED"]),
        }
        body = fixture_body(FILES_BODY, sim_type="reported", ntasks=2, title=TITLES["RUNNING"])
        answer = client.post("/jobs/direct", json=body)
        assert answer.status_code == 202, answer.text
        jobs["RUNNING"] = answer.json()["job_id"]
        report = {
            "simulation_id": jobs["RUNNING"],
            "task_id": 1,
            "update_key": update_key(server, jobs["RUNNING"]),
            "update_dict": {"task_state": "RUNNING", "simulated_primaries": 1234},
        }
        assert client.post("/tasks", json=report).status_code == 202
        jobs["CANCELED"] = submit(client, sim_type="reported", title=TITLES["CANCELED"])
        assert client.delete("/jobs/direct", params={"job_id": jobs["CANCELED"]}).status_code == 200
        for state, job_id in jobs.items():
            assert wait_for(client, job_id, lambda s, st=state: s["job_state"] == st)

        snapshot = alice_view(client, jobs)
        secrets = {"alice", *jobs.values(), *TITLES.values()}
        secrets |= {update_key(server, job_id) for job_id in jobs.values()}
        for reads in (snapshot[state] for state in jobs):
            secrets |= set(reads["/inputs"][1]["input"]["input_files"])
        secrets |= set(snapshot["FAILED"]["/logfiles"][1]["logfiles"])
        for estimator in snapshot["COMPLETED"]["/estimators"][1]["estimators_metadata"]:
            secrets.add(estimator["name"])
        assert {"beam.dat", "z_profile", "peak"} <= secrets
        yield Alice(client, jobs, snapshot, secrets)


@pytest.fixture(scope="module")
def bob(server: LiveServer) -> Iterator[httpx.Client]:
    with closing(login(server, "bob")) as client:
        submit(client, sim_type="reported", title="bob's own run")
        yield client


@dataclass(frozen=True)
class Probe:
    """One request of the sweep and the answers that are right for it."""

    method: str
    path: str
    params: list[tuple[str, str]] | None = None
    json: dict[str, Any] | None = None
    expected: frozenset[tuple[int, str]] = frozenset()
    asked: str = ""


def random_job_id(rng: random.Random) -> str:
    stamp = f"2024{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}-{rng.randrange(240000):06d}"
    platform = rng.choice(["DIRECT", "BATCH"])
    return f"{stamp}-{uuid.UUID(int=rng.getrandbits(128), version=4)}{platform}"


def malformed_ids(rng: random.Random, alice_ids: list[str]) -> list[str]:
    """Ids that are no job's: near misses of Alice's, injections, odd characters."""
    some = alice_ids[0]
    near = [
        some.upper(),
        some[:-1],
        some + "x",
        some.replace("DIRECT", "BATCH"),
        some.replace("DIRECT", ""),
        some[:15],
        some + "\x00",
        some.replace("-", "_"),
        some + "%",
    ]
    odd = [
        "1",
        "0",
        "-1",
        "99999999999999999999999",
        "null",
        "None",
        "undefined",
        "true",
        "[]",
        "{}",
        "%",
        "_",
        "*",
        "' OR '1'='1",
        "'; DROP TABLE jobs; --",
        "../../../etc/passwd",
        "..",
        "\x00",
        "a\x00b",
        "żółw-🙂",
        "\u202ereversed",
        "a" * 4000,
        "%25%30%30",
        "<script>alert(1)</script>",
    ]
    printable = [chr(c) for c in range(33, 127)]
    noise = ["".join(rng.choices(printable, k=rng.randrange(1, 60))) for _ in range(6)]
    return near + odd + noise


def user_probes(alice: Alice, rng: random.Random) -> list[Probe]:
    alice_ids = list(alice.jobs.values())
    asked: list[tuple[str | None, tuple[int, str]]] = [(i, (403, NOT_YOURS)) for i in alice_ids]
    asked += [(random_job_id(rng), (404, NOT_FOUND)) for _ in range(RANDOM_IDS)]
    asked += [(i, (404, NOT_FOUND)) for i in malformed_ids(rng, alice_ids)]
    asked += [("", (400, MISSING_JOB_ID)), (None, (400, MISSING_JOB_ID))]
    probes = []
    for method, path, extra in USER_ROUTES:
        for job_id, answer in asked:
            params = [] if job_id is None else [("job_id", job_id)]
            params += list(extra.items())
            # Every method on /jobs/batch first asks for cluster access (§3.12); Bob has none.
            expected = (403, NO_CLUSTER_ACCESS) if path == "/jobs/batch" else answer
            probes.append(Probe(method, path, params, None, frozenset([expected]), job_id or ""))
        # Parameter pollution: whichever of the two ids the server reads, it must refuse.
        for alice_id in alice_ids:
            params = [("job_id", random_job_id(rng)), ("job_id", alice_id), *extra.items()]
            refusals = {(403, NOT_YOURS), (404, NOT_FOUND)}
            if path == "/jobs/batch":
                refusals = {(403, NO_CLUSTER_ACCESS)}
            probes.append(Probe(method, path, params, None, frozenset(refusals), alice_id))
    rng.shuffle(probes)
    return probes


def worker_body(path: str, simulation_id: str, key: str) -> dict[str, Any]:
    """A well-formed report for ``path``: only its key can be wrong."""
    base: dict[str, Any] = {"simulation_id": simulation_id, "update_key": key}
    if path == "/tasks":
        return base | {"task_id": 1, "update_dict": {"task_state": "FAILED"}}
    if path == "/tasks/bulk":
        return base | {"tasks": [{"task_id": 1, "update_dict": {"task_state": "COMPLETED"}}]}
    if path == "/jobs":
        return {"sim_id": simulation_id, "update_key": key, "job_state": "FAILED", "log": {}}
    if path == "/results":
        page = {"dimensions": 0, "data": {"name": "Dose", "unit": "Gy", "values": [1.0]}}
        return base | {"estimators": [{"name": "bob", "metadata": {}, "pages": [page]}]}
    return base | {"logfiles": {"bob.log": "bob was here"}}


def worker_probes(
    server: LiveServer, alice: Alice, bob: httpx.Client, rng: random.Random
) -> list[Probe]:
    bob_jobs = bob.get("/user/simulations").json()["simulations"]
    bob_key = update_key(server, bob_jobs[0]["job_id"])
    alice_ids = list(alice.jobs.values())
    probes = []
    for path in WORKER_ROUTES:
        for index, job_id in enumerate(alice_ids):
            guesses = [
                bob_key,  # a real key, of Bob's own job
                update_key(server, alice_ids[index - 1]),  # a real key, of another of her jobs
                f"{rng.getrandbits(256):064x}",
                hashlib.sha256(job_id.encode()).hexdigest(),
                job_id,
                str(bob.cookies.get("access_token")),
            ]
            for key in guesses:
                body = worker_body(path, job_id, key)
                expected = frozenset([(403, INVALID_KEY)])
                probes.append(Probe("POST", path, None, body, expected, job_id))
        for _ in range(3):
            body = worker_body(path, random_job_id(rng), bob_key)
            probes.append(Probe("POST", path, None, body, frozenset(), body["update_key"]))
    return probes


def send(client: httpx.Client, probe: Probe) -> httpx.Response:
    return client.request(probe.method, probe.path, params=probe.params, json=probe.json)


def faults(answer: httpx.Response, probe: Probe, secrets: set[str]) -> list[str]:
    """What is wrong with one refusal: its status, its envelope, anything of Alice's in it."""
    found = []
    try:
        body = answer.json()
    except ValueError:
        return [f"not JSON: {answer.status_code} {answer.text[:200]!r}"]
    pair = (answer.status_code, body.get("message") if isinstance(body, dict) else None)
    if answer.status_code >= 500:
        found.append(f"server error {pair}")
    elif probe.expected and pair not in probe.expected:
        found.append(f"answered {pair}, expected one of {sorted(probe.expected)}")
    elif not probe.expected and answer.status_code != 404:
        found.append(f"answered {pair}, expected 404")
    if not isinstance(body, dict) or set(body) != {"message", "status_code"}:
        found.append(f"not the bare error envelope: {body!r}")
    elif body["status_code"] != answer.status_code:
        found.append(f"status_code {body['status_code']} in a {answer.status_code} answer")
    if "etag" in answer.headers:
        found.append("an ETag (derived from her results) on a refusal")
    seen = (answer.text + "\n" + "\n".join(answer.headers.values())).lower()
    leaked = [s for s in secrets if s != probe.asked and s.lower() in seen]
    if leaked:
        found.append(f"leaks {sorted(leaked)}")
    return found


def sweep(client: httpx.Client, probes: list[Probe], secrets: set[str]) -> list[str]:
    failures = []
    for probe in probes:
        answer = send(client, probe)
        for fault in faults(answer, probe, secrets):
            shown = probe.params or {k: v for k, v in (probe.json or {}).items() if k != "tasks"}
            failures.append(f"{probe.method} {probe.path} {str(shown)[:160]}: {fault}")
    return failures


def assert_alice_unchanged(alice: Alice) -> None:
    after = alice_view(alice.client, alice.jobs)
    for state, job_id in alice.jobs.items():
        assert status(alice.client, job_id)["job_state"] == state
        assert after[state] == alice.snapshot[state], f"her {state} job changed"
    listed = {item["job_id"] for item in after["listing"]["simulations"]}
    assert listed == set(alice.jobs.values())
    assert after["listing"] == alice.snapshot["listing"]


def test_bob_gets_only_refusals_on_every_job_scoped_route(alice: Alice, bob: httpx.Client) -> None:
    probes = user_probes(alice, random.Random(1))
    assert len(probes) >= MIN_REQUESTS
    failures = sweep(bob, probes, alice.secrets)
    assert not failures, f"{len(failures)} of {len(probes)} answers wrong:\n" + "\n".join(
        failures[:25]
    )
    assert_alice_unchanged(alice)


def test_bob_cannot_report_for_alice_jobs_with_guessed_keys(
    server: LiveServer, alice: Alice, bob: httpx.Client
) -> None:
    probes = worker_probes(server, alice, bob, random.Random(2))
    with server.client() as worker:  # workers send no cookies
        failures = sweep(worker, probes, alice.secrets)
    assert not failures, f"{len(failures)} of {len(probes)} answers wrong:\n" + "\n".join(
        failures[:25]
    )
    assert_alice_unchanged(alice)


def test_bob_lists_only_his_own_simulations(alice: Alice, bob: httpx.Client) -> None:
    states = ["", "PENDING", "RUNNING,COMPLETED", "failed,canceled", ",".join(TITLES)]
    for job_state in states:
        for params in ({"page_size": 100}, {"page_size": 1, "page_idx": 2}, {}):
            answer = bob.get("/user/simulations", params={**params, "job_state": job_state})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert all(item["title"] == "bob's own run" for item in body["simulations"])
            assert body["simulations_count"] <= 1
            leaked = [s for s in alice.secrets if s.lower() in answer.text.lower()]
            assert not leaked, leaked
    assert_alice_unchanged(alice)
