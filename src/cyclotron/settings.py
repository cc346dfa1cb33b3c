"""Settings: one object built at start-up from a TOML file and the environment, then passed down.

Precedence (highest first): explicit overrides (CLI flags), ``CYCLOTRON_*`` variables, the
legacy variables of the original file-upload server, the TOML file, defaults.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cyclotron.errors import ConfigError

log = logging.getLogger(__name__)

SERVICE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
DEFAULT_CONFIG_FILE = Path("cyclotron.toml")
_LEGACY_SERVICE = re.compile(
    r"^SERVICE_([A-Za-z0-9]+)_(MAX_RUNS|RUNS_PER_USER|UPLOAD_URL|DOWNLOAD_URL|TERMINATE_URL)$"
)


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(5000, ge=1, le=65535)
    data_dir: Path = Path("./cyclotron-data")
    database_url: str | None = None
    max_upload_bytes: int = Field(419_430_400, ge=1)
    docs: bool = True
    # The message of GET /: the file-upload face's "pong"; YAPTIDE scripts that compare it
    # expect "Hello World!" (any non-empty text satisfies the YAPTIDE web UI).
    root_message: str = Field("pong", min_length=1)

    def own_url(self) -> str:
        """This server's address as a process on the same network reaches it."""
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def resolved_database_url(self) -> str:
        """The configured URL, or a SQLite file inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'cyclotron.db').resolve()}"


class RetentionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_age: int = Field(864_000, ge=0)
    interval: float = Field(60.0, gt=0)


class ApiKeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    user_id: int = Field(ge=0, le=2_147_483_647)
    admin: bool = False


class AuthSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    keys: list[ApiKeyEntry] = Field(default_factory=list)


class ApiSettings(BaseModel):
    """The native ``/api`` face."""

    model_config = ConfigDict(extra="forbid")

    cors_origins: list[str] = Field(default_factory=list)
    cancel_wait: float = Field(5.0, ge=0)
    ws_ping_interval: float = Field(30.0, gt=0)
    sse_ping_interval: float = Field(15.0, gt=0)
    # How often a progress stream looks at the event log even without a notification
    # (events written by other server processes or workers).
    progress_poll_interval: float = Field(1.0, gt=0)
    # The service that AlphaFold 3 bodies sent as-is to POST /api/jobs go to.
    alphafold3_service: str = "alphafold3"
    # A static export (a single-page app such as the AlphaFold 3 app's UI) served at /.
    frontend_dir: Path | None = None

    @field_validator("frontend_dir")
    @classmethod
    def _has_an_index(cls, value: Path | None) -> Path | None:
        if value is not None and not (value / "index.html").is_file():
            raise ValueError(f"{value} has no index.html")
        return value


class KeycloakSettings(BaseModel):
    """Keycloak login of the YAPTIDE face; off while ``base_url`` is empty."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = ""
    realm: str = ""
    client_id: str = ""
    access_service: str = "PLG_YAPTIDE_ACCESS"
    jwks_cache_seconds: float = Field(600.0, gt=0)
    jwks_refetch_seconds: float = Field(60.0, ge=0)
    timeout: float = Field(5.0, gt=0)

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.realm and self.client_id)

    @property
    def issuer(self) -> str:
        return f"{self.base_url.rstrip('/')}/realms/{self.realm}"


class YaptideSettings(BaseModel):
    """The YAPTIDE face: accounts, cookies, CORS and its limits."""

    model_config = ConfigDict(extra="forbid")

    cors_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:3000", "http://localhost:3000"]
    )
    server_name: str = "Cyclotron"
    registration: bool = True
    min_password_length: int = Field(8, ge=1, le=1024)
    # Token signing secret (32 bytes or more); when unset, one is created in the data
    # directory and kept.
    jwt_secret: SecretStr | None = Field(None, min_length=32)
    access_minutes: float = Field(10.0, gt=0)
    keycloak_access_minutes: float = Field(30.0, gt=0)
    refresh_minutes: float = Field(120.0, gt=0)
    login_max_days: float = Field(7.0, gt=0)
    refresh_grace_seconds: float = Field(60.0, ge=0)
    # None: Secure cookies when the request came over https.
    secure_cookies: bool | None = None
    trust_forwarded_proto: bool = False
    max_body_bytes: int = Field(100 * 1024 * 1024, ge=1)
    max_active_jobs_per_user: int | None = Field(None, ge=1)
    update_key_days: float = Field(7.0, gt=0)
    login_attempts: int = Field(10, ge=1)
    login_window_seconds: float = Field(300.0, gt=0)
    keycloak: KeycloakSettings = Field(default_factory=KeycloakSettings)


class DispatchSettings(BaseModel):
    """How tasks and merges are claimed and kept: leases, retries, scheduler cadence."""

    model_config = ConfigDict(extra="forbid")

    lease_seconds: float = Field(30.0, gt=0)
    max_attempts: int = Field(3, ge=1)
    interval: float = Field(1.0, gt=0)
    # Merges one server process runs at once; a job past them waits in MERGING_QUEUED.
    max_merges: int = Field(4, ge=1)


class LocalExecutorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_parallel: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    grace_period: float = Field(10.0, ge=0)


class CeleryExecutorSettings(BaseModel):
    """Tasks sent through a Celery broker to ``cyclotron worker`` processes on any machine."""

    model_config = ConfigDict(extra="forbid")

    broker_url: str = "redis://127.0.0.1:6379/0"
    queue: str = "cyclotron"
    # The address workers use to reach this server's worker routes; default: host and port.
    api_url: str | None = None
    # Tasks handed to the broker and not yet ended, across every worker and server process.
    max_queued: int = Field(64, ge=1)
    # How long a task may wait in the broker for a worker before it is handed out again.
    queue_timeout: float = Field(3600.0, gt=0)
    # Redis: an unacknowledged message (its worker died) is delivered again after this long.
    visibility_timeout: float = Field(3600.0, gt=0)


class SlurmSettings(BaseModel):
    """Batch jobs on SLURM clusters (``cyclotron clusters add``)."""

    model_config = ConfigDict(extra="forbid")

    # One squeue call per cluster this often, whatever the number of clients polling.
    poll_interval: float = Field(30.0, gt=0)
    command_timeout: float = Field(120.0, gt=0)  # seconds for one remote command or upload
    keep_job_dir: bool = False  # keep a cancelled job's directory on the cluster


class SandboxSettings(BaseModel):
    """How tasks are confined (docs/security.md): ``bwrap`` (bubblewrap namespaces, the
    default) or ``none`` (tasks run as the server's user, seeing what it sees)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["bwrap", "none"] = "bwrap"
    # A server running as root runs each task slot under its own uid from here up.
    task_uid_base: int = Field(2_000_000, ge=1000, le=2**31 - 2**20)


class ExecutorsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    local: LocalExecutorSettings = Field(default_factory=LocalExecutorSettings)
    celery: CeleryExecutorSettings = Field(default_factory=CeleryExecutorSettings)
    slurm: SlurmSettings = Field(default_factory=SlurmSettings)


DEFAULT_MAX_PRIMARIES = 100_000_000


class ServiceSettings(BaseModel):
    """One ``[services.<name>]`` table. Keys the core does not know are the plug-in's options."""

    model_config = ConfigDict(extra="allow")

    plugin: str = "script"
    executor: str = "local"
    max_runs: int = Field(10, ge=1)
    runs_per_user: int = Field(5, ge=1)
    max_queued: int = Field(1000, ge=1)  # pending jobs before /api submissions get 429
    max_queued_per_user: int = Field(100, ge=1)
    max_ntasks: int = Field(1000, ge=1)
    # Primaries of one job (simulation services). The default ends within the default
    # time_limit even in one task at 1,200 primaries/s, slower than any engine here runs
    # protons in water (docs/submissions.md).
    max_primaries: int = Field(DEFAULT_MAX_PRIMARIES, ge=1)
    max_age: int | None = Field(None, ge=0)
    time_limit: float | None = Field(86_400.0, gt=0)  # wall seconds per task
    # Per task, in its sandbox (docs/security.md says how each is enforced).
    cpu_time_limit: float | None = Field(None, gt=0)
    memory_limit: ByteSize | None = Field(ByteSize(8 * 2**30), gt=0)
    max_processes: int | None = Field(256, ge=1)
    output_quota: ByteSize | None = Field(ByteSize(4 * 2**30), gt=0)
    network: bool = False
    read_only_paths: list[str] = Field(default_factory=list)
    deny_patterns: list[str] = Field(default_factory=list)
    # The plug-in of the engine whose jobs this service runs on its own plug-in instead (the
    # YAPTIDE web UI's sim_type "shieldhit" on "builtin"): said wherever the service and its
    # jobs are shown, and in its refusals, with what to configure to run that engine itself.
    stands_in_for: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,200}$")

    @field_validator("deny_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
        return patterns

    @property
    def options(self) -> dict[str, Any]:
        """Plug-in specific keys of this service's table."""
        return dict(self.model_extra or {})


def default_services() -> dict[str, ServiceSettings]:
    """The services of a server configured with none: ``run.sh`` jobs, the two engines that
    run editor projects on this machine, and the two sim_types the YAPTIDE web UI sends,
    ``shieldhit`` and ``fluka``, run on those engines until a site configures the real ones
    (README, "Installing SHIELD-HIT12A, FLUKA, TOPAS or Geant4")."""
    return {
        "example": ServiceSettings(),
        "builtin": ServiceSettings(plugin="builtin"),
        "mcsquare": ServiceSettings(plugin="mcsquare"),
        "shieldhit": ServiceSettings(plugin="builtin", stands_in_for="shieldhit"),
        "fluka": ServiceSettings(plugin="mcsquare", stands_in_for="fluka"),
    }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CYCLOTRON_",
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="forbid",
    )

    server: ServerSettings = Field(default_factory=ServerSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    yaptide: YaptideSettings = Field(default_factory=YaptideSettings)
    executors: ExecutorsSettings = Field(default_factory=ExecutorsSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    services: dict[str, ServiceSettings] = Field(default_factory=dict)
    api_key: SecretStr | None = None
    config: str | None = None  # the configuration file read (CYCLOTRON_CONFIG or the one named)

    @field_validator("services")
    @classmethod
    def _service_names(cls, services: dict[str, ServiceSettings]) -> dict[str, ServiceSettings]:
        for name in services:
            if not SERVICE_NAME.match(name):
                raise ValueError(f"service name {name!r} must match {SERVICE_NAME.pattern}")
        return services or default_services()

    @property
    def auth_enabled(self) -> bool:
        return self.auth.enabled or self.api_key is not None


class _MappingSource(PydanticBaseSettingsSource):
    """A settings source over an already-read mapping (the TOML file, the legacy variables)."""

    def __init__(self, settings_cls: type[BaseSettings], data: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = dict(data)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def legacy_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """Translate the original server's variables (PORT, DB_PATH, SERVICE_<NAME>_MAX_RUNS, ...)."""
    server: dict[str, Any] = {}
    services: dict[str, dict[str, Any]] = {}
    data: dict[str, Any] = {}
    if "PORT" in environ:
        server["port"] = environ["PORT"]
    if "DB_PATH" in environ:
        server["database_url"] = f"sqlite:///{Path(environ['DB_PATH']).resolve()}"
    if "DATA_PATH" in environ:
        server["data_dir"] = environ["DATA_PATH"]
    if "MAX_AGE" in environ:
        data["retention"] = {"max_age": environ["MAX_AGE"]}
    for key, value in environ.items():
        match = _LEGACY_SERVICE.match(key)
        if not match:
            continue
        name, field = match.group(1).lower(), match.group(2).lower()
        if field.endswith("_url"):
            log.warning("%s is ignored: Cyclotron runs jobs through its own executors", key)
            continue
        service = services.setdefault(name, {"plugin": "script", "executor": "local"})
        service[field] = value
    if server:
        data["server"] = server
    if services:
        data["services"] = services
    return data


def _read_toml(path: Path, explicit: bool) -> dict[str, Any]:
    if not path.exists():
        if explicit:
            raise ConfigError(f"configuration file {path} does not exist")
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc}") from exc


def load_settings(
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings, or raise ConfigError naming the first bad key.

    ``environ`` stands in for the process environment when reading ``CYCLOTRON_CONFIG`` and
    the legacy variables; ``CYCLOTRON_<SECTION>__<KEY>`` variables are read by
    pydantic-settings from ``os.environ`` itself.
    """
    env = os.environ if environ is None else environ
    named = config_file or (Path(env["CYCLOTRON_CONFIG"]) if env.get("CYCLOTRON_CONFIG") else None)
    toml_data = _read_toml(named or DEFAULT_CONFIG_FILE, explicit=named is not None)
    legacy = legacy_environment(env)

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (
                init_settings,
                env_settings,
                _MappingSource(settings_cls, legacy),
                _MappingSource(settings_cls, toml_data),
            )

    read = named or DEFAULT_CONFIG_FILE
    try:
        loaded = _Loaded(**dict(overrides or {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"invalid setting {key}: {first['msg']}") from exc
    if read.is_file():  # the file tasks must never see, however it was named
        loaded.config = str(read.resolve())
    return loaded
