"""The shared AlphaFold 3 fixture folder; tests that use it skip when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.alphafold import require_af3_fixtures


@pytest.fixture
def af3_fixtures() -> Path:
    """The real-data folder (README.md there), or a skip with the reason."""
    return require_af3_fixtures()
