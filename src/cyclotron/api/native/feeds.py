"""One reader of a job's event log per server process, however many clients watch the job.

A ``JobFeed`` reads the job's new events once per notification of the progress bus (or per
poll interval, for events other processes wrote), builds and encodes each message once, and
puts it in every watcher's bounded queue (spec/native.md §11: 256). A watcher whose queue
overflows is dropped by the feed; once it has sent what its queue holds it reads the stored
log itself from its last delivered ``seq``, so it still gets every event, in order.

A watcher joins the feed and takes its snapshot from the feed's view of the job in one step of
the event loop: every event after the snapshot's ``seq`` is then either in its queue or still
to be read by the feed. Nothing here blocks the event loop: reads run in the thread pool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from cyclotron.api.native.messages import (
    TERMINAL_TYPES,
    ProgressView,
    snapshot,
    terminal_message,
)
from cyclotron.domain.states import JOB_TERMINAL
from cyclotron.services.core import Core
from cyclotron.services.jobs.progress import read_events, read_progress

log = logging.getLogger(__name__)

QUEUE_SIZE = 256
Message = dict[str, Any]


@dataclass(frozen=True)
class Delivery:
    """One message with its JSON text, encoded once for all who receive it."""

    seq: int
    message: Message
    text: str

    @classmethod
    def of(cls, message: Message) -> Delivery:
        return cls(message["seq"], message, json.dumps(message, separators=(",", ":")))

    @property
    def terminal(self) -> bool:
        return self.message["type"] in TERMINAL_TYPES


class Watcher:
    """One client's place in a feed: a bounded queue of what it has still to send."""

    def __init__(self) -> None:
        # None: the feed ended without a terminal message (job deleted, feed failed).
        self.queue: asyncio.Queue[Delivery | None] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False

    async def next(self, timeout: float) -> Delivery | None:
        """The next delivery; TimeoutError after ``timeout`` seconds without one."""
        try:
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            return await asyncio.wait_for(self.queue.get(), max(timeout, 0.0))


class JobFeed:
    """Reads one job's log for all its watchers on this process; ends after its terminal event."""

    def __init__(self, core: Core, job_id: str, on_end: Callable[[JobFeed], None]) -> None:
        self.core, self.job_id = core, job_id
        self.watchers: set[Watcher] = set()
        self.ready = asyncio.Event()
        self.view: ProgressView | None = None
        self.final: Delivery | None = None  # a job already ended when the feed began
        self.gone = False
        self.ended = False
        self._on_end = on_end
        self._subscription = core.bus.subscribe(job_id)
        self._task = asyncio.create_task(self._run())

    def stop(self) -> None:
        self.ended = True  # joined no more, though its task may take a moment to finish
        self._task.cancel()

    async def _run(self) -> None:
        try:
            await self._follow()
        except LookupError:
            self.gone = True  # deleted while watched
        except Exception:
            log.exception("the progress feed of job %s failed", self.job_id)
        finally:
            self.ended = True
            self.ready.set()
            for watcher in list(self.watchers):
                self._put(watcher, None)
            self.core.bus.unsubscribe(self._subscription)
            self._on_end(self)

    async def _follow(self) -> None:
        job, events = await run_in_threadpool(
            lambda: read_progress(self.core, self.job_id, 0, log_if_active=False)
        )
        self.view = ProgressView(job)
        if job.state in JOB_TERMINAL:
            final = terminal_message(job, events)
            self.final = Delivery.of(final) if final is not None else None
            return
        self.ready.set()
        poll = self.core.settings.api.progress_poll_interval
        while True:
            await self._subscription.wait(poll)
            after = self.view.job.last_event_seq
            events = await run_in_threadpool(read_events, self.core, self.job_id, after)
            for event in events:
                message = self.view.message(event)
                if message is None:
                    continue
                delivery = Delivery.of(message)
                for watcher in list(self.watchers):
                    self._put(watcher, delivery)
                if delivery.terminal:
                    return

    def _put(self, watcher: Watcher, delivery: Delivery | None) -> None:
        try:
            watcher.queue.put_nowait(delivery)
        except asyncio.QueueFull:
            watcher.overflowed = True  # it reads the log itself once its queue is sent
            self.watchers.discard(watcher)


class FeedHub:
    """The feeds of one event loop, one per watched job."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.loop = asyncio.get_running_loop()
        self._feeds: dict[str, JobFeed] = {}

    def join(self, job_id: str) -> tuple[JobFeed, Watcher]:
        feed = self._feeds.get(job_id)
        if feed is None or feed.ended:
            feed = self._feeds[job_id] = JobFeed(self.core, job_id, self._ended)
        watcher = Watcher()
        feed.watchers.add(watcher)
        return feed, watcher

    def leave(self, feed: JobFeed, watcher: Watcher) -> None:
        feed.watchers.discard(watcher)
        if not feed.watchers and not feed.ended:
            feed.stop()

    def _ended(self, feed: JobFeed) -> None:
        if self._feeds.get(feed.job_id) is feed:
            del self._feeds[feed.job_id]


# The stored log's messages after a seq (None: a snapshot first), as Delivery or None (ping).
Replay = Callable[[int | None], AsyncGenerator[Delivery | None, None]]


async def watch(
    hub: FeedHub, job_id: str, ping_every: float, replay: Replay
) -> AsyncGenerator[Delivery | None, None]:
    """A snapshot, then every later message in ``seq`` order up to the terminal one; None means
    ping. A terminal job gives only its terminal message. ``replay(after)`` takes over from
    the stored log when the feed cannot (this watcher overflowed, the feed failed).
    LookupError when the job is deleted."""
    feed, watcher = hub.join(job_id)
    sent: int | None = None  # None: the feed failed before its first read, nothing was sent
    try:
        await feed.ready.wait()
        if feed.gone:
            raise LookupError(job_id)
        if feed.final is not None:
            yield feed.final
            return
        if feed.view is not None:
            first = Delivery.of(snapshot(feed.view.job))
            yield first
            last, quiet_since = first.seq, time.monotonic()
            while not (watcher.overflowed and watcher.queue.empty()):
                try:
                    delivery = await watcher.next(ping_every - (time.monotonic() - quiet_since))
                except TimeoutError:
                    quiet_since = time.monotonic()
                    yield None
                    continue
                if delivery is None:  # the feed ended before the job did
                    if feed.gone:
                        raise LookupError(job_id)
                    break
                if delivery.seq > last:
                    last, quiet_since = delivery.seq, time.monotonic()
                    yield delivery
                    if delivery.terminal:
                        return
            sent = last
    finally:
        hub.leave(feed, watcher)
    async with aclosing(replay(sent)) as items:
        async for item in items:
            yield item


def hub_of(state: Any, core: Core) -> FeedHub:
    """The feed hub kept on the application's state for the running event loop."""
    hub: FeedHub | None = getattr(state, "progress_feeds", None)
    if hub is None or hub.loop is not asyncio.get_running_loop():
        hub = state.progress_feeds = FeedHub(core)
    return hub
