"""A bus that tells subscribers of a job when its event log grew (the log is the truth)."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict


class Subscription:
    """One listener: an asyncio event set from any thread when the job's log grows."""

    def __init__(self, job_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.job_id = job_id
        self._loop = loop
        self._changed = asyncio.Event()

    def notify(self) -> None:
        self._loop.call_soon_threadsafe(self._changed.set)

    async def wait(self, timeout: float) -> bool:
        """True when notified within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            return False
        finally:
            self._changed.clear()
        return True


class ProgressBus:
    """Who listens to which job; notified after every commit that appended events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: dict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, job_id: str) -> Subscription:
        subscription = Subscription(job_id, asyncio.get_running_loop())
        with self._lock:
            self._subscriptions[job_id].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            listeners = self._subscriptions.get(subscription.job_id)
            if listeners is not None:
                listeners.discard(subscription)
                if not listeners:
                    del self._subscriptions[subscription.job_id]

    def events_committed(self, job_ids: set[str]) -> None:
        with self._lock:
            targets = [s for job_id in job_ids for s in self._subscriptions.get(job_id, ())]
        for subscription in targets:
            subscription.notify()
