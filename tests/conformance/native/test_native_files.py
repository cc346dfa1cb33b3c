"""spec/native.md §7 and checklist cases 18 (files kind), 21-23: results, files, Range, ZIP."""

from __future__ import annotations

import hashlib
import io
import re
import socket
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
from support.live import LiveServer
from support.upload import submit, wait_until

CONFIG = {"services": {"example": {"plugin": "script", "max_runs": 10, "runs_per_user": 10}}}


def raw_get(server: LiveServer, path: str) -> tuple[int, bytes]:
    """GET a path exactly as written (no client-side normalisation of dot segments)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


# 18 -----------------------------------------------------------------------------------------
def test_18_results_of_a_files_job(client: httpx.Client) -> None:
    job = submit(client, "sleep 1\necho 12345 > out.txt\n")
    wait_until(client, job, lambda b: b["status"] == "Running")
    early = client.get(f"/api/jobs/{job}/results")
    assert early.status_code == 400 and "status: running" in early.json()["detail"]
    wait_until(client, job)
    results = client.get(f"/api/jobs/{job}/results").json()
    assert results["kind"] == "files" and results["tasks"] == [{"index": 0, "exit_code": 0}]
    assert results["files"] == 2  # run.sh and out.txt in the task directory


# 21 -----------------------------------------------------------------------------------------
def test_21_file_listing_with_digests(client: httpx.Client) -> None:
    job = submit(client, "printf 'hello world' > out.txt\n")
    wait_until(client, job)
    listing = client.get(f"/api/jobs/{job}/files").json()
    paths = {f["path"]: f for f in listing["files"]}
    assert {"input/run.sh", "tasks/0/run.sh", "tasks/0/out.txt", "logs/task-0.stdout"} <= set(paths)
    assert not any(p.startswith(".cyclotron") for p in paths)
    out = paths["tasks/0/out.txt"]
    assert out["size"] == 11 and out["task_index"] == 0
    assert out["sha256"] == hashlib.sha256(b"hello world").hexdigest()
    assert all(re.fullmatch(r"[0-9a-f]{64}", f["sha256"]) for f in listing["files"])
    assert listing["total_size"] == sum(f["size"] for f in listing["files"])
    assert paths["input/run.sh"]["task_index"] is None


def test_21_files_of_a_running_task_have_no_digest_yet(client: httpx.Client) -> None:
    job = submit(client, "echo partial > part.txt\nsleep 30\n")
    wait_until(client, job, lambda b: b["status"] == "Running")
    deadline = time.monotonic() + 10
    while True:
        paths = {f["path"]: f for f in client.get(f"/api/jobs/{job}/files").json()["files"]}
        if "tasks/0/part.txt" in paths or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert paths["tasks/0/part.txt"]["sha256"] is None
    assert paths["input/run.sh"]["sha256"] is not None
    client.post(f"/api/jobs/{job}/cancel")


# 22 -----------------------------------------------------------------------------------------
def test_22_single_files_ranges_and_paths(server: LiveServer, client: httpx.Client) -> None:
    job = submit(client, "printf '0123456789' > out.txt\n")
    wait_until(client, job)
    whole = client.get(f"/api/jobs/{job}/files/tasks/0/out.txt")
    assert whole.status_code == 200 and whole.content == b"0123456789"
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["etag"] == f'"sha256-{hashlib.sha256(b"0123456789").hexdigest()}"'
    part = client.get(f"/api/jobs/{job}/files/tasks/0/out.txt", headers={"Range": "bytes=2-5"})
    assert part.status_code == 206 and part.content == b"2345"
    assert part.headers["content-range"] == "bytes 2-5/10"
    tail = client.get(f"/api/jobs/{job}/files/tasks/0/out.txt", headers={"Range": "bytes=-3"})
    assert tail.status_code == 206 and tail.content == b"789"
    several = client.get(
        f"/api/jobs/{job}/files/tasks/0/out.txt", headers={"Range": "bytes=0-1,4-5"}
    )
    assert several.status_code == 200 and several.content == b"0123456789"
    beyond = client.get(
        f"/api/jobs/{job}/files/tasks/0/out.txt", headers={"Range": "bytes=999999-"}
    )
    assert beyond.status_code == 416 and beyond.headers["content-range"] == "bytes */10"
    cached = client.get(
        f"/api/jobs/{job}/files/tasks/0/out.txt", headers={"If-None-Match": whole.headers["etag"]}
    )
    assert cached.status_code == 304
    assert client.get(f"/api/jobs/{job}/files/tasks/0/nope.txt").status_code == 404
    secret = server.data_dir / "secret.txt"
    secret.write_text("do not serve")
    for path in (
        "../secret.txt",
        "%2e%2e/secret.txt",
        "tasks/0/../../../secret.txt",
        "tasks//0/out.txt",
    ):
        status, answer = raw_get(server, f"/api/jobs/{job}/files/{path}")
        assert status in (400, 404), (path, status)
        assert b"do not serve" not in answer
    status, answer = raw_get(server, f"/api/jobs/{job}/files/..%2f..%2fsecret.txt")
    assert b"do not serve" not in answer


def test_22_symbolic_links_out_of_the_job_are_not_served(
    server: LiveServer, client: httpx.Client
) -> None:
    outside = server.data_dir.parent / "outside.txt"
    outside.write_text("outside the job")
    job = submit(client, f"ln -s {outside} link.txt\n")
    wait_until(client, job)
    assert client.get(f"/api/jobs/{job}/files/tasks/0/link.txt").status_code == 404
    listed = [f["path"] for f in client.get(f"/api/jobs/{job}/files").json()["files"]]
    assert "tasks/0/link.txt" not in listed


# 23 -----------------------------------------------------------------------------------------
def test_23_results_download(client: httpx.Client) -> None:
    job = submit(client, "sleep 1\necho result > out.txt\n")
    wait_until(client, job, lambda b: b["status"] == "Running")
    assert client.get(f"/api/jobs/{job}/results/download").status_code == 400
    wait_until(client, job)
    response = client.get(f"/api/jobs/{job}/results/download")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].startswith("attachment")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = set(archive.namelist())
        assert archive.read("tasks/0/out.txt") == b"result\n"
    assert {"input/run.sh", "tasks/0/run.sh", "logs/task-0.stdout"} <= names
    assert not any(name.startswith(".") or "/." in name for name in names)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_23_large_download_streams_in_bounded_memory(start_server: Any) -> None:
    live = start_server(CONFIG)
    with live.client() as client:
        job = submit(client, "head -c 209715200 /dev/urandom > big.bin\n")
        wait_until(client, job, timeout=120)
        assert live.process is not None
        before = _rss_kib(live.process.pid)
        peak = before
        status_times: list[float] = []
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            with live.client() as other:
                while not done.is_set():
                    peak = max(peak, _rss_kib(live.process.pid))  # type: ignore[union-attr]
                    started = time.monotonic()
                    assert other.get("/api/system/status").status_code == 200
                    status_times.append(time.monotonic() - started)
                    time.sleep(0.1)

        watcher = threading.Thread(target=watch)
        watcher.start()
        received = 0
        try:
            with client.stream("GET", f"/api/jobs/{job}/results/download") as response:
                for chunk in response.iter_bytes():
                    received += len(chunk)
        finally:
            done.set()
            watcher.join()
    assert received > 209_715_200
    assert peak - before < 64 * 1024, f"server memory grew by {(peak - before) // 1024} MiB"
    assert status_times and max(status_times) < 1.0
