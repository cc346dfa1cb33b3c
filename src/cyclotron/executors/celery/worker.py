"""``cyclotron worker``: runs the tasks the broker delivers, on any machine reaching the API.

For each message it claims the attempt, fetches the job's input, lets the service's plug-in
prepare the task's command in a fresh working directory, and runs it with the local
executor's supervision (process group, time limit, progress read from the output). Progress
and heartbeats go to the server as they come; when the process ends, the files it wrote and
its logs are uploaded, then how it ended. Every call is retried with backoff on network
errors, 5xx and 429; a 409 or 410 means the attempt is someone else's now, and the message is
dropped.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from celery import Celery

from cyclotron.domain.ports import (
    ProgressReport,
    SimulatorPlugin,
    TaskLimits,
    TaskOutcome,
    TaskRun,
)
from cyclotron.executors.celery.app import TASK_NAME
from cyclotron.executors.http import Refused, send_with_backoff
from cyclotron.executors.local import LocalExecutor
from cyclotron.plugins import simulator_class
from cyclotron.settings import Settings

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
UPLOAD_TIMEOUT = httpx.Timeout(600.0, connect=10.0)


class Dropped(Exception):
    """The server does not want this attempt run or reported any more (a 4xx: 409 or 410
    when it is someone else's now, 404 when the job is gone)."""


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class TaskClient:
    """The worker routes, for one attempt of one task."""

    def __init__(
        self,
        http: httpx.Client,
        api_url: str,
        message: dict[str, Any],
        worker: str,
        retry_for: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = http
        self.base = f"{api_url.rstrip('/')}/api/worker/tasks/{message['job_id']}/"
        self.base += str(message["task_index"])
        self.attempt = int(message["attempt"])
        self.worker = worker
        self.retry_for = retry_for
        self._sleep = sleep
        self._headers = {"Authorization": f"Bearer {message['token']}"}

    def _send(
        self,
        method: str,
        path: str,
        retry: bool,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        try:
            return send_with_backoff(
                self.http,
                method,
                self.base + path,
                retry_for=self.retry_for if retry else 0.0,
                sleep=self._sleep,
                headers={**self._headers, **(headers or {})},
                **kwargs,
            )
        except Refused as exc:
            raise Dropped(str(exc)) from exc

    def _attempt(self, **extra: Any) -> dict[str, Any]:
        return {"attempt": self.attempt, "worker": self.worker, **extra}

    def claim(self) -> dict[str, Any]:
        answer: dict[str, Any] = self._send("POST", "/claim", True, json=self._attempt()).json()
        return answer

    def fetch_input(self, destination: Path) -> None:
        response = self._send("GET", "/input", True, params=self._attempt(), timeout=UPLOAD_TIMEOUT)
        destination.write_bytes(response.content)

    def heartbeat(self, progress: ProgressReport | None = None, patient: bool = False) -> bool:
        """Whether to go on. Only a patient call (the first) is retried: a later one that
        fails is answered by the local executor as "go on", and the next one tries again."""
        body = self._attempt()
        if progress is not None:
            body["progress"] = {
                "done": max(progress.done, 0.0),
                "total": max(progress.total, 0.0),
                "stage": progress.stage,
                "eta_seconds": progress.eta_seconds,
                "counters": dict(progress.counters),
            }
        try:
            answer = self._send("POST", "/heartbeat", patient, json=body).json()
        except Dropped:
            return False
        return bool(answer.get("continue"))

    def upload(self, archive: Path) -> None:
        with archive.open("rb") as handle:
            self._send(
                "PUT",
                "/output",
                True,
                params=self._attempt(),
                content=handle.read(),
                headers={"Content-Type": "application/gzip"},
                timeout=UPLOAD_TIMEOUT,
            )

    def finish(self, outcome: TaskOutcome, argv: tuple[str, ...]) -> None:
        body = self._attempt(
            exit_code=outcome.exit_code,
            stderr_tail=outcome.stderr_tail[-60_000:],
            timed_out=outcome.timed_out,
            cancelled=outcome.cancelled,
            interrupted=outcome.interrupted,
            limit_hit=outcome.limit_hit,
            error=outcome.error,
            seconds=outcome.seconds,
            argv=list(argv),
        )
        self._send("POST", "/finish", True, json=body)


Snapshot = dict[str, tuple[int, int]]


def snapshot(directory: Path) -> Snapshot:
    """Size and modification time of every regular file, by relative path."""
    found: Snapshot = {}
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink():
            stat = path.stat()
            found[path.relative_to(directory).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return found


def output_archive(run: TaskRun, before: Snapshot, destination: Path) -> int:
    """A tar of the files the task created or changed, and of its logs; how many files."""
    after = snapshot(run.workdir)
    changed = sorted(name for name, stat in after.items() if before.get(name) != stat)
    with tarfile.open(destination, "w:gz") as tar:
        for name in changed:
            tar.add(run.workdir / name, arcname=f"work/{name}", recursive=False)
        for stream, path in (("stdout", run.stdout_path), ("stderr", run.stderr_path)):
            if path.is_file():
                tar.add(path, arcname=f"logs/{stream}", recursive=False)
    return len(changed)


@dataclass
class _Attempt:
    client: TaskClient
    before: Snapshot
    scratch: Path
    done: threading.Event = field(default_factory=threading.Event)


class WorkerRuntime:
    """One worker process: its name, its scratch space, and the tasks running in it."""

    def __init__(
        self,
        settings: Settings,
        name: str,
        data_dir: Path,
        api_url: str | None = None,
        retry_for: float = 3600.0,
    ) -> None:
        self.settings = settings
        self.name = name
        self.data_dir = data_dir
        self.api_url = api_url
        self.retry_for = retry_for
        self.http = httpx.Client(timeout=REQUEST_TIMEOUT)
        self.executor = LocalExecutor(settings, die_with_parent=True)
        self.executor.start(self)  # the reporter: each call goes to its attempt's client
        self._lock = threading.Lock()
        self._attempts: dict[tuple[str, int, int], _Attempt] = {}
        self._clear_leftovers()

    def _clear_leftovers(self) -> None:
        """Remove what a worker of this name left when it died (its tasks died with it)."""
        root = self._scratch_root()
        for leftover in root.iterdir():
            log.warning("removing %s, left by a worker %s that died", leftover, self.name)
            shutil.rmtree(leftover, ignore_errors=True)

    # -- one message -----------------------------------------------------------------------

    def run(self, message: dict[str, Any]) -> str:
        """Run one delivered task to its end; what became of it, for the worker's log."""
        api_url = self.api_url or str(message["api_url"])
        client = TaskClient(self.http, api_url, message, self.name, self.retry_for)
        key = (str(message["job_id"]), int(message["task_index"]), int(message["attempt"]))
        try:
            assignment = client.claim()
        except Dropped as exc:
            return f"dropped: {exc}"
        scratch = Path(tempfile.mkdtemp(dir=self._scratch_root(), prefix=f"{key[0][:8]}-"))
        try:
            return self._run(client, assignment, key, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _scratch_root(self) -> Path:
        """This worker's own scratch space: workers sharing a data folder keep apart by name."""
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name) or "worker"
        root = self.data_dir / "tasks" / name
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return root

    def _run(
        self,
        client: TaskClient,
        assignment: dict[str, Any],
        key: tuple[str, int, int],
        scratch: Path,
    ) -> str:
        workdir = scratch / "work"
        workdir.mkdir()
        archive = scratch / "input.tar.gz"
        try:
            client.fetch_input(archive)
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(workdir, filter="data")
        except Dropped as exc:
            return f"dropped: {exc}"
        archive.unlink()
        job_id, index, attempt = key
        try:
            plugin = simulator_class(str(assignment["plugin"]))(assignment.get("options") or {})
            plugin.attach(self.data_dir.resolve())  # its caches live in this worker's data
            command = plugin.task_command(
                workdir, index, int(assignment["ntasks"]), seed=int(assignment["seed"])
            )
        except Exception as exc:
            log.exception("cannot prepare task %s/%s", job_id, index)
            outcome = TaskOutcome(exit_code=None, error=f"the worker cannot prepare it: {exc}")
            client.finish(outcome, ())
            return "failed to prepare"
        env = {str(k): str(v) for k, v in (assignment.get("env") or {}).items()}
        run = TaskRun(
            job_id=job_id,
            service=str(assignment["service"]),
            task_index=index,
            attempt=attempt,
            workdir=workdir,
            stdout_path=scratch / "stdout",
            stderr_path=scratch / "stderr",
            command=replace(command, env={**command.env, **env}),
            time_limit=assignment.get("time_limit"),
            limits=_limits(assignment, plugin),
        )
        entry = _Attempt(client=client, before=snapshot(workdir), scratch=scratch)
        with self._lock:
            self._attempts[key] = entry
        try:
            self.executor.submit(run, plugin.progress_parser())
            entry.done.wait()
        finally:
            with self._lock:
                self._attempts.pop(key, None)
        return "ended"

    # -- the reporter the local executor calls -----------------------------------------------

    def _entry(self, run: TaskRun) -> _Attempt | None:
        with self._lock:
            return self._attempts.get((run.job_id, run.task_index, run.attempt))

    def task_started(self, run: TaskRun, pgid: int) -> bool:
        entry = self._entry(run)
        return entry is not None and entry.client.heartbeat(patient=True)

    def task_alive(self, run: TaskRun) -> bool:
        entry = self._entry(run)
        return entry is not None and entry.client.heartbeat()

    def task_progress(self, run: TaskRun, report: ProgressReport) -> None:
        entry = self._entry(run)
        if entry is not None and not entry.client.heartbeat(report):
            self.executor.cancel_task(run.job_id, run.task_index)

    def task_finished(self, run: TaskRun, outcome: TaskOutcome) -> None:
        entry = self._entry(run)
        if entry is None:
            return
        try:
            archive = entry.scratch / "output.tar.gz"
            output_archive(run, entry.before, archive)
            entry.client.upload(archive)
            entry.client.finish(outcome, run.command.argv)
        except Dropped as exc:
            log.info("task %s/%s was not wanted any more: %s", run.job_id, run.task_index, exc)
        except Exception:
            # Its lease runs out on the server, and the task is run again.
            log.exception("could not report the end of %s/%s", run.job_id, run.task_index)
        finally:
            entry.done.set()


def register(app: Celery, runtime: WorkerRuntime) -> None:
    """Bind the task the server sends to this worker's runtime."""

    @app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def run_task(**message: Any) -> str:
        return runtime.run(message)


def _limits(assignment: Mapping[str, Any], plugin: SimulatorPlugin) -> TaskLimits:
    """The server's limits for the task, with the paths this machine's plug-in reads."""
    sent = TaskLimits.from_wire(assignment.get("limits"))
    return replace(
        sent,
        read_only_paths=(*sent.read_only_paths, *plugin.sandbox_paths()),
        writable_paths=plugin.sandbox_writable_paths(),
    )
