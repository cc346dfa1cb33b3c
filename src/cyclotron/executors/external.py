"""The ``external`` executor: tasks run outside Cyclotron and report through the worker routes.

Cyclotron never starts these tasks itself. Whatever runs them (a site's own pipeline, a
cluster scheduler driven by the operator) reports through ``POST /tasks``, ``/tasks/bulk``,
``/jobs``, ``/results`` and ``/logfiles`` with the job's update key, and the job's state
follows those reports.
"""

from __future__ import annotations

from typing import ClassVar

from cyclotron.domain.ports import Executor, ProgressParser, TaskReporter, TaskRun
from cyclotron.settings import Settings


class ExternalExecutor(Executor):
    name: ClassVar[str] = "external"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def start(self, reporter: TaskReporter) -> None:
        """Nothing to start: the workers are not Cyclotron's."""

    def free_slots(self) -> int:
        return 0  # the dispatcher never hands these tasks to anyone

    def submit(self, run: TaskRun, parse_progress: ProgressParser) -> None:
        raise RuntimeError("the external executor runs no tasks itself")

    def cancel(self, job_id: str) -> None:
        """The job is CANCELED in the database; its workers' later reports are ignored."""

    def running(self) -> int:
        return 0

    def wait_stopped(self, job_id: str, timeout: float) -> bool:
        return True

    def stop(self) -> None:
        """Nothing runs here."""
