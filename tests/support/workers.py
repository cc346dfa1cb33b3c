"""Celery workers for tests: ``cyclotron worker`` processes on the test's Redis broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import redis

REDIS_URL = os.environ.get("CYCLOTRON_TEST_REDIS", "redis://127.0.0.1:6379/15")
STARTUP_TIMEOUT = 60.0


def broker(queue_prefix: str = "test") -> dict[str, Any]:
    """``[executors.celery]`` on the test Redis, with a queue of its own for this test."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        raise RuntimeError(
            f"Redis is required for the Celery tests and is not reachable at {REDIS_URL}: {exc}. "
            "The README's test command starts it."
        ) from exc
    return {"broker_url": REDIS_URL, "queue": f"{queue_prefix}-{uuid.uuid4().hex[:10]}"}


class Worker:
    """One ``cyclotron worker`` process, started in its own session so a test can kill it."""

    def __init__(self, workdir: Path, config_path: Path, name: str, concurrency: int = 1) -> None:
        self.name = name
        self.workdir = workdir / f"worker-{name}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "worker.log"
        self.argv = [
            sys.executable,
            "-m",
            "cyclotron",
            "worker",
            "--config",
            str(config_path),
            "--name",
            name,
            "--concurrency",
            str(concurrency),
            "--data-dir",
            str(self.workdir / "scratch"),
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOTRON_")}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while " ready." not in self.log():
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited at start-up:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} did not start:\n{self.log()}")
            time.sleep(0.1)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as a crashed machine: nothing is acknowledged or cleaned up."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


def processes_of(task_key: str) -> list[int]:
    """Processes still running attempt ``task_key`` (``job/index/attempt``) on this machine."""
    found = []
    marker = f"CYCLOTRON_TASK_KEY={task_key}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if marker in handle.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found
