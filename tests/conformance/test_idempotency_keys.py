"""``Idempotency-Key`` on every submission route, over HTTP (SQLite and PostgreSQL): the same key
and request answer the first submission again; the key with another request is refused in
each face's shape (409); a malformed key is refused as bad input; keys are per owner; and
concurrent sends of one key make one job. (Retries across a server kill: test_crash_matrix.)"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import httpx
import pytest
from support.databases import BACKENDS
from support.live import LiveServer
from support.upload import upload
from support.yaptide import FIXTURES, FIXTURES_ABSENT, fixture_body, login, yaptide_server

EXAMPLE = {"plugin": "script", "max_runs": 10, "runs_per_user": 10}
SCRIPT = {"run.sh": b"echo hi > out.txt\n"}


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp(f"idempotency-{request.param}")
    with yaptide_server(str(request.param), workdir, {"services": {"example": EXAMPLE}}) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def native(files: dict[str, str] | None = None) -> dict[str, object]:
    files = files or {"run.sh": "echo hi > out.txt\n"}
    return {"service": "example", "input": {"kind": "files", "files": files}}


def total(client: httpx.Client) -> int:
    count: int = client.get("/api/jobs").json()["total"]
    return count


def test_native_face(client: httpx.Client) -> None:
    key = {"Idempotency-Key": "native-1"}
    before = total(client)
    first = client.post("/api/jobs", json=native(), headers=key)
    # The same request (its keys in another order, the key as a structured-field string).
    again = client.post(
        "/api/jobs",
        json={"input": native()["input"], "service": "example"},
        headers={"Idempotency-Key": '"native-1"'},
    )
    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json()
    assert first.headers["location"] == again.headers["location"]
    assert total(client) == before + 1

    other = client.post("/api/jobs", json=native({"run.sh": "echo other\n"}), headers=key)
    assert other.status_code == 409, other.text
    assert "different request" in other.json()["detail"]
    malformed = client.post("/api/jobs", json=native(), headers={"Idempotency-Key": "k" * 256})
    assert malformed.status_code == 422, malformed.text
    assert malformed.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert total(client) == before + 1


def test_upload_face_keys_are_per_owner(client: httpx.Client) -> None:
    key = {"Idempotency-Key": "upload-1"}
    first = upload(client, SCRIPT, user_id=1, headers=key)
    again = upload(client, SCRIPT, user_id=1, headers=key)  # another multipart boundary
    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json()

    other = upload(client, {"run.sh": b"echo other\n"}, user_id=1, headers=key)
    assert other.status_code == 409, other.text
    assert other.json()["id"] == 0 and other.json()["status"] == "Unknown"
    elsewhere = upload(client, SCRIPT, user_id=2, headers=key)  # another owner's key
    assert elsewhere.status_code == 201 and elsewhere.json()["id"] != first.json()["id"]
    assert upload(client, SCRIPT, headers={"Idempotency-Key": ""}).status_code == 400


def test_yaptide_face(server: LiveServer) -> None:
    if not FIXTURES.is_dir():
        pytest.skip(FIXTURES_ABSENT)
    key = {"Idempotency-Key": "yaptide-1"}
    with closing(login(server, "alice")) as alice:
        first = alice.post("/jobs/direct", json=fixture_body(ntasks=2), headers=key)
        again = alice.post("/jobs/direct", json=fixture_body(ntasks=2), headers=key)
        assert first.status_code == again.status_code == 202, first.text
        assert first.json() == again.json()
        listed = alice.get("/user/simulations", params={"page_size": 100}).json()
        assert listed["simulations_count"] == 1

        other = alice.post("/jobs/direct", json=fixture_body(ntasks=3), headers=key)
        assert other.status_code == 409, other.text
        assert other.json()["status_code"] == 409


def test_concurrent_sends_of_one_key_make_one_job(client: httpx.Client, server: LiveServer) -> None:
    before = total(client)

    def send(_: int) -> tuple[int, object]:
        with server.client() as own:
            answer = own.post("/api/jobs", json=native(), headers={"Idempotency-Key": "race"})
            return answer.status_code, answer.json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, range(8)))
    assert {status for status, _ in answers} == {201}
    assert len({str(body) for _, body in answers}) == 1
    assert total(client) == before + 1
