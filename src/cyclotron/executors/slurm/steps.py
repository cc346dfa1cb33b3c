"""What runs on the cluster for a batch job: one task of its array, and its collect step.

    python -m cyclotron.executors.slurm.steps task <job dir> <SLURM_ARRAY_TASK_ID>
    python -m cyclotron.executors.slurm.steps collect <job dir>

The job directory holds ``input/`` (the job's input), ``job.json`` (the service's plug-in and
its options, the number of tasks, the server's address) and ``.update-key`` (mode 0600: the
job's update key, never on a command line). A task runs the plug-in's command in
``tasks/<index - 1>`` under the local executor's supervision and reports its state and
progress through ``POST /tasks``; the collect step merges the tasks that completed with the
plug-in's merge and sends the results with ``POST /results`` (spec/yaptide.md §4, §6).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from cyclotron.domain.ports import ProgressReport, SimulatorPlugin, TaskOutcome, TaskRun
from cyclotron.errors import PluginError
from cyclotron.estimators.store import read_results
from cyclotron.executors.http import send_with_backoff
from cyclotron.executors.local import LocalExecutor
from cyclotron.plugins import simulator_class
from cyclotron.settings import load_settings

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
KEY_FILE = ".update-key"
PROGRESS_RETRY = 10.0  # seconds: progress is best effort
STATE_RETRY = 3600.0
RESULTS_RETRY = 24 * 3600.0


class Job:
    """The job directory on the cluster, and the server its steps report to."""

    def __init__(self, job_dir: Path) -> None:
        self.dir = job_dir
        self.spec: dict[str, Any] = json.loads((job_dir / JOB_FILE).read_text())
        self.key = (job_dir / KEY_FILE).read_text().strip()
        self.api = str(self.spec["api_url"]).rstrip("/")
        self.http = httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))

    @property
    def ntasks(self) -> int:
        return int(self.spec["ntasks"])

    def plugin(self) -> SimulatorPlugin:
        return simulator_class(str(self.spec["plugin"]))(self.spec.get("options") or {})

    def task_dir(self, index: int) -> Path:
        return self.dir / "tasks" / str(index)

    def report(self, path: str, body: dict[str, Any], retry_for: float) -> None:
        envelope = {"simulation_id": self.spec["job_id"], "update_key": self.key, **body}
        send_with_backoff(self.http, "POST", self.api + path, json=envelope, retry_for=retry_for)


class TaskReports:
    """The local executor's reporter for one array task: every report goes to ``/tasks``."""

    def __init__(self, job: Job, task_id: int, plugin: SimulatorPlugin) -> None:
        self.job, self.task_id, self.plugin = job, task_id, plugin
        self.completed = False
        self.done = threading.Event()

    def _update(self, update: dict[str, Any], retry_for: float) -> None:
        self.job.report("/tasks", {"task_id": self.task_id, "update_dict": update}, retry_for)

    def task_started(self, run: TaskRun, pgid: int) -> bool:
        try:
            self._update({"task_state": "RUNNING"}, PROGRESS_RETRY)
        except Exception:
            log.exception("could not report the start of task %s", self.task_id)
        return True  # SLURM's own state reaches the server too; the task runs regardless

    def task_alive(self, run: TaskRun) -> bool:
        return True  # a cancelled batch job is ended by scancel

    def task_progress(self, run: TaskRun, report: ProgressReport) -> None:
        update: dict[str, Any] = {"simulated_primaries": int(report.done)}
        if report.eta_seconds is not None:
            update["estimated_time"] = max(int(report.eta_seconds), 0)
        self._update(update, PROGRESS_RETRY)

    def task_finished(self, run: TaskRun, outcome: TaskOutcome) -> None:
        try:
            reason = None
            if outcome.succeeded:
                try:
                    self.plugin.collect_task(run.workdir)
                except PluginError as exc:
                    reason = exc.message
            else:
                # The engine's name, not its command line (the cluster's paths and flags).
                reason = outcome.error or f"{run.service} exited with status {outcome.exit_code}"
            self.completed = reason is None
            if reason is not None:
                logs = {"reason": reason, "stderr": outcome.stderr_tail}
                self.job.report(
                    "/logfiles", {"task_id": self.task_id, "logfiles": logs}, STATE_RETRY
                )
            self._update({"task_state": "COMPLETED" if self.completed else "FAILED"}, STATE_RETRY)
        finally:
            self.done.set()


def run_task(job_dir: Path, task_id: int) -> int:
    """Run array task ``task_id`` (1-based); 0 when it completed."""
    job = Job(job_dir)
    index = task_id - 1
    workdir = job.task_dir(index)
    if workdir.exists():
        shutil.rmtree(workdir)
    shutil.copytree(job.dir / "input", workdir, symlinks=True)
    plugin = job.plugin()
    seeds = job.spec.get("seeds") or []
    seed = int(seeds[index]) if index < len(seeds) else task_id
    command = plugin.task_command(workdir, index, job.ntasks, seed=seed)
    env = {
        **command.env,
        "CYCLOTRON_JOB_ID": str(job.spec["job_id"]),
        "CYCLOTRON_TASK_INDEX": str(index),
        "CYCLOTRON_NTASKS": str(job.ntasks),
        "CYCLOTRON_SEED": str(seed),
    }
    run = TaskRun(
        job_id=str(job.spec["job_id"]),
        service=str(job.spec["service"]),
        task_index=index,
        attempt=1,
        workdir=workdir,
        stdout_path=job.dir / "logs" / f"task-{index}.stdout",
        stderr_path=job.dir / "logs" / f"task-{index}.stderr",
        command=replace(command, env=env),
        time_limit=None,  # SLURM's --time ends it
    )
    executor = LocalExecutor(load_settings(None, {"executors": {"local": {"max_parallel": 1}}}))
    reports = TaskReports(job, task_id, plugin)
    executor.start(reports)
    executor.submit(run, plugin.progress_parser())
    reports.done.wait()
    return 0 if reports.completed else 1


def run_collect(job_dir: Path) -> int:
    """Merge the completed tasks and send the results; 0 when the server has them."""
    job = Job(job_dir)
    job.report("/jobs", {"job_state": "MERGING_RUNNING"}, STATE_RETRY)
    plugin = job.plugin()
    completed = []
    for index in range(job.ntasks):
        try:
            plugin.collect_task(job.task_dir(index))
        except (PluginError, OSError):
            continue
        completed.append(index)
    try:
        if not completed:
            raise PluginError("no task completed")
        plugin.merge(job.dir, completed)
        estimators = read_results(job.dir / "results")
        if not estimators:
            raise PluginError("the merge left no results")
    except PluginError as exc:
        log.error("collect failed: %s", exc.message)
        body = {"job_state": "FAILED", "log": {"collect": exc.message}}
        job.report("/jobs", body, STATE_RETRY)
        return 1
    job.report("/results", {"estimators": estimators}, RESULTS_RETRY)
    return 0


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if len(argv) == 3 and argv[0] == "task":
        return run_task(Path(argv[1]), int(argv[2]))
    if len(argv) == 2 and argv[0] == "collect":
        return run_collect(Path(argv[1]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
