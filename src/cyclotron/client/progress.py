"""Following a job's progress over server-sent events (spec/native.md §11), without I/O.

``Waiting`` holds what one ``wait`` knows between connections: the last event id (sent as
``Last-Event-ID`` when it reconnects, so no event is missed or repeated), its deadline and
the backoff of the connections that failed since the last event. The clients feed it the
stream's lines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx

from cyclotron.client.calls import Backoff, job_path
from cyclotron.client.errors import ConnectionFailed, WaitTimeout
from cyclotron.client.models import ProgressEvent

ProgressCallback = Callable[[ProgressEvent], object]
# The server sends ``: ping`` every 15 s; a stream silent for this long is dead.
SILENCE = 60.0


class EventStream:
    """Lines of a ``text/event-stream`` in, progress events out (``id``, ``event``,
    ``data`` fields; a blank line ends an event; comments such as ``: ping`` are skipped)."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self.last_id: int | None = None

    def feed(self, line: str) -> ProgressEvent | None:
        """The event a line completes, if it is the blank line that ends one."""
        if not line:
            if not self._data:
                return None
            text, self._data = "\n".join(self._data), []
            event = ProgressEvent.from_json(json.loads(text))
            if event.seq is not None:
                self.last_id = event.seq
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "id" and value.isdigit():
            self.last_id = int(value)
        return None


class Waiting:
    """One ``wait`` for a job's end: its stream's place, deadline and failed connections."""

    def __init__(
        self,
        job: str,
        on_progress: ProgressCallback | None,
        timeout: float | None,
        retry_for: float,
    ) -> None:
        self.path = job_path(job, "events")
        self.on_progress = on_progress
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.retry_for = retry_for
        self.backoff = Backoff(retry_for)
        self.stream = EventStream()

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self.stream.last_id is not None:
            headers["Last-Event-ID"] = str(self.stream.last_id)
        return headers

    def timeout(self) -> httpx.Timeout:
        """Reads wait no longer than the stream may stay silent, nor past the deadline."""
        read = SILENCE if self.deadline is None else min(SILENCE, self.remaining() + 0.1)
        return httpx.Timeout(30.0, read=max(read, 0.1))

    def remaining(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def check_deadline(self) -> None:
        if self.remaining() <= 0:
            raise WaitTimeout(f"the job did not end within the time given ({self.path})")

    def line(self, line: str) -> bool:
        """Feed one line; True once the job's terminal event has come."""
        event = self.stream.feed(line)
        if event is None:
            return False
        self.backoff = Backoff(self.retry_for)  # the stream works: a new failure starts afresh
        if event.type == "ping":
            return False
        if self.on_progress is not None:
            self.on_progress(event)
        return event.terminal

    def connection_failed(self, error: Exception | None = None) -> float:
        """Seconds to wait before connecting again after a connection failed (``error``)
        or ended before the job did; ConnectionFailed once the time for retries is over."""
        self.check_deadline()
        delay = self.backoff.next_delay()
        if delay is None:
            raise ConnectionFailed(f"lost the progress stream of {self.path}: {error}") from error
        return min(delay, max(self.remaining(), 0.0))
