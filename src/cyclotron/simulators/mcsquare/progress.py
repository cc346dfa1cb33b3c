"""Progress in MCsquare's stdout, one line at a time.

MCsquare simulates its primaries in 10 batches and prints a line after each:
`` 10.0 % `` for the first four, then `` 50.0 % (stat uncertainty: 2.32 %) ``; at the end it
prints ``Nbr primaries simulated: 20000`` (with ``(N generated outside the geometry)`` when
some never met the CT). Percentages become ``ProgressReport(percent, 100)``; the final count
becomes ``ProgressReport(N, N)``.
"""

from __future__ import annotations

import re

from cyclotron.domain.ports import ProgressReport
from cyclotron.simulators.mcsquare.outputs import PRIMARIES

PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*(?:\(stat uncertainty:\s*([\d.]+)\s*%\))?\s*$")
TRANSPORT = "transport"


def parse_progress(line: str) -> ProgressReport | None:
    """The progress one line of MCsquare's stdout reports, if any."""
    found = PERCENT.match(line)
    if found:
        percent = min(float(found.group(1)), 100.0)
        stage = TRANSPORT
        if found.group(2) is not None:
            stage = f"{TRANSPORT} (stat uncertainty {found.group(2)} %)"
        return ProgressReport(done=percent, total=100.0, stage=stage)
    counted = PRIMARIES.search(line)
    if counted:
        simulated = float(counted.group(1))
        return ProgressReport(done=simulated, total=simulated, stage="done")
    return None
