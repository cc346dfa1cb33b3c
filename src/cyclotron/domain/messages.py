"""What a user may read of a failure: the engine's words, never the server's paths.

A task's error, a job's error and the reasons in its event log are shown by every face (the
YAPTIDE UI and the AlphaFold 3 app print them on each job card). The server's data folder,
its configuration and the commands it runs are its own business: every absolute path in such
a text is cut to its last part (``/srv/cyclotron/jobs/4/tasks/0/input.json`` reads
``input.json``), while relative paths, URLs and units (``MeV/cm``) are left as they are. The
server's log keeps the full text.
"""

from __future__ import annotations

import re

# An absolute path: a "/" that does not continue a word, a URL or a relative path, followed by
# one or more name parts. What ends a path: white space, quotes, brackets and separators.
_PART = r"[^\s/'\"`:,;()\[\]{}<>=|]+"
_ABSOLUTE_PATH = re.compile(rf"(?<![\w.~/:-])(?:/{_PART})+/?")


def without_paths(text: str) -> str:
    """``text`` with each absolute path cut to its last part."""
    return _ABSOLUTE_PATH.sub(_last_part, text)


def _last_part(match: re.Match[str]) -> str:
    parts = [p for p in match[0].split("/") if p]
    return parts[-1] if parts else "/"
