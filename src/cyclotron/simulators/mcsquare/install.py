"""Where the MCsquare engine lives: the opentps-core wheel's ``MCsquare`` folder.

The wheel ships static executables, ``Materials/`` (stopping powers and nuclear data),
``Scanners/`` and ``BDL/``. Only the generic ``MCsquare_linux`` runs on every x86-64 CPU
(the vector-tuned builds refuse AMD processors). pip does not keep the run bit, so it is set
at first use. Nothing from opentps is imported: its Python dependencies are not installed.
MCsquare is © Université catholique de Louvain, Apache-2.0.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import stat
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DISTRIBUTION = "opentps-core"
INSTALL_HINT = "pip install --no-deps opentps-core==2.0.0"
ENGINE_PARTS = ("opentps", "core", "processing", "doseCalculation", "protons", "MCsquare")
BINARY_NAME = "MCsquare_linux"
MATERIALS_ENV = "MCsquare_Materials_Dir"
VERSION_MARK = b"Version: "
ATTRIBUTION = "MCsquare (Université catholique de Louvain, Apache-2.0), from opentps-core"


class EngineMissing(RuntimeError):
    """The engine cannot be found or started here; the message names the fix."""


@dataclass(frozen=True)
class McsquareInstall:
    """The engine's files in the installed wheel."""

    root: Path
    binary: Path
    materials: Path
    opentps_version: str

    @property
    def env(self) -> dict[str, str]:
        """The environment variables the binary needs besides the caller's own."""
        return {MATERIALS_ENV: str(self.materials)}


def engine_root() -> Path | None:
    """The wheel's MCsquare folder, found without importing opentps' modules."""
    try:
        spec = importlib.util.find_spec("opentps")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        root = Path(base).joinpath(*ENGINE_PARTS[1:])
        if root.is_dir():
            return root
    return None


def opentps_version() -> str | None:
    """The installed opentps-core version, or None when it is not installed."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None


def unavailable_reason() -> str | None:
    """Why MCsquare cannot run here, naming the fix; None when it can."""
    version = opentps_version()
    root = engine_root()
    if version is None or root is None:
        return f"opentps-core is not installed: {INSTALL_HINT}"
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return f"MCsquare ships no executable for {platform.system()} {platform.machine()}"
    if not (root / BINARY_NAME).is_file():
        return f"opentps-core {version} has no {BINARY_NAME}: reinstall it ({INSTALL_HINT})"
    if not (root / "Materials" / "list.dat").is_file():
        return f"opentps-core {version} lacks MCsquare's Materials folder: {INSTALL_HINT}"
    return None


def ensure_executable(binary: Path) -> None:
    """Give the binary its run bit; safe when several processes do it at once."""
    mode = binary.stat().st_mode
    wanted = mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    if mode & stat.S_IXUSR and os.access(binary, os.X_OK):
        return
    try:
        # chmod sets an absolute mode, so concurrent callers all write the same value.
        binary.chmod(wanted)
    except PermissionError as exc:
        if not os.access(binary, os.X_OK):
            raise EngineMissing(
                f"{binary} is not executable and cannot be made so: run chmod +x on it"
            ) from exc


@cache
def locate() -> McsquareInstall:
    """The installed engine, its binary made executable; raises EngineMissing with the fix."""
    reason = unavailable_reason()
    if reason is not None:
        raise EngineMissing(reason)
    root = engine_root()
    version = opentps_version()
    assert root is not None and version is not None  # checked by unavailable_reason
    binary = root / BINARY_NAME
    ensure_executable(binary)
    return McsquareInstall(root, binary, root / "Materials", version)


@cache
def engine_version() -> str | None:
    """MCsquare's own release as its binary states it (``Version: Release_1.1``), if found."""
    root = engine_root()
    if root is None or not (root / BINARY_NAME).is_file():
        return None
    # The banner is only printed after a configuration is read: read the string instead.
    data = (root / BINARY_NAME).read_bytes()
    at = data.find(VERSION_MARK)
    if at < 0:
        return None
    end = data.find(b"\0", at)
    lines = data[at + len(VERSION_MARK) : end].decode("ascii", "replace").splitlines()
    # "Release_1.1" then, in newer builds, "Git description: Release_1.1-64-gdadd827-dirty"
    described = [line.split(":", 1)[1] for line in lines if line.startswith("Git description:")]
    text = (described or lines or [""])[0].strip()
    return text or None


def version() -> str | None:
    """The engine's version for the service listing: MCsquare's release and the wheel's."""
    wheel = opentps_version()
    if wheel is None:
        return None
    release = engine_version()
    return f"MCsquare {release} (opentps-core {wheel})" if release else f"opentps-core {wheel}"
