"""Opening a job's results in the desktop file manager of the machine the server runs on."""

from __future__ import annotations

import shutil
import subprocess
import sys

from cyclotron.domain.records import Caller
from cyclotron.errors import NotFound
from cyclotron.services.core import Core
from cyclotron.services.jobs.queries import JobRef, get_job


def opener() -> str | None:
    """The program that opens a directory here: ``open`` on macOS, ``xdg-open`` on Linux."""
    if sys.platform == "darwin":
        return shutil.which("open")
    if sys.platform.startswith("linux"):
        return shutil.which("xdg-open")
    return None


def open_results_directory(core: Core, caller: Caller, ref: JobRef, program: str) -> None:
    """Start ``program`` on the job's ``results/`` (NotFound when the job or directory is gone)."""
    job = get_job(core, caller, ref, with_tasks=False)
    directory = core.files.results_dir(job.id)
    if job.cleaned_at is not None or not directory.is_dir():
        raise NotFound(f"Job {job.id} has no results directory")
    subprocess.Popen(
        [program, str(directory)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
