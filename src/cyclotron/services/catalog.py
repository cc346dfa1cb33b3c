"""The configured services: each a named plug-in instance with its executor and limits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from cyclotron.domain.ports import SimulatorPlugin
from cyclotron.errors import ConfigError, InputError, ServiceUnavailable
from cyclotron.plugins import simulator_class
from cyclotron.settings import ServiceSettings, Settings


@dataclass(frozen=True)
class ConfiguredService:
    name: str
    settings: ServiceSettings
    plugin: SimulatorPlugin


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
            self._services[name] = ConfiguredService(name, service, plugin)

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
