"""The ``local`` executor: tasks as subprocesses of this server, each in its own process group."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, ClassVar

from cyclotron.domain.ports import (
    Executor,
    ProgressParser,
    ProgressReport,
    TaskOutcome,
    TaskReporter,
    TaskRun,
)
from cyclotron.executors.sandbox import (
    Sandbox,
    directory_size,
    exit_signal,
    limit_of_signal,
    trim_to,
)
from cyclotron.settings import Settings

log = logging.getLogger(__name__)

STDERR_TAIL_BYTES = 2048
PROGRESS_INTERVAL = 1.0
TAIL_INTERVAL = 0.5  # how often progress files are looked at
QUOTA_INTERVAL = 1.0  # how often the working directory's size is measured against its quota
TASK_KEY_VARIABLE = "CYCLOTRON_TASK_KEY"
ENVIRON_READ_TRIES = 5
PR_SET_PDEATHSIG = 1
# Variables of the server that a task must never see (keys, database credentials).
_PRIVATE_PREFIXES = ("CYCLOTRON_",)
_PRIVATE_NAMES = frozenset({"DB_PATH", "DATA_PATH"})


def task_key(run: TaskRun) -> str:
    """Marks a task's processes, so that an orphan can be recognised after a crash."""
    return f"{run.job_id}/{run.task_index}/{run.attempt}"


def task_environment(run: TaskRun) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_PRIVATE_PREFIXES) and k not in _PRIVATE_NAMES
    }
    env.update(run.command.env)
    env[TASK_KEY_VARIABLE] = task_key(run)
    return env


def stderr_tail(path: os.PathLike[str], limit: int = STDERR_TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            data = handle.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if size > limit:  # drop the partial first line
        text = text.partition("\n")[2]
    return text.strip()


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _die_with_parent() -> None:
    """In the child before exec: receive SIGKILL when the thread that started it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _command_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", "rb") as handle:
            return handle.read().decode(errors="replace").strip()
    except OSError:
        return ""


def _findable(program: str, workdir: Path, path: str | None) -> bool:
    """Whether ``program`` names an executable, as exec would look it up from ``workdir``."""
    if "/" in program:
        return os.access(workdir / program, os.X_OK)  # an absolute path stays itself
    return shutil.which(program, path=path) is not None


def signal_task(pgid: int, signum: int, sandboxed: bool) -> None:
    """Signal a task's processes. In a sandbox the signal goes to what runs inside it, not to
    bubblewrap, whose end would end them all at once (SIGKILL still goes to the group)."""
    if not sandboxed or signum == signal.SIGKILL:
        signal_group(pgid, signum)
        return
    inside = [pid for pid in _group_members(pgid) if _command_name(pid) != "bwrap"]
    if not inside:  # still building the sandbox: nothing has started that could save or stop
        signal_group(pgid, signal.SIGKILL)
    for pid in inside:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == str(pgid).encode():
            members.append(int(entry))
    return members


def _runs_task(pid: int, key: str) -> bool | None:
    """Whether ``pid`` was started for task attempt ``key`` (its pid may have been reused);
    None when its environment cannot be read right now."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            environ = handle.read()
    except OSError:
        return False
    if not environ:
        return None
    return f"{TASK_KEY_VARIABLE}={key}".encode() in environ.split(b"\0")


class _ExitWatch:
    """Waits for a process's end with a timeout, woken the moment it ends (a pidfd), where
    ``Popen.wait(timeout)`` would poll with growing sleeps."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._fd: int | None = None

    def __enter__(self) -> Callable[[float], int | None]:
        with contextlib.suppress(AttributeError, OSError):
            self._fd = os.pidfd_open(self._proc.pid)
        return self._wait

    def __exit__(self, *_: object) -> None:
        if self._fd is not None:
            os.close(self._fd)

    def _wait(self, timeout: float) -> int | None:
        """The exit status, or None when ``timeout`` seconds passed first."""
        if self._fd is not None:
            ready, _, _ = select.select([self._fd], [], [], timeout)
            return self._proc.wait() if ready else None
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None


@dataclass
class _Running:
    run: TaskRun
    proc: subprocess.Popen[bytes] | None = None  # None until the command has started
    stop_reason: str | None = None
    done: threading.Event = field(default_factory=threading.Event)
    kill_timer: threading.Timer | None = None


class LocalExecutor(Executor):
    """At most ``max_parallel`` tasks at a time; cancel terminates the whole process group."""

    name: ClassVar[str] = "local"

    def __init__(self, settings: Settings, *, die_with_parent: bool = False) -> None:
        # A worker's tasks end with it (kill -9 included): its task is then run elsewhere.
        self._die_with_parent = die_with_parent
        self._max = settings.executors.local.max_parallel
        self._grace = settings.executors.local.grace_period
        self._heartbeat = settings.dispatch.lease_seconds / 3
        self._lock = threading.Lock()
        self._reserved = 0
        self._supervisors: set[threading.Thread] = set()
        self._running: dict[tuple[str, int], _Running] = {}
        self._reporter: TaskReporter | None = None
        self._stopping = False
        self.sandbox = Sandbox.of(settings)
        self._idle_slots = list(range(self._max))  # a root server's tasks: a uid per slot

    def start(self, reporter: TaskReporter) -> None:
        self._reporter = reporter

    def free_slots(self) -> int:
        with self._lock:
            return 0 if self._stopping else self._max - self._reserved

    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def submit(self, run: TaskRun, parse_progress: ProgressParser) -> None:
        with self._lock:
            if self._stopping or self._reserved >= self._max:
                raise RuntimeError("local executor has no free slot")
            self._reserved += 1
            # Known from now on, so that a cancel arriving before the command starts holds.
            entry = _Running(run=run)
            self._running[(run.job_id, run.task_index)] = entry
        thread = threading.Thread(
            target=self._supervise,
            args=(entry, parse_progress),
            name=f"task-{run.job_id[:8]}-{run.task_index}",
            daemon=True,
        )
        with self._lock:
            self._supervisors.add(thread)
        thread.start()

    def cancel(self, job_id: str) -> None:
        for entry in self._entries(job_id):
            self._stop(entry, "cancelled")

    def cancel_task(self, job_id: str, task_index: int) -> None:
        """Stop one task (its attempt is no longer wanted)."""
        with self._lock:
            entry = self._running.get((job_id, task_index))
        if entry is not None:
            self._stop(entry, "cancelled")

    def wait_stopped(self, job_id: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for entry in self._entries(job_id):
            if not entry.done.wait(max(0.0, deadline - time.monotonic())):
                return False
        return True

    def stop(self) -> None:
        """Interrupt every task and wait until each one's end has been reported."""
        with self._lock:
            self._stopping = True
            entries = list(self._running.values())
            supervisors = list(self._supervisors)
        for entry in entries:
            self._stop(entry, "interrupted")
        deadline = time.monotonic() + self._grace + 10
        for thread in supervisors:
            thread.join(max(0.0, deadline - time.monotonic()))

    def reap_orphan(self, task_key: str, handle: int) -> None:
        """Kill process group ``handle`` if one of its members still runs attempt ``task_key``."""
        for _ in range(ENVIRON_READ_TRIES):
            found = [_runs_task(pid, task_key) for pid in _group_members(handle)]
            if any(found):
                log.warning("killing process group %s left by lost task %s", handle, task_key)
                signal_group(handle, signal.SIGKILL)
                return
            if None not in found:
                return
            time.sleep(0.05)  # a member in the middle of exec shows no environment yet

    # --- one task ------------------------------------------------------------------------

    def _entries(self, job_id: str) -> list[_Running]:
        with self._lock:
            return [e for (jid, _), e in self._running.items() if jid == job_id]

    def _stop(self, entry: _Running, reason: str) -> None:
        """SIGTERM the group now, SIGKILL it after the grace period; a task whose command has
        not started yet is stopped as soon as it starts."""
        with self._lock:
            if entry.stop_reason is not None or entry.done.is_set():
                return
            entry.stop_reason = reason
            if entry.proc is None:
                return
        self._signal_stop(entry)

    def _signal_stop(self, entry: _Running) -> None:
        assert entry.proc is not None
        command = entry.run.command
        if entry.stop_reason == "cancelled" and command.save_signal is not None:
            # Let the engine save its results first; stop it as usual afterwards.
            signal_task(entry.proc.pid, command.save_signal, self._confined)
            entry.kill_timer = threading.Timer(command.save_seconds, self._terminate, (entry,))
            entry.kill_timer.daemon = True
            entry.kill_timer.start()
            return
        self._terminate(entry)

    def _terminate(self, entry: _Running) -> None:
        if entry.done.is_set() or entry.proc is None:
            return
        pgid = entry.proc.pid
        signal_task(pgid, signal.SIGTERM, self._confined)
        entry.kill_timer = threading.Timer(self._grace, signal_group, (pgid, signal.SIGKILL))
        entry.kill_timer.daemon = True
        entry.kill_timer.start()

    def _supervise(self, entry: _Running, parse_progress: ProgressParser) -> None:
        assert self._reporter is not None
        run = entry.run
        try:
            outcome = self._execute(entry, parse_progress)
        except Exception as exc:  # an executor bug must not leave the task RUNNING
            log.exception("local executor failed on %s/%s", run.job_id, run.task_index)
            outcome = TaskOutcome(exit_code=None, error=f"executor error: {exc}")
        finally:
            with self._lock:
                self._reserved -= 1
                if self._running.get((run.job_id, run.task_index)) is entry:
                    del self._running[(run.job_id, run.task_index)]
            entry.done.set()
        try:
            self._reporter.task_finished(run, outcome)
        except Exception:
            # The task keeps its lease until it expires; it is then recovered and run again.
            log.exception("could not record the end of %s/%s", run.job_id, run.task_index)
        finally:
            with self._lock:
                self._supervisors.discard(threading.current_thread())

    @property
    def _confined(self) -> bool:
        return self.sandbox.bwrap is not None

    def _take_slot(self) -> int:
        with self._lock:
            return self._idle_slots.pop() if self._idle_slots else self._max

    def _give_slot(self, slot: int) -> None:
        with self._lock:
            if slot < self._max:
                self._idle_slots.append(slot)

    def _execute(self, entry: _Running, parse_progress: ProgressParser) -> TaskOutcome:
        slot = self._take_slot()
        try:
            return self._execute_in(entry, parse_progress, self.sandbox.uid_of_slot(slot))
        finally:
            self._give_slot(slot)

    def _start_process(
        self, run: TaskRun, uid: int | None, err: IO[bytes]
    ) -> subprocess.Popen[bytes]:
        """The task's command, confined and limited, in a process group of its own."""
        env = task_environment(run)
        program = run.command.argv[0]
        limits = self.sandbox.limit_command(run.limits, uid)
        launched = limits is not None and not self._die_with_parent
        if (self._confined or launched) and not _findable(program, run.workdir, env.get("PATH")):
            # Say so here: launched, it would only show as the launcher's exit status.
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
        self.sandbox.prepare(run, uid)
        argv = self.sandbox.command(run, uid, self._die_with_parent)
        in_child: Callable[[], None] | None = None
        if launched:
            # No Python in the child: it is started without a copy of this process (vfork).
            assert limits is not None
            argv = [*limits, *argv]
        else:
            limit = self.sandbox.limiter(run.limits, uid)

            def in_child() -> None:
                limit()
                if self._die_with_parent:
                    _die_with_parent()

        return subprocess.Popen(
            argv,
            cwd=run.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            start_new_session=True,
            preexec_fn=in_child,
        )

    def _execute_in(
        self, entry: _Running, parse_progress: ProgressParser, uid: int | None
    ) -> TaskOutcome:
        assert self._reporter is not None
        run = entry.run
        run.stdout_path.parent.mkdir(parents=True, exist_ok=True)
        with open(run.stdout_path, "wb") as out, open(run.stderr_path, "wb") as err:
            try:
                proc = self._start_process(run, uid, err)
            except OSError as exc:
                return TaskOutcome(
                    exit_code=None, error=f"cannot start {run.command.argv[0]}: {exc}"
                )
            started = time.monotonic()
            with self._lock:
                entry.proc = proc
                stopped_before_start = entry.stop_reason is not None
            try:
                if stopped_before_start:
                    self._signal_stop(entry)
                assert proc.stdout is not None
                pump = threading.Thread(
                    target=self._pump, args=(proc.stdout, out, entry, parse_progress), daemon=True
                )
                pump.start()
                tail = None
                if run.command.progress_files:
                    tail = threading.Thread(
                        target=self._tail, args=(entry, parse_progress), daemon=True
                    )
                    tail.start()
                if not self._report_start(run, proc.pid):
                    self._stop(entry, "cancelled")
                exit_code = self._wait(entry)
                # Whatever run.sh left behind in its group ends with it.
                signal_group(proc.pid, signal.SIGKILL)
                pump.join(timeout=5)
                entry.done.set()
                if tail is not None:
                    tail.join(timeout=5)
            finally:
                if entry.kill_timer is not None:
                    entry.kill_timer.cancel()
                entry.done.set()
        return self._outcome(entry, exit_code, time.monotonic() - started)

    def _outcome(self, entry: _Running, exit_code: int, seconds: float) -> TaskOutcome:
        run, reason = entry.run, entry.stop_reason
        if self._confined and (signum := exit_signal(exit_code)) is not None:
            exit_code = -signum  # bubblewrap tells of a signal as 128 + its number
        limit = "output" if reason == "output" else None
        if exit_code < 0:
            limit = limit or limit_of_signal(-exit_code)
        quota = run.limits.output_bytes
        if limit is None and quota is not None and directory_size(run.workdir) > quota:
            limit = "output"  # written, and ended, between two looks at the folder
        if limit == "output" and quota is not None:
            trim_to(run.workdir, quota)  # what the task wrote, kept within its quota
        return TaskOutcome(
            exit_code=exit_code,
            stderr_tail=stderr_tail(run.stderr_path),
            timed_out=reason == "time_limit",
            cancelled=reason == "cancelled",
            interrupted=reason == "interrupted",
            seconds=seconds,
            limit_hit=limit,
        )

    def _wait(self, entry: _Running) -> int:
        """Wait for the process, renewing the lease and enforcing the time limit."""
        assert self._reporter is not None and entry.proc is not None
        run, proc = entry.run, entry.proc
        now = time.monotonic()
        deadline = now + run.time_limit if run.time_limit else None
        next_beat = now + self._heartbeat
        quota = run.limits.output_bytes
        next_measure = now + QUOTA_INTERVAL if quota is not None else None
        with _ExitWatch(proc) as exited:
            while True:
                wake = min(t for t in (next_beat, deadline, next_measure) if t is not None)
                code = exited(max(0.0, wake - time.monotonic()))
                if code is not None:
                    return code
                deadline, next_beat, next_measure = self._check(
                    entry, deadline, next_beat, next_measure
                )

    def _check(
        self,
        entry: _Running,
        deadline: float | None,
        next_beat: float,
        next_measure: float | None,
    ) -> tuple[float | None, float, float | None]:
        """What a running task is due: its time limit, its quota, its lease; the next times."""
        run = entry.run
        quota = run.limits.output_bytes
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            self._stop(entry, "time_limit")
            deadline = None
        if quota is not None and next_measure is not None and now >= next_measure:
            next_measure = now + QUOTA_INTERVAL
            if directory_size(run.workdir) > quota:
                self._stop_over_quota(entry)
                next_measure = None
        if now >= next_beat:
            next_beat = now + self._heartbeat
            if not self._still_wanted(run):
                self._stop(entry, "cancelled")
        return deadline, next_beat, next_measure

    def _stop_over_quota(self, entry: _Running) -> None:
        assert entry.proc is not None
        self._stop(entry, "output")
        signal_group(entry.proc.pid, signal.SIGKILL)  # it stops writing now

    def _report_start(self, run: TaskRun, pgid: int) -> bool:
        """Record the start; a task whose start cannot be recorded is not left running."""
        assert self._reporter is not None
        try:
            return self._reporter.task_started(run, pgid)
        except Exception:
            log.exception("could not record the start of %s/%s", run.job_id, run.task_index)
            return False

    def _report_progress(self, run: TaskRun, report: ProgressReport) -> None:
        """Progress is best effort: losing one report must not stop the output being read."""
        assert self._reporter is not None
        try:
            self._reporter.task_progress(run, report)
        except Exception:
            log.exception("could not record progress of %s/%s", run.job_id, run.task_index)

    def _still_wanted(self, run: TaskRun) -> bool:
        """Renew the lease; a passing database error is not a reason to kill the task (its
        lease runs out if the error lasts, and the task is then run again elsewhere)."""
        assert self._reporter is not None
        try:
            return self._reporter.task_alive(run)
        except Exception:
            log.exception("could not renew the lease of %s/%s", run.job_id, run.task_index)
            return True

    def _tail(self, entry: _Running, parse_progress: ProgressParser) -> None:
        """Read new lines of the command's progress files until the task ends."""
        run = entry.run
        offsets: dict[Path, int] = {}
        carry: dict[Path, bytes] = {}
        last_sent = 0.0
        pending: ProgressReport | None = None
        while True:
            finished = entry.done.wait(TAIL_INTERVAL)
            for pattern in run.command.progress_files:
                for path in sorted(run.workdir.glob(pattern)):
                    if path.is_symlink():  # the task's own files only, never what one points at
                        continue
                    try:
                        with path.open("rb") as handle:
                            handle.seek(offsets.get(path, 0))
                            chunk = handle.read(1024 * 1024)
                    except OSError:
                        continue
                    offsets[path] = offsets.get(path, 0) + len(chunk)
                    lines = (carry.get(path, b"") + chunk).split(b"\n")
                    carry[path] = lines.pop()
                    for line in lines:
                        report = parse_progress(line.decode("utf-8", errors="replace"))
                        pending = report or pending
            if pending is not None and time.monotonic() - last_sent >= PROGRESS_INTERVAL:
                self._report_progress(run, pending)
                pending, last_sent = None, time.monotonic()
            if finished:
                return

    def _pump(
        self, pipe: IO[bytes], out: IO[bytes], entry: _Running, parse_progress: ProgressParser
    ) -> None:
        """Copy stdout to its file, reading progress from it (at most one report a second).

        The file holds at most the output quota: stdout is written by this process, out of
        reach of the task's own file size limit."""
        assert self._reporter is not None
        run = entry.run
        room = run.limits.output_bytes
        with pipe:
            carry = b""
            pending: ProgressReport | None = None
            last_sent = 0.0
            read = getattr(pipe, "read1", pipe.read)
            over = False
            while chunk := read(65536):
                if room is not None:
                    if len(chunk) > room and not over:
                        over = True
                        self._stop_over_quota(entry)
                    chunk = chunk[:room]
                    room -= len(chunk)
                    if not chunk:
                        continue  # read on until the task has gone, so it never blocks
                out.write(chunk)
                out.flush()
                lines = (carry + chunk).split(b"\n")
                carry = lines.pop()
                for line in lines:
                    report = parse_progress(line.decode("utf-8", errors="replace"))
                    if report is not None:
                        pending = report
                if pending is not None and time.monotonic() - last_sent >= PROGRESS_INTERVAL:
                    self._report_progress(run, pending)
                    pending, last_sent = None, time.monotonic()
            if carry:
                pending = parse_progress(carry.decode("utf-8", errors="replace")) or pending
            if pending is not None:
                self._report_progress(run, pending)
