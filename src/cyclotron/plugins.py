"""Finding simulators and executors through their entry-point groups.

A name with a colon, ``package.module:Class``, is imported directly: for a plug-in that is
not installed as a distribution (a site's own adapter, a test double).
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from cyclotron.domain.ports import Executor, SimulatorPlugin
from cyclotron.errors import ConfigError

SIMULATORS = "cyclotron.simulators"
EXECUTORS = "cyclotron.executors"


def _import(name: str) -> Any:
    module, _, attribute = name.partition(":")
    try:
        return getattr(import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import plug-in {name!r}: {exc}") from exc


def _load(group: str, name: str, base: Any) -> Any:
    if ":" in name:
        loaded = _import(name)
    else:
        found = entry_points(group=group, name=name)
        if not found:
            known = ", ".join(sorted(ep.name for ep in entry_points(group=group))) or "none"
            raise ConfigError(f"no {group} plug-in named {name!r} (installed: {known})")
        loaded = next(iter(found)).load()
    if not (isinstance(loaded, type) and issubclass(loaded, base)):
        raise ConfigError(f"{group} entry point {name!r} is not a {base.__name__}")
    return loaded


def simulator_class(name: str) -> type[SimulatorPlugin]:
    found: type[SimulatorPlugin] = _load(SIMULATORS, name, SimulatorPlugin)
    return found


def executor_class(name: str) -> type[Executor]:
    found: type[Executor] = _load(EXECUTORS, name, Executor)
    return found


def installed(group: str) -> list[str]:
    return sorted(ep.name for ep in entry_points(group=group))
