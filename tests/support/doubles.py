"""What the engines' test doubles read, bound read-only into their tasks' sandboxes.

A site names its engine's install and data in ``read_only_paths``; the doubles replay real
outputs kept in the shared fixtures, so their services name that folder (and this one).
"""

from __future__ import annotations

from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
SHARED_FIXTURES = SUPPORT.parents[1].parent / "shared" / "fixtures"
DOUBLE_READS = [str(SUPPORT), str(SHARED_FIXTURES)]
