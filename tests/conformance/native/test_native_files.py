"""spec/native.md §7 and §8 (open-directory): results, files, Range, ZIP, logs; checklist
cases 18-24 and 26. Case 25 (AlphaFold 3 results) needs an AlphaFold 3 plug-in; none exists."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import socket
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from native_support import ENV, SIM, create, poll, running, script_body, sim_body
from support.live import LiveServer
from support.upload import submit, wait_until

CONFIG = {
    "services": {
        "example": {"plugin": "script", "max_runs": 10, "runs_per_user": 10},
        "sim": SIM,
        "flaky": {**SIM, "fail_tasks": [2]},
    }
}


def raw_get(server: LiveServer, path: str) -> tuple[int, bytes]:
    """GET a path exactly as written (no client-side normalisation of dot segments)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


# 18 -----------------------------------------------------------------------------------------
def test_case_18_results_only_after_completion(client: httpx.Client) -> None:
    job_id = create(client, sim_body())
    poll(client, job_id, running)
    early = client.get(f"/api/jobs/{job_id}/results")
    if client.get(f"/api/jobs/{job_id}").json()["status"] == "running":
        assert early.status_code == 400, early.text
        assert early.json() == {"detail": f"Job {job_id} is not completed (status: running)"}
    assert poll(client, job_id)["status"] == "completed"
    results = client.get(f"/api/jobs/{job_id}/results")
    assert results.status_code == 200
    body = results.json()
    assert body["kind"] == "estimators" and body["job_id"] == job_id and body["partial"] is False
    assert body["service"] == "sim" and body["tasks_merged"] == 3 and body["tasks_failed"] == 0
    names = [e["name"] for e in body["estimators"]]
    assert names and len(set(names)) == len(names)
    for estimator in body["estimators"]:
        assert estimator["pages"] and all("data" in page for page in estimator["pages"])
        assert estimator["metadata"]["number_of_primaries"] == "10000"


def test_results_before_completion_are_400(client: httpx.Client) -> None:
    """The 400 of case 18, on a job certain to be running when asked."""
    job_id = create(client, script_body("sleep 60\n"))
    poll(client, job_id, lambda d: d["status"] == "running")
    early = client.get(f"/api/jobs/{job_id}/results")
    assert early.status_code == 400
    assert early.json() == {"detail": f"Job {job_id} is not completed (status: running)"}
    assert client.get(f"/api/jobs/{job_id}/results/download").status_code == 400
    client.post(f"/api/jobs/{job_id}/cancel")


# 19 -----------------------------------------------------------------------------------------
def test_case_19_failed_task_is_left_out_of_the_merge(client: httpx.Client) -> None:
    job_id = create(client, sim_body(service="flaky"))
    detail = poll(client, job_id)
    assert detail["status"] == "completed" and detail["error"] is None
    assert detail["tasks_failed"] == 1 and detail["tasks_done"] == 2
    assert [t["state"] for t in detail["tasks"]] == ["completed", "failed", "completed"]
    assert detail["warnings"]
    results = client.get(f"/api/jobs/{job_id}/results").json()
    assert results["tasks_merged"] == 2 and results["tasks_failed"] == 1
    merged = detail["tasks"][0]["requested_primaries"] + detail["tasks"][2]["requested_primaries"]
    assert merged == 3334 + 3333
    for estimator in results["estimators"]:
        assert int(estimator["metadata"]["number_of_primaries"]) == merged


# 20 -----------------------------------------------------------------------------------------
def test_case_20_one_estimator_and_some_pages(client: httpx.Client) -> None:
    job_id = create(client, sim_body(ntasks=1))
    assert poll(client, job_id)["status"] == "completed"
    whole = client.get(f"/api/jobs/{job_id}/results").json()["estimators"]
    target = next(e for e in whole if len(e["pages"]) >= 3)
    numbers = [int(p["metadata"]["page_number"]) for p in target["pages"]]
    wanted = sorted(numbers)[:2]
    response = client.get(
        f"/api/jobs/{job_id}/results",
        params={"estimator": target["name"], "pages": f"{wanted[0]}-{wanted[1]}"},
    )
    assert response.status_code == 200, response.text
    [only] = response.json()["estimators"]
    assert only["name"] == target["name"]
    assert sorted(int(p["metadata"]["page_number"]) for p in only["pages"]) == wanted
    assert only["pages"] == [
        p for p in target["pages"] if int(p["metadata"]["page_number"]) in wanted
    ]
    malformed = client.get(
        f"/api/jobs/{job_id}/results", params={"estimator": target["name"], "pages": "1-x"}
    )
    assert malformed.status_code == 422
    assert [p["loc"] for p in malformed.json()["detail"]] == [["query", "pages"]]
    for pages in ("3-1", "1,,2"):
        empty = client.get(
            f"/api/jobs/{job_id}/results", params={"estimator": target["name"], "pages": pages}
        )
        assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["query", "pages"]
    alone = client.get(f"/api/jobs/{job_id}/results", params={"pages": "0"})
    assert alone.status_code == 422 and alone.json()["detail"][0]["type"] == "value_error"
    missing = client.get(f"/api/jobs/{job_id}/results", params={"estimator": "nope"})
    assert missing.status_code == 404 and "detail" in missing.json()
    index = client.get(f"/api/jobs/{job_id}/results", params={"view": "index"}).json()
    assert [e["name"] for e in index["estimators"]] == [e["name"] for e in whole]
    assert all(
        set(p) == {"page_number", "name", "dimensions"}
        for e in index["estimators"]
        for p in e["pages"]
    )


def test_results_of_a_files_job(client: httpx.Client) -> None:
    job = submit(client, "sleep 1\necho 12345 > out.txt\n")
    wait_until(client, job, lambda b: b["status"] == "Running")
    early = client.get(f"/api/jobs/{job}/results")
    assert early.status_code == 400 and "status: running" in early.json()["detail"]
    wait_until(client, job)
    results = client.get(f"/api/jobs/{job}/results").json()
    assert results["kind"] == "files" and results["tasks"] == [{"index": 0, "exit_code": 0}]
    assert results["files"] == 2  # run.sh and out.txt in the task directory


# 21 -----------------------------------------------------------------------------------------
def test_case_21_file_listing_with_digests(client: httpx.Client) -> None:
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


def test_files_of_a_running_task_have_no_digest_yet(client: httpx.Client) -> None:
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
def test_case_22_single_files_ranges_and_paths(server: LiveServer, client: httpx.Client) -> None:
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
    (server.data_dir / "jobs" / "secret").write_text("do not serve")
    for path in ("../secret", "%2e%2e/x", "%2e%2e/secret.txt", "../secret.txt"):
        status, answer = raw_get(server, f"/api/jobs/{job}/files/{path}")
        assert status == 400, (path, status)
        assert b"do not serve" not in answer
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


def test_symbolic_links_out_of_the_job_are_not_served(
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
def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_case_23_results_download(start_server: Any) -> None:
    """A ZIP with results/; 200 MiB stream in bounded memory while status stays quick.

    The 1 s bound on ``GET /api/system/status`` is the case's own figure (no margin added).
    """
    live = start_server(CONFIG, env=ENV)
    with live.client() as client:
        sim = create(client, sim_body(ntasks=2))
        poll(client, sim, running)
        if client.get(f"/api/jobs/{sim}").json()["status"] == "running":
            assert client.get(f"/api/jobs/{sim}/results/download").status_code == 400
        assert poll(client, sim)["status"] == "completed"
        response = client.get(f"/api/jobs/{sim}/results/download")
        assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
        assert response.headers["content-disposition"] == f'attachment; filename="{sim}.zip"'
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            names = set(archive.namelist())
            assert archive.testzip() is None
        assert any(name.startswith("results/") for name in names), names
        assert {"input/beam.dat", "tasks/0/beam.dat", "logs/task-1.stdout"} <= names
        assert not any(name.startswith(".") or "/." in name for name in names)

        job = submit(client, "head -c 209715200 /dev/urandom > big.bin\n")
        wait_until(client, job, timeout=180)
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
            with client.stream("GET", f"/api/jobs/{job}/results/download") as stream:
                assert stream.status_code == 200
                for chunk in stream.iter_bytes():
                    received += len(chunk)
        finally:
            done.set()
            watcher.join()
    assert received > 209_715_200
    assert peak - before < 64 * 1024, f"server memory grew by {(peak - before) // 1024} MiB"
    assert status_times and max(status_times) < 1.0, max(status_times)


# 24 -----------------------------------------------------------------------------------------
def test_case_24_logs_per_task_with_tail(client: httpx.Client) -> None:
    script = (
        'echo "stdout of task $CYCLOTRON_TASK_INDEX"\necho "stderr of $CYCLOTRON_TASK_INDEX" >&2\n'
    )
    job_id = create(client, script_body(script, ntasks=3))
    assert poll(client, job_id)["status"] == "completed"
    body = client.get(f"/api/jobs/{job_id}/logs").json()
    assert body["job_id"] == job_id and [t["index"] for t in body["tasks"]] == [0, 1, 2]
    for task in body["tasks"]:
        assert task["stdout"] == f"stdout of task {task['index']}\n"
        assert task["stderr"] == f"stderr of {task['index']}\n"
        assert task["truncated"] is False and task["stdout_size"] == len(task["stdout"])
    tail = client.get(f"/api/jobs/{job_id}/logs", params={"tail": 10}).json()
    assert len(tail["tasks"]) == 3
    for task in tail["tasks"]:
        assert len(task["stdout"].encode()) <= 10 and len(task["stderr"].encode()) <= 10
        assert task["stdout"] == f"of task {task['index']}\n"[-10:]
        assert task["truncated"] is True
    short = client.get(f"/api/jobs/{job_id}/logs", params={"tail": 1000}).json()
    assert all(t["truncated"] is False for t in short["tasks"])
    one = client.get(f"/api/jobs/{job_id}/logs", params={"task": 2}).json()
    assert [t["index"] for t in one["tasks"]] == [2]
    assert client.get(f"/api/jobs/{job_id}/logs", params={"task": 3}).status_code == 404
    assert client.get(f"/api/jobs/{job_id}/logs", params={"tail": 0}).status_code == 422


# 26 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded"])
def test_case_26_open_directory_only_for_local_clients(client: httpx.Client, header: str) -> None:
    """The test talks to 127.0.0.1, so a proxy header stands for a remote peer here.

    On a platform without ``xdg-open`` (or macOS ``open``) the platform check answers 400 first.
    """
    job_id = create(client, script_body("true\n"))
    poll(client, job_id)
    supported = shutil.which("open" if sys.platform == "darwin" else "xdg-open") is not None
    response = client.post(
        f"/api/jobs/{job_id}/results/open-directory", headers={header: "203.0.113.7"}
    )
    assert response.status_code == (403 if supported else 400), response.text
    assert "detail" in response.json() and str(Path.home()) not in response.text
    unknown = client.post(f"/api/jobs/{'f' * 32}/results/open-directory")
    assert unknown.status_code == (404 if supported else 400)
