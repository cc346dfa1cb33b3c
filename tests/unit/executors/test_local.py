"""The local executor: real subprocesses, their process groups, their environment."""

from __future__ import annotations

import gc
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cyclotron.domain.ports import (
    ProgressReport,
    TaskCommand,
    TaskLimits,
    TaskOutcome,
    TaskRun,
)
from cyclotron.executors.local import (
    TASK_KEY_VARIABLE,
    LocalExecutor,
    stderr_tail,
    task_key,
)
from cyclotron.settings import Settings, load_settings

# Upper bounds so that a broken executor fails the test instead of hanging it; never asserted.
PATIENCE = 30.0


class RecordingReporter:
    """A TaskReporter that remembers every call and can refuse to let a task live."""

    def __init__(self) -> None:
        self.started: list[tuple[TaskRun, int]] = []
        self.progress: list[ProgressReport] = []
        self.outcomes: dict[tuple[str, int], TaskOutcome] = {}
        self.alive_calls = 0
        self.allow_start = True
        self.alive = True
        self._started = threading.Condition()
        self._finished = threading.Condition()

    def task_started(self, run: TaskRun, pgid: int) -> bool:
        with self._started:
            self.started.append((run, pgid))
            self._started.notify_all()
        return self.allow_start

    def task_alive(self, run: TaskRun) -> bool:
        self.alive_calls += 1
        return self.alive

    def task_progress(self, run: TaskRun, report: ProgressReport) -> None:
        self.progress.append(report)

    def task_finished(self, run: TaskRun, outcome: TaskOutcome) -> None:
        with self._finished:
            self.outcomes[(run.job_id, run.task_index)] = outcome
            self._finished.notify_all()

    def pgid_of(self, run: TaskRun) -> int:
        with self._started:
            assert self._started.wait_for(
                lambda: any(r is run for r, _ in self.started), PATIENCE
            ), "task never started"
            return next(pgid for r, pgid in self.started if r is run)

    def outcome(self, run: TaskRun) -> TaskOutcome:
        key = (run.job_id, run.task_index)
        with self._finished:
            assert self._finished.wait_for(lambda: key in self.outcomes, PATIENCE), (
                "task never ended"
            )
            return self.outcomes[key]


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def is_gone(pid: int) -> bool:
    """Dead: no such process, or only a zombie waiting for init to reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rpartition(b")")[2].split()[0] == b"Z"
    except OSError:
        return True


def live_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    fields = handle.read().rpartition(b")")[2].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != b"Z":
                members.append(int(entry))
    return members


def alive(pid: int) -> bool:
    return not is_gone(pid)


@pytest.fixture(params=["none", "bwrap"])
def sandbox_mode(request: pytest.FixtureRequest) -> str:
    """Every test runs on bare processes and again in the sandbox (bubblewrap)."""
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path, sandbox_mode: str) -> Settings:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    return load_settings(
        empty,
        environ={},
        overrides={
            "server": {"data_dir": str(tmp_path / "data")},
            "dispatch": {"lease_seconds": 0.6},
            "executors": {"local": {"grace_period": 1, "max_parallel": 2}},
            "sandbox": {"mode": sandbox_mode},
        },
    )


@pytest.fixture
def reporter() -> RecordingReporter:
    return RecordingReporter()


@pytest.fixture
def executor(settings: Settings, reporter: RecordingReporter) -> Iterator[LocalExecutor]:
    executor = LocalExecutor(settings)
    executor.start(reporter)
    yield executor
    executor.stop()


def no_progress(line: str) -> ProgressReport | None:
    return None


def make_run(
    tmp_path: Path,
    script: str,
    *,
    time_limit: float | None = None,
    attempt: int = 1,
    env: dict[str, str] | None = None,
) -> TaskRun:
    job_id = uuid.uuid4().hex
    job_dir = tmp_path / job_id
    workdir = job_dir / "tasks" / "0"
    workdir.mkdir(parents=True)
    return TaskRun(
        job_id=job_id,
        service="example",
        task_index=0,
        attempt=attempt,
        workdir=workdir,
        stdout_path=job_dir / "logs" / "0.stdout",
        stderr_path=job_dir / "logs" / "0.stderr",
        command=TaskCommand(
            argv=("bash", "-c", script),
            env={"CYCLOTRON_JOB_ID": job_id, "CYCLOTRON_TASK_INDEX": "0", **(env or {})},
        ),
        time_limit=time_limit,
    )


def read_pid(path: Path) -> int:
    wait_until(lambda: path.exists() and path.read_text().strip() != "", f"{path.name}")
    return int(path.read_text())


# --- runs that end by themselves ------------------------------------------------------------


def test_successful_run_writes_its_files_and_logs(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    run = make_run(
        tmp_path, "echo hi > out.txt; mkdir sub; echo x > sub/y; echo to-stdout; echo to-stderr >&2"
    )
    executor.submit(run, no_progress)
    outcome = reporter.outcome(run)
    assert outcome.exit_code == 0
    assert outcome.succeeded
    assert not (outcome.timed_out or outcome.cancelled or outcome.interrupted)
    assert (run.workdir / "out.txt").read_text() == "hi\n"
    assert (run.workdir / "sub" / "y").read_text() == "x\n"
    assert run.stdout_path.read_text() == "to-stdout\n"
    assert run.stderr_path.read_text() == "to-stderr\n"
    assert outcome.stderr_tail == "to-stderr"
    assert reporter.started[0][1] > 0
    assert executor.free_slots() == 2
    assert executor.running() == 0


@pytest.mark.parametrize("sandbox_mode", ["none"])  # host pids: the sandbox has its own
def test_task_runs_in_its_working_directory_in_its_own_process_group(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    run = make_run(tmp_path, "pwd > where; cut -d' ' -f5 /proc/$$/stat > pgid; echo $$ > pid")
    executor.submit(run, no_progress)
    assert reporter.outcome(run).succeeded
    assert Path((run.workdir / "where").read_text().strip()) == run.workdir
    pgid = int((run.workdir / "pgid").read_text())
    assert pgid == int((run.workdir / "pid").read_text()) == reporter.pgid_of(run)
    assert pgid != os.getpgid(0)


def test_non_zero_exit_reports_status_and_stderr_tail(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    script = "for i in $(seq 1 500); do echo noise line $i >&2; done; echo 'last words' >&2; exit 3"
    run = make_run(tmp_path, script)
    executor.submit(run, no_progress)
    outcome = reporter.outcome(run)
    assert outcome.exit_code == 3
    assert not outcome.succeeded
    assert outcome.stderr_tail.endswith("last words")
    assert len(outcome.stderr_tail.encode()) <= 2048
    assert outcome.stderr_tail.splitlines()[0].startswith("noise line")  # no cut-off first line
    assert "noise line 1\n" not in outcome.stderr_tail


def test_program_that_cannot_start_is_an_error_outcome(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    run = make_run(tmp_path, "")
    run = TaskRun(
        **{**run.__dict__, "command": TaskCommand(argv=(str(tmp_path / "no-such-program"),))}
    )
    executor.submit(run, no_progress)
    outcome = reporter.outcome(run)
    assert outcome.exit_code is None
    assert outcome.error is not None and "no-such-program" in outcome.error
    assert not outcome.succeeded
    assert executor.free_slots() == 2


def test_progress_is_read_from_stdout_and_the_last_report_is_kept(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    def parse(line: str) -> ProgressReport | None:
        match = re.fullmatch(r"PROGRESS (\d+)/(\d+)", line.strip())
        return ProgressReport(float(match[1]), float(match[2])) if match else None

    run = make_run(tmp_path, "for i in $(seq 1 1000); do echo PROGRESS $i/1000; echo other; done")
    executor.submit(run, parse)
    assert reporter.outcome(run).succeeded
    assert reporter.progress, "no progress reported"
    assert reporter.progress[-1] == ProgressReport(1000.0, 1000.0)
    assert len(reporter.progress) < 1000  # throttled, not one report per line
    done = [r.done for r in reporter.progress]
    assert done == sorted(done)
    assert run.stdout_path.read_text().count("PROGRESS") == 1000


# --- runs that are stopped ------------------------------------------------------------------


def test_time_limit_exceeded_is_timed_out(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    run = make_run(tmp_path, "echo started > started; exec sleep 300", time_limit=0.5)
    executor.submit(run, no_progress)
    outcome = reporter.outcome(run)
    assert outcome.timed_out
    assert not outcome.cancelled
    assert not outcome.succeeded
    assert outcome.exit_code == -signal.SIGTERM
    assert (run.workdir / "started").exists()


@pytest.mark.parametrize("sandbox_mode", ["none"])  # host pids: the sandbox has its own
def test_cancel_kills_the_whole_process_group(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    run = make_run(tmp_path, "sleep 300 & echo $! > child.pid; wait")
    executor.submit(run, no_progress)
    child = read_pid(run.workdir / "child.pid")
    assert alive(child)
    executor.cancel(run.job_id)
    assert executor.wait_stopped(run.job_id, PATIENCE)
    outcome = reporter.outcome(run)
    assert outcome.cancelled
    assert not outcome.succeeded
    wait_until(lambda: is_gone(child), "the background child to die")
    assert not live_members(reporter.pgid_of(run))


@pytest.mark.parametrize("sandbox_mode", ["none"])  # host pids: the sandbox has its own
def test_cancel_kills_after_the_grace_period_a_group_that_ignores_sigterm(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    run = make_run(tmp_path, "trap '' TERM; sleep 300 & echo $! > child.pid; wait")
    executor.submit(run, no_progress)
    child = read_pid(run.workdir / "child.pid")
    executor.cancel(run.job_id)
    executor.cancel(run.job_id)  # a repeated cancel is harmless
    assert executor.wait_stopped(run.job_id, PATIENCE)
    outcome = reporter.outcome(run)
    assert outcome.cancelled
    assert outcome.exit_code == -signal.SIGKILL
    wait_until(lambda: is_gone(child), "the background child to die")


def test_a_cancel_right_after_submit_stops_the_task(
    tmp_path: Path, settings: Settings, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    # The cancel arrives before the supervising thread can have started the command.
    runs = [make_run(tmp_path, "sleep 300 & echo $! > child.pid; wait") for _ in range(2)]
    for run in runs:
        executor.submit(run, no_progress)
        executor.cancel(run.job_id)
    for run in runs:
        assert executor.wait_stopped(run.job_id, PATIENCE)
        outcome = reporter.outcome(run)
        assert outcome.cancelled
        assert not outcome.succeeded
        assert not live_members(reporter.pgid_of(run))
    assert executor.running() == 0
    wait_until(
        lambda: executor.free_slots() == settings.executors.local.max_parallel,
        "both slots to be free again",
    )


@pytest.mark.parametrize("sandbox_mode", ["none"])  # host pids: the sandbox has its own
def test_task_alive_false_stops_the_task(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    reporter.alive = False
    run = make_run(tmp_path, "sleep 300 & echo $! > child.pid; wait")
    executor.submit(run, no_progress)
    child = read_pid(run.workdir / "child.pid")
    outcome = reporter.outcome(run)
    assert reporter.alive_calls >= 1
    assert outcome.cancelled
    assert not outcome.succeeded
    wait_until(lambda: is_gone(child), "the background child to die")


def test_lease_is_renewed_while_the_task_runs(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    run = make_run(tmp_path, "while [ ! -e go ]; do sleep 0.05; done")
    executor.submit(run, no_progress)
    reporter.pgid_of(run)
    wait_until(lambda: reporter.alive_calls >= 2, "two lease renewals")
    (run.workdir / "go").touch()
    assert reporter.outcome(run).succeeded


def test_task_started_false_stops_the_task(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    reporter.allow_start = False
    run = make_run(tmp_path, "exec sleep 300")
    executor.submit(run, no_progress)
    outcome = reporter.outcome(run)
    assert outcome.cancelled
    assert not outcome.succeeded


@pytest.mark.parametrize("sandbox_mode", ["none"])  # host pids: the sandbox has its own
def test_leftover_background_process_ends_with_the_task(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    run = make_run(tmp_path, "sleep 300 & echo $! > child.pid; exit 0")
    executor.submit(run, no_progress)
    assert reporter.outcome(run).succeeded
    child = int((run.workdir / "child.pid").read_text())
    wait_until(lambda: is_gone(child), "the leftover child to die")


def test_slots_are_limited_and_given_back(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    first, second = make_run(tmp_path, "exec sleep 300"), make_run(tmp_path, "exec sleep 300")
    executor.submit(first, no_progress)
    executor.submit(second, no_progress)
    assert executor.free_slots() == 0
    with pytest.raises(RuntimeError):
        executor.submit(make_run(tmp_path, "true"), no_progress)
    reporter.pgid_of(first)
    reporter.pgid_of(second)
    assert executor.running() == 2
    executor.cancel(first.job_id)
    assert executor.wait_stopped(first.job_id, PATIENCE)
    reporter.outcome(first)
    assert executor.free_slots() == 1
    assert executor.running() == 1
    assert (second.job_id, 0) not in reporter.outcomes
    assert alive(reporter.pgid_of(second))


def test_stop_interrupts_running_tasks_and_refuses_new_ones(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    run = make_run(tmp_path, "exec sleep 300")
    executor.submit(run, no_progress)
    reporter.pgid_of(run)
    executor.stop()
    outcome = reporter.outcome(run)
    assert outcome.interrupted
    assert not outcome.cancelled and not outcome.succeeded
    assert executor.free_slots() == 0
    with pytest.raises(RuntimeError):
        executor.submit(make_run(tmp_path, "true"), no_progress)


def test_wait_stopped_for_an_unknown_job_is_true(executor: LocalExecutor) -> None:
    assert executor.wait_stopped("no-such-job", 0)


# --- environment ----------------------------------------------------------------------------


def test_task_output_pipe_is_closed(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    """A server runs thousands of tasks: each one's stdout pipe must be closed when it ends."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        run = make_run(tmp_path, "echo out")
        executor.submit(run, no_progress)
        assert reporter.outcome(run).succeeded
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


def test_task_environment_hides_server_secrets(
    tmp_path: Path,
    executor: LocalExecutor,
    reporter: RecordingReporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CYCLOTRON_API_KEY", "server-secret")
    monkeypatch.setenv("CYCLOTRON_SERVER__DATABASE_URL", "postgresql://u:pw@db/x")
    monkeypatch.setenv("DB_PATH", "/srv/secret.db")
    monkeypatch.setenv("UNRELATED_VARIABLE", "kept")
    run = make_run(tmp_path, "env -0 > env.bin", attempt=2)
    executor.submit(run, no_progress)
    assert reporter.outcome(run).succeeded
    raw = (run.workdir / "env.bin").read_bytes().split(b"\0")
    env = dict(item.decode().split("=", 1) for item in raw if item)
    assert "CYCLOTRON_API_KEY" not in env
    assert "CYCLOTRON_SERVER__DATABASE_URL" not in env
    assert "DB_PATH" not in env
    assert "server-secret" not in (run.workdir / "env.bin").read_text(errors="replace")
    assert env["UNRELATED_VARIABLE"] == "kept"
    assert env[TASK_KEY_VARIABLE] == f"{run.job_id}/0/2" == task_key(run)
    assert env["CYCLOTRON_JOB_ID"] == run.job_id  # the plug-in's own variables do arrive
    assert env["CYCLOTRON_TASK_INDEX"] == "0"
    assert "PATH" in env


# --- orphans --------------------------------------------------------------------------------


def spawn_group(
    key: str, script: str = "exec sleep 300", stdout: int | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, TASK_KEY_VARIABLE: key}
    return subprocess.Popen(["bash", "-c", script], env=env, start_new_session=True, stdout=stdout)


def test_reap_orphan_kills_the_group_of_the_lost_attempt(executor: LocalExecutor) -> None:
    key = "job-a/0/1"
    proc = spawn_group(key)
    try:
        executor.reap_orphan(key, proc.pid)
        assert proc.wait(timeout=PATIENCE) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()


def test_reap_orphan_kills_a_group_whose_leader_already_exited(executor: LocalExecutor) -> None:
    key = "job-b/0/1"
    with spawn_group(key, "sleep 300 >/dev/null & echo $!; exit 0", subprocess.PIPE) as leader:
        assert leader.stdout is not None
        child = int(leader.stdout.readline())
        leader.wait(timeout=PATIENCE)
    try:
        assert alive(child)
        executor.reap_orphan(key, leader.pid)
        wait_until(lambda: is_gone(child), "the orphan to die")
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_reap_orphan_leaves_another_attempt_alone(executor: LocalExecutor) -> None:
    proc = spawn_group("job-c/0/2")
    try:
        executor.reap_orphan("job-c/0/1", proc.pid)  # an older attempt with a reused id
        executor.reap_orphan("job-c/0/2", proc.pid + 100_000)  # a group that does not exist
        assert proc.poll() is None
        assert alive(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def test_reap_orphan_leaves_a_process_without_a_task_key_alone(executor: LocalExecutor) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)"],
        env={k: v for k, v in os.environ.items() if k != TASK_KEY_VARIABLE},
        start_new_session=True,
    )
    try:
        executor.reap_orphan("job-d/0/1", proc.pid)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


# --- stderr tail ----------------------------------------------------------------------------


def test_stderr_tail_of_a_short_file(tmp_path: Path) -> None:
    path = tmp_path / "err"
    path.write_bytes(b"\n  first\nsecond  \n\n")
    assert stderr_tail(path) == "first\nsecond"


def test_stderr_tail_of_a_long_file_keeps_whole_last_lines(tmp_path: Path) -> None:
    path = tmp_path / "err"
    path.write_bytes(b"".join(b"line %04d\n" % i for i in range(1000)))
    tail = stderr_tail(path, limit=100)
    assert tail.splitlines()[-1] == "line 0999"
    assert all(re.fullmatch(r"line \d{4}", line) for line in tail.splitlines())
    assert len(tail) <= 100


def test_stderr_tail_of_undecodable_or_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "err"
    path.write_bytes(b"bad \xff byte")
    assert stderr_tail(path) == "bad \ufffd byte"
    assert stderr_tail(tmp_path / "missing") == ""


# --- engines that report in files, or save on a signal -------------------------------------


def test_progress_is_also_read_from_the_commands_progress_files(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    def parse(line: str) -> ProgressReport | None:
        match = re.fullmatch(r"done (\d+) of (\d+)", line.strip())
        return ProgressReport(float(match[1]), float(match[2])) if match else None

    script = "for i in 1 2 3 4; do echo done $i of 4 >> run/engine.out; sleep 0.4; done"
    run = make_run(tmp_path, f"mkdir run; {script}")
    run = replace(run, command=replace(run.command, progress_files=("run/*.out",)))
    executor.submit(run, parse)
    assert reporter.outcome(run).succeeded
    assert reporter.progress, "no progress read from the file"
    assert reporter.progress[-1] == ProgressReport(4.0, 4.0)  # the last line, after the end
    assert 2 <= len(reporter.progress) <= 4  # throttled to about one a second


def test_cancel_first_sends_the_save_signal_then_stops_the_group(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter
) -> None:
    script = "trap 'echo saved > saved' USR1; echo ready > ready; while true; do sleep 0.1; done"
    run = make_run(tmp_path, script)
    run = replace(run, command=replace(run.command, save_signal=signal.SIGUSR1, save_seconds=0.5))
    executor.submit(run, no_progress)
    wait_until(lambda: (run.workdir / "ready").exists(), "the task to start")
    executor.cancel(run.job_id)
    assert executor.wait_stopped(run.job_id, PATIENCE)
    assert (run.workdir / "saved").read_text() == "saved\n"
    outcome = reporter.outcome(run)
    assert outcome.cancelled and outcome.exit_code == -signal.SIGTERM


@pytest.mark.parametrize("sandbox_mode", ["none"])
@pytest.mark.parametrize("launcher", ["prlimit", "child"])
def test_a_task_runs_under_its_limits(
    tmp_path: Path, executor: LocalExecutor, reporter: RecordingReporter, launcher: str
) -> None:
    # Set by prlimit when installed, else by the server's child before exec: the same limits.
    if launcher == "child":
        executor.sandbox = replace(executor.sandbox, prlimit=None)
    elif executor.sandbox.prlimit is None:
        pytest.skip("prlimit (util-linux) is not installed")
    limits = TaskLimits(cpu_seconds=7, memory_bytes=512 * 2**20, output_bytes=64 * 2**20)
    run = replace(make_run(tmp_path, "ulimit -t; ulimit -Ht; ulimit -d; ulimit -f"), limits=limits)
    executor.submit(run, no_progress)
    assert reporter.outcome(run).succeeded
    # CPU seconds, then its hard limit (SIGKILL after SIGXCPU); KiB of data; KiB of a file.
    assert run.stdout_path.read_text().split() == ["7", "12", "524288", "65536"]
