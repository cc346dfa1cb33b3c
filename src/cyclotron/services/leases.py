"""Who holds a lease (a task's, a merge's) or a staging area: ``host:pid:start-time`` of the
server process that took it."""

from __future__ import annotations

import os
import socket


def _process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), which survives pid reuse."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("ascii", errors="replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces; fields after it are split from its ')'.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def this_host() -> str:
    return socket.gethostname()


def lease_owner_of(pid: int) -> str:
    """The lease owner a process of this host names itself: ``host:pid:start-time``."""
    return f"{this_host()}:{pid}:{_process_start_time(pid) or '0'}"


def lease_owner_of_this_process() -> str:
    return lease_owner_of(os.getpid())


def local_owner_is_dead(owner: str) -> bool:
    """True when ``owner`` names a process of this host that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != this_host() or not pid_text.isdigit():
        return False
    return _process_start_time(int(pid_text)) != started
