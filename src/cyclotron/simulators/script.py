"""The ``script`` plug-in: runs the job's ``run.sh`` with bash in the task's directory."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from cyclotron.domain.ports import ProgressReport, SimulatorPlugin, TaskCommand
from cyclotron.errors import PluginError

RUN_SCRIPT = "run.sh"
# A line ``CYCLOTRON_PROGRESS <done>/<total>`` on stdout reports the task's progress.
PROGRESS_LINE = re.compile(r"^CYCLOTRON_PROGRESS\s+(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*$")
MAX_SCRIPT_BYTES = 20 * 1024 * 1024


def progress_report(line: str) -> ProgressReport | None:
    """The progress a ``CYCLOTRON_PROGRESS <done>/<total>`` line reports, if it is one.

    ``done`` may pass ``total`` when a task counted in primaries ran more than its share
    (an engine's whole batches): the services keep the count, which its results carry."""
    match = PROGRESS_LINE.match(line.strip())
    if match is None:
        return None
    done, total = float(match.group(1)), float(match.group(2))
    if total <= 0:
        return None
    return ProgressReport(done=done, total=total)


def progress_line(done: int, total: int) -> str:
    """The line a task prints to report its progress (read by ``progress_report``)."""
    return f"CYCLOTRON_PROGRESS {done}/{total}"


class ScriptSimulator(SimulatorPlugin):
    """Exit 0 is success; the files the run leaves are the results."""

    name: ClassVar[str] = "script"
    description: ClassVar[str] = "Runs the job's run.sh with bash, once per task"
    merges_results: ClassVar[bool] = False
    runs_user_code: ClassVar[bool] = True

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        patterns = self.options.get("deny_patterns", [])
        self._deny = [re.compile(p) for p in patterns]

    def validate(self, input_dir: Path) -> None:
        script = input_dir / RUN_SCRIPT
        if not script.is_file():
            raise PluginError("run.sh is required")
        size = script.stat().st_size
        if size == 0:
            raise PluginError("run.sh is empty")
        if size > MAX_SCRIPT_BYTES:
            raise PluginError(f"run.sh is larger than {MAX_SCRIPT_BYTES} bytes")
        try:
            text = script.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PluginError(f"run.sh is not valid UTF-8 (byte {exc.start})") from exc
        for pattern in self._deny:
            if pattern.search(text):
                raise PluginError(
                    f"run.sh matches a denied pattern of this service: {pattern.pattern}"
                )

    def result_dir(self, job_dir: Path, ntasks: int) -> Path:
        """One task: the files its run left; several: every task's directory."""
        return job_dir / "tasks" / "0" if ntasks == 1 else job_dir / "tasks"

    def parse_progress(self, line: str) -> ProgressReport | None:
        return progress_report(line)

    def task_command(
        self, workdir: Path, task_index: int, ntasks: int, *, seed: int
    ) -> TaskCommand:
        return TaskCommand(argv=("bash", RUN_SCRIPT))
