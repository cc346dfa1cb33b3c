"""The worker routes: per-attempt tokens, claims, input, uploads and end reports.

A live server runs the ``example`` service on the ``external`` executor, so nothing takes its
tasks; the test claims a task as the dispatcher claims it for a Celery worker (on the same
database and data directory) and then speaks for that worker over HTTP.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.live import LiveServer

from cyclotron.services.core import Core, build_core
from cyclotron.services.scheduling.dispatcher import claim_tasks
from cyclotron.settings import load_settings
from cyclotron.signing import SigningKeys, TaskTokens

SCRIPT = "echo CYCLOTRON_PROGRESS 1/2\necho done > out.txt\n"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    config = {
        "server": {"max_upload_bytes": 200_000},
        "services": {"example": {"plugin": "script", "executor": "external"}},
    }
    server = LiveServer(tmp_path, f"sqlite:///{tmp_path / 'cyclotron.db'}", config).start()
    yield server
    server.stop()


@pytest.fixture
def core(live: LiveServer) -> Iterator[Core]:
    """The server's database and files, as its dispatcher sees them."""
    core = build_core(load_settings(live.config_path))
    yield core
    core.close()


@pytest.fixture
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client() as client:
        yield client


def _claimed_job(core: Core, client: httpx.Client) -> tuple[str, str]:
    """A one-task job whose task the dispatcher handed out; its id and attempt 1's token."""
    body = {
        "service": "example",
        "ntasks": 1,
        "input": {"kind": "files", "files": {"run.sh": SCRIPT}},
    }
    response = client.post("/api/jobs", json=body)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    deadline = time.monotonic() + 30
    while not (runs := claim_tasks(core, ["example"], 1)):  # the server admits it first
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [(r.job_id, r.attempt) for r, _ in runs] == [(job_id, 1)]
    return job_id, TaskTokens(SigningKeys.of_server(core.settings)).issue(job_id, 0, 1)


def _post(client: httpx.Client, job_id: str, path: str, token: str | None, **body: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(f"/api/worker/tasks/{job_id}/0/{path}", json=body, headers=headers)


def _tar(members: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink is not None:
            info = tarfile.TarInfo(symlink)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
    return buffer.getvalue()


def _put(client: httpx.Client, job_id: str, token: str, data: bytes, worker: str = "w1") -> Any:
    return client.put(
        f"/api/worker/tasks/{job_id}/0/output",
        params={"attempt": 1, "worker": worker},
        content=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/gzip"},
    )


def test_only_the_attempts_own_token_is_accepted(core: Core, client: httpx.Client) -> None:
    job_id, token = _claimed_job(core, client)
    tokens = TaskTokens(SigningKeys.of_server(core.settings))
    for wrong in (None, "nonsense", tokens.issue(job_id, 0, 2), tokens.issue("x" * 32, 0, 1)):
        response = _post(client, job_id, "claim", wrong, attempt=1, worker="w1")
        assert response.status_code == 401, (wrong, response.text)
    # A token names its attempt: attempt 1's token does not speak for attempt 2.
    response = _post(client, job_id, "claim", token, attempt=2, worker="w1")
    assert response.status_code == 401


def test_a_claim_gives_the_task_to_one_worker(core: Core, client: httpx.Client) -> None:
    job_id, token = _claimed_job(core, client)
    response = _post(client, job_id, "claim", token, attempt=1, worker="w1")
    assert response.status_code == 200, response.text
    assignment = response.json()
    assert assignment["plugin"] == "script" and assignment["ntasks"] == 1
    assert assignment["env"]["CYCLOTRON_JOB_ID"] == job_id
    # A second delivery to another worker is refused while w1's lease lives; w1 may repeat.
    assert _post(client, job_id, "claim", token, attempt=1, worker="w2").status_code == 409
    assert _post(client, job_id, "claim", token, attempt=1, worker="w1").status_code == 200

    archive = client.get(
        f"/api/worker/tasks/{job_id}/0/input",
        params={"attempt": 1, "worker": "w1"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert archive.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
        assert tar.extractfile("./run.sh").read().decode() == SCRIPT  # type: ignore[union-attr]
    # Another worker cannot read it either.
    other = client.get(
        f"/api/worker/tasks/{job_id}/0/input",
        params={"attempt": 1, "worker": "w2"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert other.status_code == 410


def test_a_worker_name_or_stage_no_database_may_hold_is_refused(
    core: Core, client: httpx.Client
) -> None:
    """Both are stored (docs/submissions.md): NUL is refused before the claim takes the task."""
    job_id, token = _claimed_job(core, client)
    named = _post(client, job_id, "claim", token, attempt=1, worker="w\x00")
    assert named.status_code == 422, named.text
    assert named.json()["detail"][0]["loc"] == ["body", "worker"]
    assert _post(client, job_id, "claim", token, attempt=1, worker="w1").status_code == 200
    progress = {"done": 1, "total": 2, "stage": "mer\x00ging"}
    beat = _post(client, job_id, "heartbeat", token, attempt=1, worker="w1", progress=progress)
    assert beat.status_code == 422, beat.text
    assert beat.json()["detail"][0]["loc"][:3] == ["body", "progress", "stage"]


def test_progress_outputs_and_end_reach_the_job(core: Core, client: httpx.Client) -> None:
    job_id, token = _claimed_job(core, client)
    _post(client, job_id, "claim", token, attempt=1, worker="w1")
    beat = _post(
        client, job_id, "heartbeat", token, attempt=1, worker="w1", progress={"done": 1, "total": 2}
    )
    assert beat.status_code == 200 and beat.json() == {"continue": True}
    assert client.get(f"/api/jobs/{job_id}").json()["tasks"][0]["percent"] == 50.0

    outputs = {"work/out.txt": b"done\n", "logs/stdout": b"CYCLOTRON_PROGRESS 1/2\n"}
    for _ in range(2):  # a retried upload replaces the first
        stored = _put(client, job_id, token, _tar(outputs))
        assert stored.status_code == 200 and stored.json() == {"files": 1}
    end = dict(attempt=1, worker="w1", exit_code=0, seconds=0.5, argv=["bash", "run.sh"])
    assert _post(client, job_id, "finish", token, **end).json() == {"recorded": True}
    assert _post(client, job_id, "finish", token, **end).json() == {"recorded": False}

    detail = client.get(f"/api/jobs/{job_id}").json()
    assert detail["status"] == "completed", detail
    assert client.get(f"/api/jobs/{job_id}/files/tasks/0/out.txt").content == b"done\n"
    logs = client.get(f"/api/jobs/{job_id}/logs").json()
    assert "CYCLOTRON_PROGRESS 1/2" in str(logs)
    # The attempt is over: its worker is told to stop, and uploads are refused.
    stop = _post(client, job_id, "heartbeat", token, attempt=1, worker="w1")
    assert stop.json() == {"continue": False}
    assert _put(client, job_id, token, _tar(outputs)).status_code == 410


@pytest.mark.parametrize(
    ("members", "symlink", "code"),
    [
        ({"work/../../escape.txt": b"x"}, None, 400),
        ({"/etc/cron.d/x": b"x"}, None, 400),
        ({"input/run.sh": b"x"}, None, 400),
        ({"work/ok.txt": b"x"}, "work/link", 400),
        ({"work/big.bin": b"\0" * 300_000}, None, 413),
    ],
)
def test_unsafe_or_oversized_uploads_are_refused_whole(
    core: Core, client: httpx.Client, members: dict[str, bytes], symlink: str | None, code: int
) -> None:
    job_id, token = _claimed_job(core, client)
    _post(client, job_id, "claim", token, attempt=1, worker="w1")
    response = _put(client, job_id, token, _tar({"work/first.txt": b"1", **members}, symlink))
    assert response.status_code == code, response.text
    task_dir = core.files.task_dir(job_id, 0)
    assert not (task_dir / "first.txt").exists()
    assert not (core.files.job_dir(job_id).parent / "escape.txt").exists()


def test_a_cancelled_jobs_worker_is_told_to_stop(core: Core, client: httpx.Client) -> None:
    job_id, token = _claimed_job(core, client)
    _post(client, job_id, "claim", token, attempt=1, worker="w1")
    cancel = client.post(f"/api/jobs/{job_id}/cancel")
    assert cancel.status_code in (200, 202), cancel.text
    beat = _post(client, job_id, "heartbeat", token, attempt=1, worker="w1")
    assert beat.json() == {"continue": False}
    end = dict(attempt=1, worker="w1", exit_code=0, argv=["bash", "run.sh"])
    assert _post(client, job_id, "finish", token, **end).json() == {"recorded": False}
    assert client.get(f"/api/jobs/{job_id}").json()["status"] == "cancelled"
