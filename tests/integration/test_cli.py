"""The ``cyclotron`` command line against a live server and a real database."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx
from support.live import LiveServer
from support.tcp_proxy import TcpProxy
from support.upload import submit, wait_until

from cyclotron.storage.migrate import MIGRATIONS

# The newest migration script: ``db upgrade`` brings a new database to it.
NEWEST_REVISION = max(script.name[:4] for script in (MIGRATIONS / "versions").glob("0*.py"))


def cyclotron(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cyclotron", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_submit_waits_and_saves_the_zip(start_server: Any, tmp_path: Path) -> None:
    live = start_server()
    (tmp_path / "run.sh").write_text("sleep 0.5\ncat input.txt input.txt > doubled.txt\n")
    (tmp_path / "input.txt").write_text("abc\n")
    result = cyclotron(
        "submit",
        "run.sh",
        "input.txt",
        "--service",
        "example",
        "--user-id",
        "3",
        "--server",
        live.base_url,
        "--output",
        "out.zip",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    job = int(result.stdout.strip())
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        assert archive.read("doubled.txt") == b"abc\nabc\n"
    status = cyclotron("status", str(job), "--server", live.base_url, cwd=tmp_path)
    assert status.returncode == 0 and status.stdout.split()[:2] == [str(job), "Completed"]
    again = cyclotron(
        "download", str(job), "--server", live.base_url, "-o", "again.zip", cwd=tmp_path
    )
    assert again.returncode == 0
    assert (tmp_path / "again.zip").read_bytes()[:2] == b"PK"


def test_submit_reports_a_failed_job(start_server: Any, tmp_path: Path) -> None:
    live = start_server()
    (tmp_path / "run.sh").write_text("echo 'missing parameter file' >&2\nexit 4\n")
    result = cyclotron("submit", "run.sh", "--server", live.base_url, cwd=tmp_path)
    assert result.returncode == 1
    assert "Failed" in result.stderr and "missing parameter file" in result.stderr


def test_submit_refused_upload_shows_the_message(start_server: Any, tmp_path: Path) -> None:
    live = start_server()
    (tmp_path / "run.sh").write_text("true\n")
    result = cyclotron(
        "submit", "run.sh", "--service", "nope", "--server", live.base_url, cwd=tmp_path
    )
    assert result.returncode == 1 and "Invalid service" in result.stderr


def test_db_upgrade_and_keys(tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "cyclotron.toml"
    config.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\ndatabase_url = "{db_url}"\n'
        "[auth]\nenabled = true\n"
    )
    upgraded = cyclotron("db", "upgrade", "--config", str(config), cwd=tmp_path)
    assert upgraded.returncode == 0 and f"revision {NEWEST_REVISION}" in upgraded.stdout
    created = cyclotron(
        "keys",
        "create",
        "--user-id",
        "5",
        "--label",
        "laptop",
        "--config",
        str(config),
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("cyc_") and len(key) > 30
    listed = cyclotron("keys", "list", "--config", str(config), cwd=tmp_path)
    assert "laptop" in listed.stdout and key not in listed.stdout

    (tmp_path / "srv").mkdir()
    live = LiveServer(tmp_path / "srv", db_url, {"auth": {"enabled": True}}).start()
    try:
        with live.client(headers={"Authorization": f"Bearer {key}"}) as client:
            job = submit(client, "true\n", user_id=5)
            assert wait_until(client, job)["status"] == "Completed"
            revoked = cyclotron("keys", "revoke", "1", "--config", str(config), cwd=tmp_path)
            assert revoked.returncode == 0
            assert client.get(f"/download/{job}").status_code == 401
    finally:
        live.stop()
    assert cyclotron("keys", "revoke", "99", "--config", str(config), cwd=tmp_path).returncode == 1


def test_bad_configuration_stops_the_server_with_the_key_named(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[services.example]\nmax_runs = 0\n")
    result = cyclotron("serve", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "services.example.max_runs" in result.stderr


def test_zip_is_streamed_for_large_results(start_server: Any) -> None:
    live = start_server()
    with live.client() as client:
        job = submit(client, "head -c 50000000 /dev/urandom > big.bin\n")
        assert wait_until(client, job)["status"] == "Completed"
        with client.stream("GET", f"/download/{job}") as response:
            assert response.headers["content-type"] == "application/zip"
            assert "content-length" not in response.headers
            data = b"".join(response.iter_bytes())
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.getinfo("big.bin").file_size == 50_000_000
    assert httpx.get(f"{live.base_url}/health").status_code == 200


def test_native_commands(start_server: Any, tmp_path: Path) -> None:
    live = start_server()
    with live.client() as client:
        created = client.post(
            "/api/jobs",
            json={
                "name": "cli watch",
                "service": "example",
                "ntasks": 2,
                "input": {"kind": "files", "files": {"run.sh": "sleep 0.5\necho ok > out.txt\n"}},
            },
        ).json()
    job = created["id"]
    watched = cyclotron("watch", job, "--server", live.base_url, cwd=tmp_path)
    assert watched.returncode == 0, watched.stderr
    assert f"job {job} completed" in watched.stderr
    listed = cyclotron("jobs", "--status", "completed", "--server", live.base_url, cwd=tmp_path)
    assert listed.returncode == 0 and "cli watch" in listed.stdout
    summary = cyclotron("results", job, "--server", live.base_url, cwd=tmp_path)
    assert summary.returncode == 0 and '"kind": "files"' in summary.stdout
    saved = cyclotron("results", job, "-o", "r.zip", "--server", live.base_url, cwd=tmp_path)
    assert saved.returncode == 0
    with zipfile.ZipFile(tmp_path / "r.zip") as archive:
        assert archive.read("tasks/1/out.txt") == b"ok\n"
    again = cyclotron("cancel", job, "--server", live.base_url, cwd=tmp_path)
    assert again.returncode == 1 and "Cannot cancel job with status completed" in again.stderr
    missing = cyclotron("watch", "f" * 32, "--server", live.base_url, cwd=tmp_path)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_submit_sent_again_after_a_lost_answer_makes_one_job(
    start_server: Any, tmp_path: Path
) -> None:
    """The server stored the job but its answer never arrived: the CLI sends the upload again
    under the same Idempotency-Key and gets that job, not a second one."""
    live = start_server()
    (tmp_path / "run.sh").write_text("true\n")
    with TcpProxy("127.0.0.1", live.port) as proxy:
        proxy.drop_reply_once(b"POST /upload")
        url = f"http://127.0.0.1:{proxy.port}"
        result = cyclotron("submit", "run.sh", "--no-wait", "--server", url, cwd=tmp_path)
    assert proxy.dropped.is_set()
    assert result.returncode == 0, result.stderr
    with live.client() as client:
        jobs = client.get("/api/jobs").json()["jobs"]
    assert [job["number"] for job in jobs] == [int(result.stdout.strip())]
