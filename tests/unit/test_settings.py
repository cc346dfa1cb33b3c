"""Settings: precedence of the sources, defaults, and refusal of bad values (spec §8)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from cyclotron.errors import ConfigError
from cyclotron.settings import load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CYCLOTRON_* variable of the developer's shell, and no ./cyclotron.toml, leaks in."""
    for name in list(os.environ):
        if name.upper().startswith("CYCLOTRON_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- defaults and the file ----------------------------------------------------------------


def test_defaults_without_any_configuration() -> None:
    settings = load_settings(environ={})
    assert settings.server.port == 5000
    assert settings.server.max_upload_bytes == 419_430_400
    assert settings.server.docs is True
    assert settings.retention.max_age == 864_000
    assert settings.retention.interval == 60
    assert settings.auth_enabled is False
    assert list(settings.services) == ["example", "builtin", "mcsquare", "shieldhit", "fluka"]
    example = settings.services["example"]
    assert (example.plugin, example.executor) == ("script", "local")
    assert (example.max_runs, example.runs_per_user) == (10, 5)
    # Every task has a wall-time limit and sandbox limits by default (docs/security.md).
    assert example.time_limit == 86_400 and example.max_age is None
    assert (example.memory_limit, example.output_quota) == (8 * 2**30, 4 * 2**30)
    assert (example.max_processes, example.cpu_time_limit, example.network) == (256, None, False)
    # A job of 10^8 primaries ends within time_limit at 1,200 primaries/s (docs/submissions.md).
    assert example.max_primaries == 100_000_000 <= 1_200 * example.time_limit
    assert settings.sandbox.mode == "bwrap"
    assert settings.services["builtin"].plugin == "builtin"
    assert settings.services["mcsquare"].plugin == "mcsquare"
    # The YAPTIDE web UI sends sim_type shieldhit or fluka: the engines that run here stand in.
    shieldhit, fluka = settings.services["shieldhit"], settings.services["fluka"]
    assert (shieldhit.plugin, shieldhit.stands_in_for) == ("builtin", "shieldhit")
    assert (fluka.plugin, fluka.stands_in_for) == ("mcsquare", "fluka")
    assert example.stands_in_for is None


def test_default_database_is_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(environ={"DATA_PATH": str(tmp_path / "d")})
    assert settings.server.resolved_database_url() == f"sqlite:///{tmp_path / 'd' / 'cyclotron.db'}"


def test_toml_file_values_are_used(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path / "c.toml",
        """
[server]
port = 6001
host = "0.0.0.0"
[retention]
max_age = 3600
[services.calc]
max_runs = 3
runs_per_user = 1
time_limit = 12.5
deny_patterns = ['\\bsudo\\b']
image = "ubuntu"
""",
    )
    settings = load_settings(config, environ={})
    assert settings.server.port == 6001
    assert settings.server.host == "0.0.0.0"
    assert settings.retention.max_age == 3600
    # a configured service replaces the default one
    assert list(settings.services) == ["calc"]
    calc = settings.services["calc"]
    assert (calc.max_runs, calc.runs_per_user, calc.time_limit) == (3, 1, 12.5)
    assert calc.deny_patterns == ["\\bsudo\\b"]
    assert calc.options == {"image": "ubuntu"}


def test_default_config_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    write_toml(tmp_path / "cyclotron.toml", "[server]\nport = 6002\n")
    assert load_settings(environ={}).server.port == 6002


def test_config_file_named_by_cyclotron_config(tmp_path: Path) -> None:
    config = write_toml(tmp_path / "elsewhere.toml", "[server]\nport = 6003\n")
    assert load_settings(environ={"CYCLOTRON_CONFIG": str(config)}).server.port == 6003


def test_explicit_missing_config_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="nope.toml"):
        load_settings(missing, environ={})
    with pytest.raises(ConfigError, match="nope.toml"):
        load_settings(environ={"CYCLOTRON_CONFIG": str(missing)})


def test_unreadable_toml_is_an_error(tmp_path: Path) -> None:
    config = write_toml(tmp_path / "bad.toml", "[server\nport = 1\n")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_settings(config, environ={})


# --- legacy variables -----------------------------------------------------------------------


def test_legacy_variables_map_to_their_keys(tmp_path: Path) -> None:
    settings = load_settings(
        environ={
            "PORT": "7001",
            "DB_PATH": "jobs.db",
            "DATA_PATH": str(tmp_path / "data"),
            "MAX_AGE": "120",
        }
    )
    assert settings.server.port == 7001
    assert settings.server.database_url == f"sqlite:///{tmp_path / 'jobs.db'}"
    assert settings.server.data_dir == tmp_path / "data"
    assert settings.retention.max_age == 120


def test_legacy_service_variables_create_a_script_service() -> None:
    settings = load_settings(
        environ={"SERVICE_HADDOCK_MAX_RUNS": "4", "SERVICE_HADDOCK_RUNS_PER_USER": "2"}
    )
    assert list(settings.services) == ["haddock"]  # name lower-cased
    haddock = settings.services["haddock"]
    assert (haddock.plugin, haddock.executor) == ("script", "local")
    assert (haddock.max_runs, haddock.runs_per_user) == (4, 2)


def test_legacy_service_names_cannot_contain_underscores() -> None:
    settings = load_settings(environ={"SERVICE_MY_CALC_MAX_RUNS": "4"})
    assert list(settings.services) == ["example", "builtin", "mcsquare", "shieldhit", "fluka"]


def test_legacy_url_variables_are_ignored_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    environ = {
        "SERVICE_HADDOCK_UPLOAD_URL": "http://elsewhere/upload",
        "SERVICE_HADDOCK_DOWNLOAD_URL": "http://elsewhere/download",
        "SERVICE_HADDOCK_TERMINATE_URL": "http://elsewhere/terminate",
        "SERVICE_HADDOCK_MAX_RUNS": "2",
    }
    with caplog.at_level(logging.WARNING, logger="cyclotron.settings"):
        settings = load_settings(environ=environ)
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    for name in ("UPLOAD_URL", "DOWNLOAD_URL", "TERMINATE_URL"):
        assert f"SERVICE_HADDOCK_{name}" in warned
    haddock = settings.services["haddock"]
    assert haddock.max_runs == 2
    assert haddock.options == {}  # nothing of the URLs is kept
    assert "http://elsewhere" not in repr(settings)


# --- precedence -----------------------------------------------------------------------------


def test_legacy_variables_beat_the_toml_file(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path / "c.toml",
        "[server]\nport = 6004\n[retention]\nmax_age = 5\n[services.calc]\nmax_runs = 3\n",
    )
    settings = load_settings(
        config, environ={"PORT": "7002", "MAX_AGE": "6", "SERVICE_CALC_MAX_RUNS": "8"}
    )
    assert settings.server.port == 7002
    assert settings.retention.max_age == 6
    assert settings.services["calc"].max_runs == 8


def test_sources_merge_key_by_key_not_table_by_table(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path / "c.toml",
        '[server]\nhost = "0.0.0.0"\nport = 6005\n'
        "[services.calc]\nruns_per_user = 2\ntime_limit = 30\n",
    )
    settings = load_settings(config, environ={"PORT": "7003", "SERVICE_CALC_MAX_RUNS": "8"})
    assert settings.server.host == "0.0.0.0"
    assert settings.server.port == 7003
    calc = settings.services["calc"]
    assert (calc.max_runs, calc.runs_per_user, calc.time_limit) == (8, 2, 30)


def test_cyclotron_variables_beat_legacy_and_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_toml(tmp_path / "c.toml", "[server]\nport = 6006\n[retention]\nmax_age = 5\n")
    monkeypatch.setenv("CYCLOTRON_SERVER__PORT", "8001")
    monkeypatch.setenv("CYCLOTRON_RETENTION__MAX_AGE", "3600")
    settings = load_settings(config, environ={"PORT": "7004", "MAX_AGE": "6"})
    assert settings.server.port == 8001
    assert settings.retention.max_age == 3600


def test_cyclotron_service_variables_are_case_insensitive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CYCLOTRON_SERVICES__EXAMPLE__MAX_RUNS", "7")
    monkeypatch.setenv("cyclotron_services__example__runs_per_user", "3")
    settings = load_settings(environ={"SERVICE_EXAMPLE_MAX_RUNS": "2"})
    assert settings.services["example"].max_runs == 7
    assert settings.services["example"].runs_per_user == 3


def test_overrides_beat_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_toml(tmp_path / "c.toml", '[server]\nport = 6007\nhost = "0.0.0.0"\n')
    monkeypatch.setenv("CYCLOTRON_SERVER__PORT", "8002")
    settings = load_settings(config, overrides={"server": {"port": 9001}}, environ={"PORT": "7005"})
    assert settings.server.port == 9001
    assert settings.server.host == "0.0.0.0"  # an override of one key keeps its neighbours


def test_api_key_variable_enables_authentication(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYCLOTRON_API_KEY", "s3cret-key")
    settings = load_settings(environ={})
    assert settings.auth_enabled is True
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "s3cret-key"
    assert "s3cret-key" not in repr(settings)


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[server]\nport = "abc"\n', "server.port"),
        ("[server]\nport = 70000\n", "server.port"),
        ("[server]\nmax_upload_bytes = 0\n", "server.max_upload_bytes"),
        ("[server]\nbogus = 1\n", "server.bogus"),
        ("[retention]\nmax_age = -1\n", "retention.max_age"),
        ("[retention]\ninterval = 0\n", "retention.interval"),
        ("[services.calc]\nmax_runs = 0\n", "services.calc.max_runs"),
        ("[services.calc]\nruns_per_user = 0\n", "services.calc.runs_per_user"),
        ("[services.calc]\ntime_limit = 0\n", "services.calc.time_limit"),
        ("[services.calc]\nmax_primaries = 0\n", "services.calc.max_primaries"),
        ("[services.calc]\ndeny_patterns = ['(']\n", "services.calc.deny_patterns"),
        ('[[auth.keys]]\nsha256 = "xyz"\nuser_id = 1\n', "auth.keys.0.sha256"),
    ],
)
def test_invalid_toml_value_names_the_key(tmp_path: Path, toml: str, key: str) -> None:
    config = write_toml(tmp_path / "c.toml", toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert key in caught.value.message


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"PORT": "abc"}, "server.port"),
        ({"MAX_AGE": "-5"}, "retention.max_age"),
        ({"SERVICE_CALC_MAX_RUNS": "many"}, "services.calc.max_runs"),
    ],
)
def test_invalid_legacy_value_names_the_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=environ)
    assert key in caught.value.message


def test_invalid_cyclotron_variable_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYCLOTRON_DISPATCH__LEASE_SECONDS", "-1")
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={})
    assert "dispatch.lease_seconds" in caught.value.message


def test_invalid_override_names_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(overrides={"server": {"port": 0}}, environ={})
    assert "server.port" in caught.value.message


@pytest.mark.parametrize("name", ["Calc", "1calc", "calc.x", "my calc", "_calc", "c" * 65, ""])
def test_bad_service_name_is_refused(tmp_path: Path, name: str) -> None:
    config = write_toml(tmp_path / "c.toml", f'[services."{name}"]\nmax_runs = 1\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert "services" in caught.value.message


@pytest.mark.parametrize("name", ["c", "my-calc_2", "c" * 64])
def test_good_service_names_are_accepted(tmp_path: Path, name: str) -> None:
    config = write_toml(tmp_path / "c.toml", f'[services."{name}"]\nmax_runs = 1\n')
    assert list(load_settings(config, environ={}).services) == [name]
