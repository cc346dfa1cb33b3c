"""Client helpers for the file-upload face."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Mapping

import httpx

TERMINAL = frozenset({"Completed", "Failed", "Invalid", "Killed", "Cleaned"})


def upload(
    client: httpx.Client,
    files: Mapping[str, bytes],
    user_id: str | int | None = 1,
    service: str | None = "example",
    field: str = "file",
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    data: dict[str, str] = {}
    if user_id is not None:
        data["user_id"] = str(user_id)
    if service is not None:
        data["service"] = service
    parts = [(field, (name, content)) for name, content in files.items()]
    return client.post("/upload", data=data, files=parts, headers=headers)


def submit(client: httpx.Client, script: str, user_id: int = 1, **files: bytes) -> int:
    response = upload(client, {"run.sh": script.encode(), **files}, user_id=user_id)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def status_of(
    client: httpx.Client, job_id: int, headers: Mapping[str, str] | None = None
) -> dict[str, object]:
    response = client.get(f"/download/{job_id}", headers=headers)
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("application/zip"):
        return {"id": job_id, "status": "Completed", "message": ""}
    body: dict[str, object] = response.json()
    return body


def wait_until(
    client: httpx.Client,
    job_id: int,
    done: Callable[[dict[str, object]], bool] = lambda body: body["status"] in TERMINAL,
    timeout: float = 60.0,
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        body = status_of(client, job_id)
        if done(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {body} after {timeout} s")
        time.sleep(0.05)


def zip_members(response: httpx.Response) -> dict[str, bytes]:
    assert response.headers["content-type"].startswith("application/zip"), response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def admitted_now(client: httpx.Client) -> dict[int, str]:
    """Admitted, unfinished jobs by number, with their stage, read in one request.

    Polling jobs one by one is no snapshot (a job seen Running may end, and the next one
    start, before the sweep is over); the native listing answers from one read.
    """
    listing = client.get("/api/jobs", params={"page_size": 100}).json()
    return {
        job["number"]: job["stage"]
        for job in listing["jobs"]
        if job["status"] in ("pending", "running") and job["stage"] != "queued"
    }
