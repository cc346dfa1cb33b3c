"""Whether the database answers, within a time limit."""

from __future__ import annotations

import concurrent.futures

from cyclotron.services.core import Core

_pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="health")


def database_reachable(core: Core, timeout: float = 2.0) -> bool:
    future = _pool.submit(core.db.ping)
    try:
        future.result(timeout=timeout)
    except Exception:
        return False
    return True
