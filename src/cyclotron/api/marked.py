"""What a face made of a job's many tasks, kept while a mark of those tasks stays the same.

A job of 1,000 tasks costs most of its answer in reading and encoding them. The faces read
a cheap mark with the job (``storage/listing.py::task_mark`` and the job's own fields), and
keep the last answers' parts per job under the mark they were made for: the same mark, the
same parts; another mark, made again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from threading import Lock
from typing import Generic, TypeVar

from fastapi import FastAPI

KEPT_JOBS = 32  # a 1,000-task job's parts are about 0.3 MB
T = TypeVar("T")


class MarkedMemo(Generic[T]):
    """The parts made for the jobs last asked for, each under the mark it was made for."""

    def __init__(self, size: int = KEPT_JOBS) -> None:
        self._size = size
        self._entries: OrderedDict[str, tuple[Hashable, T]] = OrderedDict()
        self._lock = Lock()

    def get(self, job_id: str, mark: Hashable) -> T | None:
        with self._lock:
            entry = self._entries.get(job_id)
            if entry is None or entry[0] != mark:
                return None
            self._entries.move_to_end(job_id)
            return entry[1]

    def latest(self, job_id: str) -> T | None:
        """The parts last made for the job, under whatever mark: a maker may reuse what of
        them still holds."""
        with self._lock:
            entry = self._entries.get(job_id)
            return None if entry is None else entry[1]

    def put(self, job_id: str, mark: Hashable, parts: T) -> None:
        with self._lock:
            self._entries[job_id] = (mark, parts)
            self._entries.move_to_end(job_id)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


def app_memo(app: FastAPI, name: str, made: Callable[[], MarkedMemo[T]]) -> MarkedMemo[T]:
    """The app's memo called ``name`` (one per app and use: what a face keeps depends on
    that app's configuration), ``made`` at the first call."""
    memo: MarkedMemo[T] | None = getattr(app.state, name, None)
    if memo is None:
        memo = made()
        setattr(app.state, name, memo)
    return memo
