"""The shared AlphaFold 3 fixture folder; tests that use it skip when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

AF3_FIXTURES = Path("/work/shared/fixtures/alphafold3")


@pytest.fixture
def af3_fixtures() -> Path:
    """The real-data folder (README.md there), or a skip with the reason."""
    if not AF3_FIXTURES.is_dir():
        pytest.skip(f"AlphaFold 3 fixtures not found at {AF3_FIXTURES}")
    return AF3_FIXTURES
