"""The server's side of the ``celery`` executor: each claimed task becomes one broker message.

The message names the attempt and carries its token; the worker that takes it claims the
attempt over HTTP and reports through the worker routes. The executor keeps no state of its
own: the tasks it has out are the running tasks of its services in the database, and a task
waits in the broker under a lease of ``queue_timeout`` until a worker claims it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import ClassVar

from cyclotron.domain.ports import (
    Executor,
    ProgressParser,
    TaskOutcome,
    TaskReporter,
    TaskRun,
)
from cyclotron.executors.celery.app import TASK_NAME, celery_app
from cyclotron.settings import Settings
from cyclotron.signing import SigningKeys, TaskTokens

log = logging.getLogger(__name__)

BROKER_BACKOFF = 5.0  # seconds without sending after the broker refused a message


def api_url_of(settings: Settings) -> str:
    """Where workers reach this server: the configured URL, else its own host and port."""
    configured = settings.executors.celery.api_url
    return configured.rstrip("/") if configured else settings.server.own_url()


class CeleryExecutor(Executor):
    name: ClassVar[str] = "celery"
    counts_in_database: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        self._settings = settings.executors.celery
        self._api_url = api_url_of(settings)
        self._app = celery_app(self._settings)
        self._tokens = TaskTokens(SigningKeys.of_server(settings))
        self._reporter: TaskReporter | None = None
        self._lock = threading.Lock()
        self._refused_until = 0.0

    def start(self, reporter: TaskReporter) -> None:
        self._reporter = reporter

    def claim_lease_seconds(self, default: float) -> float:
        return max(default, self._settings.queue_timeout)

    def free_slots(self) -> int:
        with self._lock:
            if time.monotonic() < self._refused_until:
                return 0
        return self._settings.max_queued

    def submit(self, run: TaskRun, parse_progress: ProgressParser) -> None:
        token = self._tokens.issue(run.job_id, run.task_index, run.attempt)
        message = {
            "api_url": self._api_url,
            "job_id": run.job_id,
            "task_index": run.task_index,
            "attempt": run.attempt,
            "token": token,
        }
        shown = {k: v for k, v in message.items() if k != "token"}
        try:
            self._app.send_task(
                TASK_NAME,
                kwargs=message,
                queue=self._settings.queue,
                kwargsrepr=repr(shown),  # the token never reaches a worker's log
            )
        except Exception as exc:
            # The broker is down: the task goes back to the queue, and nothing is sent for a
            # while; the job is not failed for an outage.
            log.warning("the broker refused task %s/%s: %s", run.job_id, run.task_index, exc)
            with self._lock:
                self._refused_until = time.monotonic() + BROKER_BACKOFF
            assert self._reporter is not None
            self._reporter.task_finished(run, TaskOutcome(exit_code=None, interrupted=True))

    def cancel(self, job_id: str) -> None:
        """Nothing to do here: each worker learns it at its next heartbeat and stops."""

    def running(self) -> int:
        return 0  # they run elsewhere; the database counts them

    def wait_stopped(self, job_id: str, timeout: float) -> bool:
        return True  # a worker's late reports on a cancelled task are ignored

    def stop(self) -> None:
        """Tasks on workers go on; they report to whichever server process is up."""
        self._app.close()
