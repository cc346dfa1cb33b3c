"""Calls of executors' remote sides to the server, retried as spec/yaptide.md §4.1 says:
network errors, 5xx and 429 again after 1 s, doubling to at most 60 s, for a bounded time;
never another 4xx. The CLI sends its submissions the same way, under an idempotency key."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

log = logging.getLogger(__name__)

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0
RETRIED = frozenset({429, 500, 502, 503, 504})


class Refused(Exception):
    """The server answered with a 4xx that retrying cannot change."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"{status_code} {detail}")
        self.status_code = status_code
        self.detail = detail


def detail_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail", body.get("message", "")))[:500]
    return str(body)[:200]


def send_with_backoff(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    retry_for: float,
    sleep: Callable[[float], None] = time.sleep,
    retried: frozenset[int] = RETRIED,
    **kwargs: Any,
) -> httpx.Response:
    """The response of the first attempt that is not retried; ConnectionError once retrying
    would pass ``retry_for`` seconds; Refused for an error status not ``retried`` (by default
    a 4xx other than 429)."""
    deadline = time.monotonic() + retry_for
    delay = FIRST_BACKOFF
    path = httpx.URL(url).path
    while True:
        try:
            response = http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code < 400:
                return response
            if response.status_code not in retried:
                raise Refused(response.status_code, detail_of(response))
            problem = f"{response.status_code} {detail_of(response)}"
        if time.monotonic() + delay > deadline:
            raise ConnectionError(f"{method} {path}: {problem}")
        log.warning("%s %s failed (%s); again in %.0f s", method, path, problem, delay)
        sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF)
