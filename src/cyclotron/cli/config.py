"""The settings a command runs with: loaded from its ``--config``, or a readable error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from cyclotron.errors import ConfigError
from cyclotron.settings import Settings, load_settings

err = Console(stderr=True)


def settings_or_exit(config: Path | None, overrides: dict[str, Any] | None = None) -> Settings:
    """The settings of ``config`` with ``overrides``; on a configuration error, exit code 2."""
    try:
        return load_settings(config, overrides)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
