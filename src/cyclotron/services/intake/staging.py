"""A submission's input on disk before its job exists: ``<staging>/input``, removed on failure.

The input is written (or converted) into a private staging area, checked there, and moved
into the job's directory in the transaction that stores the job; nothing half-written is left
behind when any step refuses.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cyclotron.domain.filenames import check_file_name
from cyclotron.domain.ports import SimulatorPlugin
from cyclotron.errors import CyclotronError, InputError, PluginError, Problem
from cyclotron.services.core import Core
from cyclotron.services.intake.request import EditorInput, FilesInput, JobInput, StagedInput

log = logging.getLogger(__name__)

MAX_FILES = 1000


@dataclass(frozen=True)
class Staged:
    """An input staged on disk: its files are in ``input_dir``."""

    staging: Path

    @property
    def input_dir(self) -> Path:
        return self.staging / "input"

    def discard(self) -> None:
        try:
            self.staging.rmdir()  # empty once its input moved into the job's directory
        except OSError:
            shutil.rmtree(self.staging, ignore_errors=True)


def file_name_problems(names: list[str], where: tuple[str | int, ...]) -> list[Problem]:
    """Every file name refused (a path, '..', NUL, a control character), and a count over
    ``MAX_FILES``."""
    if len(names) > MAX_FILES:
        return [Problem(where, f"at most {MAX_FILES} input files are accepted")]
    problems = []
    for name in names:
        try:
            check_file_name(name)
            if any(ord(c) < 32 for c in name):
                raise InputError(f"File name must not contain control characters: {name!r}")
        except InputError as exc:
            problems.append(Problem((*where, name), exc.message))
    return problems


def write_staged(core: Core, files: Mapping[str, bytes]) -> Staged:
    """A new staging area holding ``files`` in ``input/``; nothing is left if writing fails."""
    staged = Staged(core.files.new_staging_area())
    try:
        staged.input_dir.mkdir()
        for name, data in files.items():
            (staged.input_dir / name).write_bytes(data)
    except BaseException:
        staged.discard()
        raise
    return staged


def converted_project(
    plugin: SimulatorPlugin, service: str, given: EditorInput
) -> dict[str, bytes]:
    """The engine's input files for an editor project (InputError at ``input.project``)."""
    try:
        converted = plugin.editor_files(given.project_with_primaries())
    except PluginError as exc:
        raise InputError(exc.message, ("input", "project")) from None
    except Exception as exc:
        log.exception("converting an editor project for %s failed", service)
        raise CyclotronError(f"Input conversion failed: {exc}") from exc
    return {name: text.encode("utf-8") for name, text in converted.items()}


def stage(core: Core, service: str, given: JobInput) -> Staged:
    """The input of a files, editor or already staged request, in a staging area."""
    if isinstance(given, StagedInput):
        return Staged(given.staging)
    if isinstance(given, EditorInput):
        plugin = core.catalog.get(service).plugin
        return write_staged(core, converted_project(plugin, service, given))
    assert isinstance(given, FilesInput)
    return write_staged(core, given.files)
