"""The script plug-in: run.sh checks and its progress lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from cyclotron.domain.ports import ProgressReport
from cyclotron.errors import PluginError
from cyclotron.simulators.script import ScriptSimulator


@pytest.mark.parametrize(
    ("line", "report"),
    [
        ("CYCLOTRON_PROGRESS 3/10", ProgressReport(3, 10)),
        ("  CYCLOTRON_PROGRESS 2.5 / 5  ", ProgressReport(2.5, 5)),
        # past its total: a task counted in primaries ran more than its share (issue 19)
        ("CYCLOTRON_PROGRESS 12/10", ProgressReport(12, 10)),
        ("CYCLOTRON_PROGRESS 1/0", None),
        ("progress 3/10", None),
        ("CYCLOTRON_PROGRESS 3/10 extra", None),
    ],
)
def test_progress_lines(line: str, report: ProgressReport | None) -> None:
    assert ScriptSimulator({}).parse_progress(line) == report


def test_validation_reasons(tmp_path: Path) -> None:
    plugin = ScriptSimulator({"deny_patterns": [r"\bsudo\b"]})
    with pytest.raises(PluginError, match="run.sh is required"):
        plugin.validate(tmp_path)
    script = tmp_path / "run.sh"
    for content, reason in ((b"", "empty"), (b"\xff", "UTF-8"), (b"sudo rm -rf /\n", "denied")):
        script.write_bytes(content)
        with pytest.raises(PluginError, match=reason):
            plugin.validate(tmp_path)
    script.write_bytes(b"echo fine\n")
    plugin.validate(tmp_path)
