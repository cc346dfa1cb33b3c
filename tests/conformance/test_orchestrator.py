"""spec/orchestrator.md §11: one test per numbered case, over HTTP against a live server,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.databases import BACKENDS, database_url
from support.live import LiveServer, serving
from support.processes import marked, new_marker
from support.tcp_proxy import TcpProxy
from support.upload import admitted_now, status_of, submit, upload, wait_until, zip_members

EXAMPLE = {
    "services": {
        "example": {"plugin": "script", "executor": "local", "max_runs": 10, "runs_per_user": 5}
    }
}
LIMIT = 419_430_400


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server per backend for the cases that need only the default setup."""
    workdir = tmp_path_factory.mktemp(f"orchestrator-{request.param}")
    with serving(str(request.param), workdir, EXAMPLE) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def data_entries(server: LiveServer) -> set[str]:
    """Everything under the data directory except the database files."""
    root = server.data_dir
    return {
        str(p.relative_to(root)) for p in root.rglob("*") if not p.name.startswith("cyclotron.db")
    }


class NoJobCreated:
    """Asserts that the requests inside it created no job: no new file, no used id.

    A marker job before and after the block shows that the refused requests used no id.
    """

    def __init__(self, server: LiveServer, client: httpx.Client) -> None:
        self.server, self.client = server, client

    def __enter__(self) -> NoJobCreated:
        self.before_id = submit(self.client, "true\n")
        wait_until(self.client, self.before_id)
        self.before_files = data_entries(self.server)
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            return
        assert data_entries(self.server) == self.before_files
        assert submit(self.client, "true\n") == self.before_id + 1, "a refused upload used a job id"


def assert_error(
    response: httpx.Response, code: int, job_id: int = 0, status: str = "Unknown"
) -> dict[str, Any]:
    assert response.status_code == code, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"id", "status", "message"}
    assert body["id"] == job_id and body["status"] == status
    assert body["message"]
    return body


def staging_is_empty(server: LiveServer) -> bool:
    return not any((server.data_dir / "staging").iterdir())


# 1 ------------------------------------------------------------------------------------------
def test_01_upload_answers_201_queued(client: httpx.Client) -> None:
    response = upload(client, {"run.sh": b"echo hi > out.txt\n", "input.pdb": b"ATOM\n"})
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "status": "Queued", "message": "Job successfully uploaded"}
    assert isinstance(body["id"], int) and body["id"] >= 1


# 2 ------------------------------------------------------------------------------------------
def test_02_poll_until_zip_with_outputs(client: httpx.Client) -> None:
    job = submit(client, "sleep 0.3\necho hi > out.txt\n", **{"input.pdb": b"ATOM\n"})
    statuses = set()
    deadline = time.monotonic() + 30
    while True:
        response = client.get(f"/download/{job}")
        assert response.status_code == 200
        if response.headers["content-type"].startswith("application/json"):
            body = response.json()
            assert set(body) == {"id", "status", "message"}
            assert body["status"] in {"Queued", "Processing", "Submitted", "Running"}
            statuses.add(body["status"])
        else:
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert response.headers["content-disposition"].startswith("attachment")
    members = zip_members(response)
    assert set(members) == {"run.sh", "input.pdb", "out.txt"}
    assert members["out.txt"] == b"hi\n"
    assert "Running" in statuses


# 3 ------------------------------------------------------------------------------------------
def test_03_missing_run_sh(server: LiveServer, client: httpx.Client) -> None:
    with NoJobCreated(server, client):
        assert_error(upload(client, {"input.pdb": b"x"}), 400)
    assert staging_is_empty(server)


# 4 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("user_id", [None, "abc", "-1", "2147483648", "1.5", ""])
def test_04_bad_user_id(server: LiveServer, client: httpx.Client, user_id: str | None) -> None:
    with NoJobCreated(server, client):
        body = assert_error(upload(client, {"run.sh": b"true\n"}, user_id=user_id), 400)
    expected = "Missing user_id field" if user_id is None else "Invalid user_id, should be a number"
    assert body["message"] == expected


def test_04_user_id_whitespace_is_ignored(client: httpx.Client) -> None:
    assert upload(client, {"run.sh": b"true\n"}, user_id=" 7 ").status_code == 201


# 5 ------------------------------------------------------------------------------------------
def test_05_bad_service(server: LiveServer, client: httpx.Client) -> None:
    with NoJobCreated(server, client):
        missing = assert_error(upload(client, {"run.sh": b"true\n"}, service=None), 400)
        unknown = assert_error(upload(client, {"run.sh": b"true\n"}, service="nope"), 400)
    assert missing["message"] == "Missing service field"
    assert unknown["message"] == "Invalid service"


def test_05_an_unknown_service_is_named_before_a_missing_run_sh(
    server: LiveServer, client: httpx.Client
) -> None:
    with NoJobCreated(server, client):
        body = assert_error(upload(client, {"input.pdb": b"x"}, service="nope"), 400)
    assert body["message"] == "Invalid service"


# 6 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["../evil.sh", "a/b.txt", "a\\b.txt", "..hidden", "x..y", "..", "/etc/passwd"]
)
def test_06_file_names_with_paths(server: LiveServer, client: httpx.Client, name: str) -> None:
    with NoJobCreated(server, client):
        assert_error(upload(client, {"run.sh": b"true\n", name: b"payload"}), 400)
    assert staging_is_empty(server)
    assert not (server.workdir / "evil.sh").exists()


def test_06_single_leading_dot_is_allowed(client: httpx.Client) -> None:
    job = submit(client, "cat .env > copy.txt\n", **{".env": b"A=1\n"})
    assert wait_until(client, job)["status"] == "Completed"
    assert zip_members(client.get(f"/download/{job}"))["copy.txt"] == b"A=1\n"


# 7 ------------------------------------------------------------------------------------------
def test_07_nul_in_file_name(server: LiveServer, client: httpx.Client) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="user_id"\r\n\r\n1\r\n'
        b'--b\r\nContent-Disposition: form-data; name="service"\r\n\r\nexample\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="run.sh"\r\n\r\ntrue\n\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\x00b"\r\n\r\nx\r\n'
        b"--b--\r\n"
    )
    with NoJobCreated(server, client):
        response = client.post(
            "/upload", content=body, headers={"content-type": "multipart/form-data; boundary=b"}
        )
        assert_error(response, 400)


# 8 ------------------------------------------------------------------------------------------
def test_08_duplicate_file_names(server: LiveServer, client: httpx.Client) -> None:
    with NoJobCreated(server, client):
        response = client.post(
            "/upload",
            data={"user_id": "1", "service": "example"},
            files=[
                ("file", ("run.sh", b"true\n")),
                ("file", ("data.txt", b"a")),
                ("file", ("data.txt", b"b")),
            ],
        )
        assert_error(response, 400)
    assert staging_is_empty(server)


# 9 ------------------------------------------------------------------------------------------
def _raw_post(server: LiveServer, head: bytes, body_chunks: Iterator[bytes]) -> tuple[int, bytes]:
    """Send a request over a plain socket, reading the answer as soon as one arrives."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    answer = b""
    try:
        sock.sendall(head)
        pending = b""
        chunks = iter(body_chunks)
        while True:
            readable, writable, _ = select.select([sock], [sock], [], 30)
            if readable:
                break
            if not pending:
                pending = next(chunks, b"")
                if not pending:
                    readable, _, _ = select.select([sock], [], [], 30)
                    break
            try:
                sent = sock.send(pending)
            except (BrokenPipeError, ConnectionResetError):
                break
            pending = pending[sent:]
        while not _complete(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    finally:
        sock.close()
    status = int(answer.split(b" ", 2)[1])
    return status, answer


def _complete(answer: bytes) -> bool:
    """Whether a whole response (headers and the Content-Length body) has arrived."""
    head, found, body = answer.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def _oversized_body(total: int) -> tuple[bytes, bytes, Iterator[bytes]]:
    prefix = (
        b'--b\r\nContent-Disposition: form-data; name="user_id"\r\n\r\n1\r\n'
        b'--b\r\nContent-Disposition: form-data; name="service"\r\n\r\nexample\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="run.sh"\r\n\r\n'
    )
    suffix = b"\r\n--b--\r\n"
    filler = total - len(prefix) - len(suffix)

    def chunks() -> Iterator[bytes]:
        yield prefix
        block = b"#" * (1 << 20)
        left = filler
        while left > 0:
            yield block[: min(left, len(block))]
            left -= len(block)
        yield suffix

    return prefix, suffix, chunks()


def test_09_body_over_the_limit(server: LiveServer, client: httpx.Client) -> None:
    total = LIMIT + 1
    with NoJobCreated(server, client):
        head = (
            f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {total}\r\n\r\n"
        ).encode()
        status, answer = _raw_post(server, head, iter(()))  # refused before any body is sent
        assert status == 413 and b"419430400" in answer

        _, _, chunks = _oversized_body(total)

        def chunked() -> Iterator[bytes]:
            for chunk in chunks:
                yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            yield b"0\r\n\r\n"

        head = (
            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        status, _ = _raw_post(server, head, chunked())
        assert status == 413
    assert staging_is_empty(server)
    big = os.urandom(1 << 20)
    response = upload(client, {"run.sh": b"true\n", "big.bin": big})
    assert response.status_code == 201
    job = response.json()["id"]
    assert wait_until(client, job)["status"] == "Completed"
    assert (
        hashlib.sha256(zip_members(client.get(f"/download/{job}"))["big.bin"]).digest()
        == hashlib.sha256(big).digest()
    )


# 10 -----------------------------------------------------------------------------------------
def test_10_any_field_name_with_a_filename_is_a_file(client: httpx.Client) -> None:
    response = client.post(
        "/upload",
        data={"user_id": "1", "service": "example"},
        files=[
            ("upload", ("run.sh", b"cat notes.txt > seen.txt\n")),
            ("other", ("notes.txt", b"n")),
        ],
    )
    assert response.status_code == 201
    job = response.json()["id"]
    assert wait_until(client, job)["status"] == "Completed"
    assert zip_members(client.get(f"/download/{job}"))["seen.txt"] == b"n"


# 11 -----------------------------------------------------------------------------------------
def test_11_failing_run_sh(client: httpx.Client) -> None:
    job = submit(client, "echo 'cannot open input.dat' >&2\nexit 3\n")
    body = wait_until(client, job)
    assert body["status"] == "Failed"
    assert "status 3" in str(body["message"]) and "cannot open input.dat" in str(body["message"])
    response = client.get(f"/download/{job}")
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "application/json"
    )


# 12 -----------------------------------------------------------------------------------------
def test_12_run_sh_not_utf8_is_invalid(client: httpx.Client) -> None:
    response = upload(client, {"run.sh": b"echo \xff\xfe\n"})
    assert response.status_code == 201
    body = wait_until(client, response.json()["id"])
    assert body["status"] == "Invalid" and "UTF-8" in str(body["message"])


def test_12_empty_run_sh_is_invalid(client: httpx.Client) -> None:
    response = upload(client, {"run.sh": b""})
    assert response.status_code == 201
    assert wait_until(client, response.json()["id"])["status"] == "Invalid"


# 13 -----------------------------------------------------------------------------------------
def test_13_unknown_and_malformed_ids(client: httpx.Client) -> None:
    response = client.get("/download/999999")
    assert response.status_code == 404
    assert response.json() == {
        "id": 0,
        "status": "Unknown",
        "message": "Job 999999 not found in the database",
    }
    assert_error(client.get("/download/abc"), 400)
    assert_error(client.get("/download/0"), 404)
    assert_error(client.get("/download/2147483648"), 400)


# 14 -----------------------------------------------------------------------------------------
def test_14_partial_download_while_running(client: httpx.Client) -> None:
    job = submit(client, "echo part > partial.txt\nsleep 30\n")
    wait_until(client, job, lambda b: b["status"] == "Running")
    deadline = time.monotonic() + 15
    while True:
        response = client.get(f"/download_partial/{job}")
        assert response.status_code == 200
        members = zip_members(response)
        if "partial.txt" in members or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert members["partial.txt"] == b"part\n"
    assert client.post(f"/terminate/{job}").status_code in (200, 202)
    assert_error(client.get("/download_partial/999999"), 404)


# 15 -----------------------------------------------------------------------------------------
def test_15_terminate_running_job(client: httpx.Client) -> None:
    # The job's processes are found by a variable of their environment: in the sandbox a task
    # sees its own PID namespace, not the host's pids.
    marker = new_marker()
    job = submit(client, f"export {marker}\nsleep 600 &\necho started > child.txt\nwait\n")
    wait_until(client, job, lambda b: b["status"] == "Running")
    deadline = time.monotonic() + 15
    while "child.txt" not in zip_members(client.get(f"/download_partial/{job}")):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert marked(marker)  # the sleep that run.sh started (its children carry the variable)
    response = client.post(f"/terminate/{job}")
    if response.status_code == 202:
        assert response.json()["status"] == "Running"
        wait_until(client, job, lambda b: b["status"] == "Killed", timeout=15)
    else:
        assert response.status_code == 200
        assert response.json() == {"id": job, "status": "Killed", "message": "job terminated"}
    deadline = time.monotonic() + 15
    while marked(marker):
        assert time.monotonic() < deadline, "the job's processes survived termination"
        time.sleep(0.1)
    assert status_of(client, job)["status"] == "Killed"
    assert_error(client.post(f"/terminate/{job}"), 400, job, "Killed")


# 16 -----------------------------------------------------------------------------------------
def test_16_terminate_completed_job(client: httpx.Client) -> None:
    job = submit(client, "true\n")
    assert wait_until(client, job)["status"] == "Completed"
    assert_error(client.post(f"/terminate/{job}"), 400, job, "Completed")
    assert status_of(client, job)["status"] == "Completed"


# 17 -----------------------------------------------------------------------------------------
ENDED = {"Completed", "Failed", "Invalid", "Killed"}


def _watch(client: httpx.Client, jobs: dict[int, int], timeout: float = 60) -> list[dict[int, str]]:
    """Until every job has ended: consistent snapshots of the admitted jobs (number: stage)."""
    snapshots = []
    deadline = time.monotonic() + timeout
    while True:
        snapshots.append(admitted_now(client))
        if all(status_of(client, job)["status"] in ENDED for job in jobs):
            return snapshots
        assert time.monotonic() < deadline, snapshots[-1]
        time.sleep(0.05)


def test_17_limits_hold(start_server: Any) -> None:
    live = start_server(
        {"services": {"example": {"plugin": "script", "max_runs": 2, "runs_per_user": 1}}}
    )
    with live.client() as client:
        jobs = {submit(client, "sleep 1.5\n", user_id=1): 1 for _ in range(3)}
        jobs[submit(client, "sleep 1.5\n", user_id=2)] = 2
        snapshots = _watch(client, jobs)
        assert all(status_of(client, job)["status"] == "Completed" for job in jobs)
    assert any(len(snapshot) == 2 for snapshot in snapshots)  # the limit was reached
    for snapshot in snapshots:
        assert len(snapshot) <= 2, snapshot
        assert sum(1 for job in snapshot if jobs[job] == 1) <= 1, snapshot


# 18 -----------------------------------------------------------------------------------------
STAMP = "date +%s%N > started.txt\nsleep {}\n"


def test_18_round_robin(start_server: Any) -> None:
    live = start_server(
        {"services": {"example": {"plugin": "script", "max_runs": 1, "runs_per_user": 5}}}
    )
    with live.client() as client:
        names = {}
        for name in ("J1", "J2", "J3"):
            names[submit(client, STAMP.format(1.0), user_id=1)] = name
        names[submit(client, STAMP.format(1.0), user_id=2)] = "K1"
        _watch(client, names)
        started = {
            names[job]: int(zip_members(client.get(f"/download/{job}"))["started.txt"])
            for job in names
        }
    assert sorted(started, key=started.__getitem__) == ["J1", "K1", "J2", "J3"]


# 19 -----------------------------------------------------------------------------------------
def test_19_fifty_uploads_never_rejected(start_server: Any) -> None:
    live = start_server(
        {"services": {"example": {"plugin": "script", "max_runs": 10, "runs_per_user": 1}}}
    )
    script = "date +%s%N > start.txt\nsleep 0.05\ndate +%s%N > end.txt\n"
    with live.client() as client:
        jobs = []
        for _ in range(50):
            response = upload(client, {"run.sh": script.encode()})
            assert response.status_code == 201, response.text
            jobs.append(response.json()["id"])
        spans = []
        for job in jobs:
            assert wait_until(client, job, timeout=120)["status"] == "Completed"
            members = zip_members(client.get(f"/download/{job}"))
            spans.append((int(members["start.txt"]), int(members["end.txt"])))
    spans.sort()
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, "two jobs of one user ran at the same time"


# 20 -----------------------------------------------------------------------------------------
def test_20_health(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "database": "ok"}


def test_20_health_with_the_database_unreachable(tmp_path: Path) -> None:
    """PostgreSQL behind a proxy the test can cut (a SQLite file cannot be made unreachable)."""
    with database_url("postgresql", tmp_path) as url, TcpProxy("127.0.0.1", 5432) as proxy:
        proxied = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        live = LiveServer(tmp_path, proxied, EXAMPLE).start()
        try:
            with live.client() as client:
                assert client.get("/health").status_code == 200
                proxy.cut()
                started = time.monotonic()
                response = client.get("/health")
                assert response.status_code == 500
                assert response.json() == {"status": "unhealthy", "database": "unreachable"}
                assert time.monotonic() - started < 10
                proxy.restore()
                deadline = time.monotonic() + 10
                while client.get("/health").status_code != 200:
                    assert time.monotonic() < deadline, "health did not recover"
                    time.sleep(0.2)
        finally:
            live.stop()


# 21 -----------------------------------------------------------------------------------------
def test_21_root_and_documentation(client: httpx.Client) -> None:
    assert client.get("/").json() == {"message": "pong"}
    docs = client.get("/swagger-ui/")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
    assert client.get("/swagger", follow_redirects=False).status_code == 307
    spec = client.get("/openapi.json").json()
    assert "/upload" in spec["paths"] and "/download/{id}" in spec["paths"]
    assert client.get("/api-docs/openapi.json").json()["paths"].keys() == spec["paths"].keys()


def test_21_documentation_can_be_turned_off(start_server: Any) -> None:
    live = start_server({**EXAMPLE, "server": {"docs": False}})
    with live.client() as client:
        for path in ("/swagger-ui/", "/swagger", "/openapi.json", "/api-docs/openapi.json"):
            assert client.get(path, follow_redirects=False).status_code == 404, path


# 22 -----------------------------------------------------------------------------------------
def test_22_retention_by_end_time(start_server: Any) -> None:
    live = start_server({**EXAMPLE, "retention": {"max_age": 2, "interval": 1}})
    with live.client() as client:
        long_job = submit(client, "sleep 300\n")
        wait_until(client, long_job, lambda b: b["status"] == "Running")
        done = submit(client, "echo x > out.txt\n")
        assert wait_until(client, done)["status"] == "Completed"
        body = wait_until(client, done, lambda b: b["status"] == "Cleaned", timeout=2 + 61)
        assert body == {"id": done, "status": "Cleaned", "message": "Job files have been removed"}
        # The files go just after the job is shown Cleaned.
        deadline = time.monotonic() + 10
        while len(job_dirs := list((live.data_dir / "jobs").iterdir())) > 1:
            assert time.monotonic() < deadline, job_dirs
            time.sleep(0.05)
        assert len(job_dirs) == 1  # only the running job's directory is left
        assert_error(client.get(f"/download_partial/{done}"), 404, done, "Cleaned")
        assert status_of(client, long_job)["status"] == "Running"
        assert (job_dirs[0] / "tasks" / "0" / "run.sh").exists()
        client.post(f"/terminate/{long_job}")


# 23 -----------------------------------------------------------------------------------------
def test_23_api_keys(start_server: Any) -> None:
    k1, k2 = "key-one-" + "a" * 24, "key-two-" + "b" * 24
    keys = [
        {"sha256": hashlib.sha256(k1.encode()).hexdigest(), "user_id": 1},
        {"sha256": hashlib.sha256(k2.encode()).hexdigest(), "user_id": 2},
    ]
    live = start_server({**EXAMPLE, "auth": {"enabled": True, "keys": keys}})
    h1, h2 = {"Authorization": f"Bearer {k1}"}, {"Authorization": f"Bearer {k2}"}
    with live.client() as client:
        response = upload(client, {"run.sh": b"true\n"})
        assert_error(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        assert_error(
            upload(client, {"run.sh": b"true\n"}, headers={"Authorization": "Bearer nope"}), 401
        )
        assert_error(upload(client, {"run.sh": b"true\n"}, user_id=2, headers=h1), 403)
        # The service is judged before the key's user (checklist order 5, then 6).
        other = upload(client, {"run.sh": b"true\n"}, user_id=2, service="nope", headers=h1)
        assert assert_error(other, 400)["message"] == "Invalid service"
        response = upload(client, {"run.sh": b"sleep 30\n"}, user_id=1, headers=h1)
        assert response.status_code == 201
        job = response.json()["id"]
        hidden = {"id": 0, "status": "Unknown", "message": f"Job {job} not found in the database"}
        for call in (
            lambda: client.get(f"/download/{job}", headers=h2),
            lambda: client.get(f"/download_partial/{job}", headers=h2),
            lambda: client.post(f"/terminate/{job}", headers=h2),
        ):
            response = call()
            assert response.status_code == 404 and response.json() == hidden
        assert status_of(client, job, headers=h1)["status"] in {
            "Queued",
            "Processing",
            "Submitted",
            "Running",
        }
        assert client.get("/health").status_code == 200
        assert client.get("/").status_code == 200
        assert client.post(f"/terminate/{job}", headers=h1).status_code in (200, 202)
    assert k1 not in live.log() and k2 not in live.log()


# 24 -----------------------------------------------------------------------------------------
def test_24_upload_jobs_appear_on_the_native_face(client: httpx.Client) -> None:
    job = submit(client, "sleep 30\n")
    listing = client.get("/api/jobs", params={"page_size": 100}).json()
    entry = next(item for item in listing["jobs"] if item["number"] == job)
    assert entry["name"] == f"upload-{job}" and entry["service"] == "example"
    assert entry["user_id"] == 1
    wait_until(client, job, lambda b: b["status"] == "Running")
    response = client.post(f"/api/jobs/{entry['id']}/cancel")
    assert response.status_code in (200, 202)
    wait_until(client, job, lambda b: b["status"] == "Killed", timeout=15)
    assert status_of(client, job)["message"]
