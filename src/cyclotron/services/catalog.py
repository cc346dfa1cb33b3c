"""The configured services: each a named plug-in instance with its executor and limits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from cyclotron.domain.ports import SimulatorPlugin, TaskLimits
from cyclotron.errors import ConfigError, InputError, ServiceUnavailable
from cyclotron.plugins import simulator_class
from cyclotron.settings import ServiceSettings, Settings


@dataclass(frozen=True)
class ConfiguredService:
    name: str
    settings: ServiceSettings
    plugin: SimulatorPlugin
    #: The engine it stands in for, as people name it ("SHIELD-HIT12A"), or None.
    stands_in_for: str | None = None

    @property
    def description(self) -> str:
        """The plug-in's description, and for a stand-in which engine's jobs it runs."""
        if self.stands_in_for is None:
            return self.plugin.description
        return (
            f"{self.plugin.description}. Runs the jobs sent to {self.name!r} on the "
            f"{self.plugin.name} engine: no {self.stands_in_for} executable is configured"
        )

    def engine_attrs(self) -> dict[str, str]:
        """What a job of this service records of the engine that runs it."""
        attrs = {"engine": self.plugin.name}
        if self.settings.stands_in_for is not None:
            attrs["stands_in_for"] = self.settings.stands_in_for
        return attrs

    def task_limits(self) -> TaskLimits:
        """What each of its tasks may use in its sandbox (the service's settings, and the
        paths its plug-in reads)."""
        settings = self.settings

        def size(value: int | None) -> int | None:
            return int(value) if value is not None else None

        return TaskLimits(
            cpu_seconds=settings.cpu_time_limit,
            memory_bytes=size(settings.memory_limit),
            max_processes=settings.max_processes,
            output_bytes=size(settings.output_quota),
            network=settings.network,
            read_only_paths=(*settings.read_only_paths, *self.plugin.sandbox_paths()),
            writable_paths=self.plugin.sandbox_writable_paths(),
        )


class ServiceCatalog:
    """Looks services up by name; built once at start-up from the settings."""

    def __init__(self, settings: Settings, executors: frozenset[str]) -> None:
        self._services: dict[str, ConfiguredService] = {}
        self._executors = executors
        for name, service in settings.services.items():
            plugin_cls = simulator_class(service.plugin)
            try:
                plugin = plugin_cls(service.model_dump())
            except Exception as exc:
                raise ConfigError(f"services.{name}: {exc}") from exc
            plugin.attach(settings.server.data_dir.resolve())
            try:
                stands_in_for = _engine_named(service)
            except ConfigError as exc:
                raise ConfigError(f"services.{name}.stands_in_for: {exc}") from exc
            self._services[name] = ConfiguredService(name, service, plugin, stands_in_for)

    def names(self) -> list[str]:
        return sorted(self._services)

    def __iter__(self) -> Iterator[ConfiguredService]:
        return iter(self._services.values())

    def get(self, name: str) -> ConfiguredService:
        """The service, or InputError naming the available ones."""
        try:
            return self._services[name]
        except KeyError:
            raise InputError(
                f"Invalid service: {name!r} (available: {', '.join(self.names())})"
            ) from None

    def unavailable_reason(self, name: str) -> str | None:
        service = self.get(name)
        if service.settings.executor not in self._executors:
            return f"executor {service.settings.executor!r} of service {name!r} is not running"
        return service.plugin.unavailable_reason()

    def require_available(self, name: str) -> ConfiguredService:
        service = self.get(name)
        reason = self.unavailable_reason(name)
        if reason:
            raise ServiceUnavailable(reason)
        return service

    def served_by(self, executor: str) -> list[str]:
        return [s.name for s in self._services.values() if s.settings.executor == executor]


def _engine_named(service: ServiceSettings) -> str | None:
    """The name of the engine a stand-in service stands in for (its plug-in must exist)."""
    if service.stands_in_for is None:
        return None
    stood_for = simulator_class(service.stands_in_for)
    return str(getattr(stood_for, "engine", "") or stood_for.name)
