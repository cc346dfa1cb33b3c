"""What the sandbox costs per task: a trivial ``true`` task with and without bubblewrap.

1. Through the real ``LocalExecutor``: two executors in the same process, one with
   ``[sandbox] mode = "bwrap"`` and one with ``"none"`` (one slot each, a temporary data
   directory, the limits of a default ``script`` service), each running ``--tasks`` tasks
   whose command is ``true``, one at a time, alternating between the two (which one goes first
   alternates too), so that other work on the machine weighs on both alike. A task's time runs
   from ``submit`` to the reporter's ``task_finished``: start-up, the wait, the outcome.
2. Raw: ``subprocess.run`` of ``true``, and of the argv the sandbox builds for that task
   (``bwrap … [setpriv …] true``, as a root server runs it), alternating the same way; and the
   time ``Sandbox.command`` takes to build that argv.

It prints the median and p90 of each, and per pair the time the sandbox adds and the ratio.
Under each executor line, the process's own time as the executor measured it
(``TaskOutcome.seconds``): the executor waits with ``Popen.wait(timeout)``, which polls (sleeps
of 0.5 ms doubling up to 50 ms, so an end is seen at 7.5, 15.5, 31.5 ms …), and its figures
step in that pattern; the raw figures do not.

Run: ``.venv/bin/python bench/sandbox.py [--tasks 200]``. Exit status 1 when bubblewrap cannot
run here or a task does not succeed; figures are reported, never enforced. The host line shows
the machine's load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from cyclotron.domain.ports import ProgressReport, TaskCommand, TaskOutcome, TaskRun
from cyclotron.executors.local import LocalExecutor
from cyclotron.plugins import simulator_class
from cyclotron.services.catalog import ConfiguredService
from cyclotron.settings import ServiceSettings, Settings, load_settings

WARM_UP = 5  # tasks per kind before the measured ones, not counted
TASK_TIMEOUT = 30.0
MODES = ("none", "bwrap")


class BenchFailed(RuntimeError):
    pass


class TimingReporter:
    """A TaskReporter that notes when each task ended and how."""

    def __init__(self) -> None:
        self._ended: dict[str, tuple[float, TaskOutcome]] = {}
        self._finished = threading.Condition()

    def task_started(self, run: TaskRun, pgid: int) -> bool:
        return True

    def task_alive(self, run: TaskRun) -> bool:
        return True

    def task_progress(self, run: TaskRun, report: ProgressReport) -> None:
        pass

    def task_finished(self, run: TaskRun, outcome: TaskOutcome) -> None:
        ended = time.perf_counter()
        with self._finished:
            self._ended[run.job_id] = (ended, outcome)
            self._finished.notify_all()

    def wait(self, run: TaskRun) -> tuple[float, TaskOutcome]:
        with self._finished:
            if not self._finished.wait_for(lambda: run.job_id in self._ended, TASK_TIMEOUT):
                raise BenchFailed(f"task {run.job_id} did not end in {TASK_TIMEOUT:.0f} s")
            return self._ended.pop(run.job_id)


def no_progress(line: str) -> ProgressReport | None:
    return None


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil(n * fraction), at least 1
    return ordered[int(rank) - 1]


def settings_for(mode: str, data_dir: Path) -> Settings:
    empty = data_dir.parent / "empty.toml"
    empty.write_text("")
    return load_settings(
        empty,
        environ={},
        overrides={
            "server": {"data_dir": str(data_dir)},
            "executors": {"local": {"max_parallel": 1}},
            "sandbox": {"mode": mode},
        },
    )


def make_run(data_dir: Path) -> TaskRun:
    """A ``true`` task laid out as the server lays one out, in its data directory."""
    service = ServiceSettings()
    plugin = simulator_class(service.plugin)(service.model_dump())
    job_id = uuid.uuid4().hex
    job_dir = data_dir / "jobs" / job_id
    workdir = job_dir / "tasks" / "0"
    workdir.mkdir(parents=True)
    return TaskRun(
        job_id=job_id,
        service="example",
        task_index=0,
        attempt=1,
        workdir=workdir,
        stdout_path=job_dir / "logs" / "0.stdout",
        stderr_path=job_dir / "logs" / "0.stderr",
        command=TaskCommand(argv=("true",), env={"CYCLOTRON_JOB_ID": job_id}),
        time_limit=service.time_limit,
        limits=ConfiguredService("example", service, plugin).task_limits(),
    )


def one_task(
    executor: LocalExecutor, reporter: TimingReporter, data_dir: Path
) -> tuple[float, float]:
    """Seconds from submitting a ``true`` task to the report of its end, and the seconds its
    process ran as the executor saw them."""
    run = make_run(data_dir)
    start = time.perf_counter()
    executor.submit(run, no_progress)
    ended, outcome = reporter.wait(run)
    if not outcome.succeeded:
        detail = outcome.error or outcome.stderr_tail or f"exit {outcome.exit_code}"
        raise BenchFailed(f"a task of the {executor.sandbox.configured!r} executor: {detail}")
    return ended - start, outcome.seconds or 0.0


def executor_times(tasks: int, root: Path) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per mode, each measured task's seconds and its process's, the modes taking turns."""
    reporter = TimingReporter()
    executors: dict[str, LocalExecutor] = {}
    dirs: dict[str, Path] = {}
    try:
        for mode in MODES:
            (root / mode).mkdir()
            dirs[mode] = root / mode / "data"
            executor = LocalExecutor(settings_for(mode, dirs[mode]))
            if executor.sandbox.configured == "bwrap" and executor.sandbox.bwrap is None:
                raise BenchFailed(f"no sandbox: {executor.sandbox.reason}")
            executor.start(reporter)
            executors[mode] = executor
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        process: dict[str, list[float]] = {mode: [] for mode in MODES}
        for i in range(WARM_UP + tasks):
            for mode in MODES if i % 2 == 0 else reversed(MODES):
                seconds, ran = one_task(executors[mode], reporter, dirs[mode])
                if i >= WARM_UP:
                    times[mode].append(seconds)
                    process[mode].append(ran)
        return times, process
    finally:
        for executor in executors.values():
            executor.stop()


def raw_times(tasks: int, root: Path) -> tuple[dict[str, list[float]], list[str]]:
    """Per kind, the seconds of ``subprocess.run`` of ``true`` and of the sandbox's argv for it,
    and of building that argv (``build``); and the argv."""
    data_dir = root / "raw" / "data"
    data_dir.mkdir(parents=True)
    executor = LocalExecutor(settings_for("bwrap", data_dir))
    sandbox = executor.sandbox
    run = make_run(data_dir)
    uid = sandbox.uid_of_slot(0)
    sandbox.prepare(run, uid)
    argvs = {"true": ["true"], "bwrap": sandbox.command(run, uid)}
    times: dict[str, list[float]] = {kind: [] for kind in (*argvs, "build")}
    for _ in range(tasks):
        start = time.perf_counter()
        sandbox.command(run, uid)
        times["build"].append(time.perf_counter() - start)
    for i in range(WARM_UP + tasks):
        for kind in argvs if i % 2 == 0 else reversed(list(argvs)):
            start = time.perf_counter()
            done = subprocess.run(argvs[kind], cwd=run.workdir, capture_output=True, check=False)
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                error = done.stderr.decode(errors="replace").strip()
                raise BenchFailed(f"{kind}: exit {done.returncode}: {error}")
            if i >= WARM_UP:
                times[kind].append(seconds)
    return times, argvs["bwrap"]


def bwrap_version() -> str:
    found = shutil.which("bwrap")
    if found is None:
        return "not installed"
    done = subprocess.run([found, "--version"], capture_output=True, text=True, check=False)
    return f"{done.stdout.strip() or 'bwrap'} ({found})"


def report(
    tasks: int,
    load: float,
    executor: dict[str, list[float]],
    process: dict[str, list[float]],
    raw: dict[str, list[float]],
    argv: list[str],
) -> None:
    def ms(value: float) -> str:
        return f"{value * 1000:8.2f} ms"

    def row(name: str, values: list[float]) -> None:
        print(f"{name:<32} {ms(statistics.median(values))}  {ms(percentile(values, 0.90))}")

    def pair(bare: list[float], confined: list[float]) -> None:
        median_b, median_c = statistics.median(bare), statistics.median(confined)
        p90_b, p90_c = percentile(bare, 0.90), percentile(confined, 0.90)
        print(f"{'  added by the sandbox':<32} {ms(median_c - median_b)}  {ms(p90_c - p90_b)}")
        print(f"{'  ratio sandbox/bare':<32} {median_c / median_b:8.2f} x  {p90_c / p90_b:8.2f} x")

    user = "root: a uid per task slot" if os.geteuid() == 0 else "not root: a user namespace"
    print(f"tasks                            {tasks} per kind, alternating "
          f"(+{WARM_UP} warm-up each, not counted)")  # fmt: skip
    print(f"host                             {os.cpu_count()} CPUs, 1-min load {load:.2f} "
          f"before the run; {user}")  # fmt: skip
    print(f"bubblewrap                       {bwrap_version()}")
    print(f"sandbox argv                     {len(argv)} arguments")
    print(f"{'per task':<32} {'median':>11}  {'p90':>11}")
    for mode in MODES:
        row(f"executor, mode {mode}", executor[mode])
        row("  its process (outcome.seconds)", process[mode])
    pair(executor["none"], executor["bwrap"])
    row("subprocess, true", raw["true"])
    row("subprocess, bwrap ... true", raw["bwrap"])
    pair(raw["true"], raw["bwrap"])
    row("building the sandbox argv", raw["build"])


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200, help="tasks per kind (default 200)")
    args = parser.parse_args()
    if args.tasks < 1:
        parser.error("--tasks must be at least 1")
    load = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="cyclotron-bench-"))
    try:
        executor, process = executor_times(args.tasks, root)
        raw, argv = raw_times(args.tasks, root)
    except (BenchFailed, OSError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report(args.tasks, load, executor, process, raw, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
