"""What happens to a job as its tasks start, report, end; and the merge that ends the job."""

from __future__ import annotations

import logging
import signal
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from cyclotron.domain.ports import ProgressReport, TaskLimits, TaskOutcome, TaskRun
from cyclotron.domain.records import ErrorKind
from cyclotron.domain.states import TASK_TERMINAL, JobStage, JobState, TaskState
from cyclotron.errors import PluginError
from cyclotron.services.core import Core
from cyclotron.services.running.merges import merge_job
from cyclotron.storage import jobs as repo
from cyclotron.storage.events import append_event
from cyclotron.storage.tables import TaskRow, utcnow
from cyclotron.storage.transitions import (
    LEASE_RELEASED,
    Held,
    change_job_state,
    change_task_state,
    end_job,
)

log = logging.getLogger(__name__)

# The engine's last lines of standard error a failed task's message carries.
STDERR_LINES_IN_MESSAGE = 5


def failure_message(run: TaskRun, outcome: TaskOutcome) -> tuple[str, str]:
    """The reason a user reads for a failed attempt, and its kind.

    It names the service's engine, not the command line, which holds the server's paths and
    configuration (the server's log has it); ``change_task_state`` cuts any path left."""
    if outcome.error:
        return outcome.error, ErrorKind.EXECUTOR
    if outcome.timed_out:
        return f"time limit of {run.time_limit:g} s exceeded", ErrorKind.TIME_LIMIT
    if outcome.limit_hit is not None:
        return limit_message(run.limits, outcome.limit_hit), ErrorKind.LIMIT
    log.info(
        "job %s task %d: %s ended with %s",
        run.job_id,
        run.task_index,
        " ".join(run.command.argv),
        outcome.exit_code,
    )
    program = run.service
    code = outcome.exit_code
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        head = f"{program} was killed by {name}"
    else:
        head = f"{program} exited with status {code}"
    lines = [line for line in outcome.stderr_tail.splitlines() if line.strip()]
    tail = "\n".join(lines[-STDERR_LINES_IN_MESSAGE:])
    return (f"{head}: {tail}" if tail else head), ErrorKind.EXIT


def limit_message(limits: TaskLimits, limit: str) -> str:
    """The reason a task stopped by a sandbox limit shows."""
    if limit == "output" and limits.output_bytes is not None:
        return (
            f"output quota of {limits.output_bytes} bytes exceeded: "
            "the task was stopped and its output cut to the quota"
        )
    if limit == "cpu" and limits.cpu_seconds is not None:
        return f"CPU time limit of {limits.cpu_seconds:g} s exceeded"
    return f"the task's {limit} limit was exceeded"


def settle_job(core: Core, session: Session, job_id: str) -> bool:
    """Once no task is active: queue the merge (some task completed) or fail the job.

    Returns True when the job was queued for a merge the caller must run. A plug-in that
    merges nothing has its job pass through the merge states to COMPLETED right here.
    """
    tasks = repo.job_tasks(session, job_id)
    if any(TaskState(t.state) not in TASK_TERMINAL for t in tasks):
        return False
    if any(t.state == TaskState.COMPLETED.value for t in tasks):
        queued = change_job_state(
            session, job_id, JobState.MERGING_QUEUED, stage=JobStage.MERGING_QUEUED
        )
        job = repo.find_job(session, job_id)
        if not queued or job is None or core.catalog.get(job.service).plugin.merges_results:
            return queued
        change_job_state(session, job_id, JobState.MERGING_RUNNING, stage=JobStage.MERGING)
        end_job(session, job_id, JobState.COMPLETED)
        return False
    failed = [t for t in tasks if t.state == TaskState.FAILED.value]
    if failed:
        first = failed[0]
        end_job(
            session,
            job_id,
            JobState.FAILED,
            error=first.error if len(tasks) == 1 else f"task {first.index}: {first.error}",
            error_kind=first.error_kind,
        )
    return False


class TaskLifecycle:
    """The services' side of the executor port: every report is one short transaction."""

    def __init__(self, core: Core, owner: str | None = None) -> None:
        self.core = core
        # Who holds the leases of the attempts reported here: this server process, or a
        # remote worker reporting over HTTP.
        self.owner = owner or core.lease_owner

    def _held(self, run: TaskRun) -> tuple[ColumnElement[bool], ...]:
        """The conditions under which this attempt still owns its task."""
        return (
            TaskRow.attempt == run.attempt,
            TaskRow.lease_owner == self.owner,
        )

    def _lease_until(self) -> datetime:
        return utcnow() + timedelta(seconds=self.core.settings.dispatch.lease_seconds)

    def _observe(self, run: TaskRun, outcome: TaskOutcome) -> None:
        if outcome.seconds is None:
            return
        label = "completed" if outcome.succeeded else "failed"
        if outcome.cancelled or outcome.interrupted:
            label = "stopped"
        self.core.metrics.task_seconds.labels(run.service, label).observe(outcome.seconds)

    def _renew(self, run: TaskRun, **values: object) -> bool:
        """Extend this attempt's lease (setting ``values``); False once it holds it no more."""
        with self.core.db.transaction() as session:
            return repo.update_running_task(
                session,
                run.job_id,
                run.task_index,
                self._held(run),
                lease_expires_at=self._lease_until(),
                **values,
            )

    def task_started(self, run: TaskRun, pgid: int) -> bool:
        return self._renew(run, pgid=pgid)

    def task_alive(self, run: TaskRun) -> bool:
        return self._renew(run)

    def task_progress(self, run: TaskRun, report: ProgressReport) -> None:
        with self.core.db.transaction() as session:
            task = repo.find_task(session, run.job_id, run.task_index)
            if task is None or task.state != TaskState.RUNNING.value or task.attempt != run.attempt:
                return
            total = report.total
            if total <= 0 and task.requested_primaries:
                total = float(task.requested_primaries)  # counted in primaries, total unsaid
            # A task counted in its primaries keeps a count past its share (whole batches).
            counted = total > 0 and total == task.requested_primaries
            done = min(report.done, total) if total > 0 and not counted else report.done
            task.progress_done, task.progress_total = done, total
            task.lease_expires_at = self._lease_until()
            task.last_update_at = utcnow()
            if report.eta_seconds is not None:
                task.estimated_seconds = max(int(report.eta_seconds), 0)
            data: dict[str, object] = {"done": done, "total": total}
            if report.stage:
                data["stage"] = task.stage = report.stage[:32]
            data.update(report.counters)
            append_event(session, run.job_id, "progress", data, task_index=run.task_index)

    def _collect(self, run: TaskRun) -> str | None:
        """Let the plug-in read what a successful run left; why it could not, if it could not."""
        try:
            self.core.catalog.get(run.service).plugin.collect_task(run.workdir)
        except PluginError as exc:
            return exc.message
        except Exception as exc:
            log.exception("collecting task %s/%s failed", run.job_id, run.task_index)
            return f"its outputs could not be read: {exc}"
        return None

    def _fold(self, run: TaskRun) -> None:
        """Fold the task's outputs into the job's running results before it is recorded
        completed, so that the merge after the last task only finishes them. A fold that
        fails costs nothing but time: the merge then reads every task's outputs."""
        try:
            plugin = self.core.catalog.get(run.service).plugin
            if not plugin.merges_results:
                return
            with self.core.db.transaction(write=False) as session:
                unfinished = [
                    t.index
                    for t in repo.job_tasks(session, run.job_id)
                    if TaskState(t.state) not in TASK_TERMINAL and t.index != run.task_index
                ]
            plugin.fold_task(self.core.files.job_dir(run.job_id), run.task_index, unfinished)
        except Exception:
            log.exception(
                "folding task %s/%s into its job's results failed", run.job_id, run.task_index
            )

    def task_finished(self, run: TaskRun, outcome: TaskOutcome) -> None:
        merge = False
        output_error = self._collect(run) if outcome.succeeded else None
        if outcome.succeeded and output_error is None and not outcome.interrupted:
            self._fold(run)
        now = utcnow()
        self._observe(run, outcome)
        with self.core.db.transaction() as session:
            held = Held(run.attempt, self.owner)
            if outcome.interrupted:
                change_task_state(
                    session,
                    run.job_id,
                    run.task_index,
                    TaskState.PENDING,
                    held=held,
                    reason="the executor shut down; the task will run again",
                    attempt=run.attempt - 1,
                    estimated_seconds=None,
                    **LEASE_RELEASED,
                )
            elif outcome.succeeded and output_error is None:
                won = change_task_state(
                    session,
                    run.job_id,
                    run.task_index,
                    TaskState.COMPLETED,
                    held=held,
                    exit_code=0,
                    ended_at=now,
                    estimated_seconds=None,
                    **LEASE_RELEASED,
                )
                merge = won and settle_job(self.core, session, run.job_id)
            elif not outcome.cancelled:
                message, kind = (
                    (output_error, ErrorKind.OUTPUT)
                    if output_error is not None
                    else failure_message(run, outcome)
                )
                won = change_task_state(
                    session,
                    run.job_id,
                    run.task_index,
                    TaskState.FAILED,
                    held=held,
                    reason=message,
                    exit_code=outcome.exit_code,
                    error=message,
                    error_kind=kind,
                    ended_at=now,
                    estimated_seconds=None,
                    **LEASE_RELEASED,
                )
                merge = won and settle_job(self.core, session, run.job_id)
        if merge:
            merge_job(self.core, run.job_id)
        self.core.wake()
