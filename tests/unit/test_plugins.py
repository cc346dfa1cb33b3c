"""Plug-ins and executors are found through their entry-point groups, built-ins included."""

from __future__ import annotations

from pathlib import Path

import pytest

from cyclotron.domain.ports import Executor, SimulatorPlugin
from cyclotron.errors import ConfigError
from cyclotron.executors.local import LocalExecutor
from cyclotron.plugins import EXECUTORS, SIMULATORS, executor_class, installed, simulator_class
from cyclotron.services.catalog import ServiceCatalog
from cyclotron.settings import load_settings
from cyclotron.simulators.script import ScriptSimulator


def test_built_ins_are_registered_like_third_party_plugins() -> None:
    assert "script" in installed(SIMULATORS) and "local" in installed(EXECUTORS)
    assert simulator_class("script") is ScriptSimulator
    assert executor_class("local") is LocalExecutor
    assert issubclass(ScriptSimulator, SimulatorPlugin) and issubclass(LocalExecutor, Executor)


def test_unknown_plugin_names_what_is_installed() -> None:
    with pytest.raises(ConfigError, match=r"no cyclotron.simulators plug-in named 'nope'.*script"):
        simulator_class("nope")
    with pytest.raises(ConfigError, match="local"):
        executor_class("nope")


def test_catalog_reports_a_service_whose_executor_is_not_running() -> None:
    settings = load_settings(
        environ={}, overrides={"services": {"far": {"plugin": "script", "executor": "remote"}}}
    )
    catalog = ServiceCatalog(settings, executors=frozenset({"local"}))
    assert catalog.names() == ["far"]
    assert "executor 'remote'" in (catalog.unavailable_reason("far") or "")
    with pytest.raises(ConfigError):
        ServiceCatalog(
            load_settings(environ={}, overrides={"services": {"x": {"plugin": "missing"}}}),
            executors=frozenset({"local"}),
        )


def test_a_stand_in_service_says_which_engine_runs_its_jobs(tmp_path: Path) -> None:
    """Issue 19: with no configuration, sim_type shieldhit runs on builtin, fluka on mcsquare,
    and the catalog says so: description, and what its jobs record."""
    settings = load_settings(environ={"DATA_PATH": str(tmp_path)})
    catalog = ServiceCatalog(settings, executors=frozenset({"local"}))
    shieldhit, fluka = catalog.get("shieldhit"), catalog.get("fluka")
    assert (shieldhit.plugin.name, shieldhit.stands_in_for) == ("builtin", "SHIELD-HIT12A")
    assert (fluka.plugin.name, fluka.stands_in_for) == ("mcsquare", "FLUKA")
    assert "no SHIELD-HIT12A executable is configured" in shieldhit.description
    assert shieldhit.engine_attrs() == {"engine": "builtin", "stands_in_for": "shieldhit"}
    builtin = catalog.get("builtin")
    assert builtin.stands_in_for is None and builtin.engine_attrs() == {"engine": "builtin"}
    assert builtin.description == builtin.plugin.description
    with pytest.raises(ConfigError, match=r"services.x.stands_in_for: .*'nope'"):
        ServiceCatalog(
            load_settings(
                environ={"DATA_PATH": str(tmp_path)},
                overrides={"services": {"x": {"plugin": "builtin", "stands_in_for": "nope"}}},
            ),
            executors=frozenset({"local"}),
        )
