"""A ``cyclotron worker`` started after one of its name died removes what that one left."""

from __future__ import annotations

from pathlib import Path

from cyclotron.executors.celery.worker import WorkerRuntime
from cyclotron.settings import load_settings


def test_a_restarted_worker_removes_its_predecessors_scratch_only(tmp_path: Path) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("")
    settings = load_settings(config, environ={}, overrides={})
    data = tmp_path / "worker-data"
    left = data / "tasks" / "w1_host" / "0123abcd-xyz" / "work"
    left.mkdir(parents=True)
    (left / "out.dat").write_bytes(b"partial")
    sibling = data / "tasks" / "w2_host" / "4567-running"
    sibling.mkdir(parents=True)
    runtime = WorkerRuntime(settings, "w1@host", data)
    try:
        assert list((data / "tasks" / "w1_host").iterdir()) == []
        assert sibling.is_dir()  # another worker's running task is left alone
    finally:
        runtime.executor.stop()
        runtime.http.close()
