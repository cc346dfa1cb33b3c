"""Finding a job's processes on this machine, whether its tasks run bare or in a sandbox.

A task cannot name its host pids from inside a sandbox (its PID namespace numbers its own), so a
test gives its ``run.sh`` an environment variable with a value of its own and looks for it in
every process's environment (readable to the user the tests and their tasks run as, or root).
"""

from __future__ import annotations

import os
import uuid


def new_marker() -> str:
    return f"CYCLOTRON_TEST_MARK={uuid.uuid4().hex}"


def marked(marker: str) -> list[int]:
    """Live processes (not zombies) whose environment holds ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as handle:
                state = handle.read().rpartition(b")")[2].split()[0]
        except (OSError, IndexError):
            continue
        if marker.encode() in environ and state != b"Z":
            found.append(int(entry))
    return found
