"""SLURM clusters known to the server (``cyclotron clusters add``), listed by GET /clusters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from cyclotron.errors import InputError
from cyclotron.services.core import Core
from cyclotron.storage.tables import ClusterRow, utcnow

CLUSTER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
DEFAULT_NAMES = ("", "default")


@dataclass(frozen=True)
class ClusterInfo:
    name: str
    display_name: str
    enabled: bool
    options: dict[str, Any]
    last_error: str | None

    @property
    def available(self) -> bool:
        return self.enabled and self.last_error is None


def _info(row: ClusterRow) -> ClusterInfo:
    return ClusterInfo(row.name, row.display_name, row.enabled, dict(row.options), row.last_error)


def add_cluster(
    core: Core, name: str, display_name: str | None = None, options: dict[str, Any] | None = None
) -> ClusterInfo:
    if not CLUSTER_NAME.match(name) or name == "default":
        raise InputError(f"cluster name {name!r} must match {CLUSTER_NAME.pattern}, not 'default'")
    with core.db.transaction() as session:
        row = session.get(ClusterRow, name)
        if row is None:
            row = ClusterRow(name=name, display_name=display_name or name, created_at=utcnow())
            session.add(row)
        elif display_name:
            row.display_name = display_name
        row.options = {**(row.options or {}), **(options or {})}
        row.enabled = True
        session.flush()
        return _info(row)


def list_clusters(core: Core) -> list[ClusterInfo]:
    with core.db.transaction(write=False) as session:
        return [_info(r) for r in session.scalars(select(ClusterRow).order_by(ClusterRow.name))]


def resolve_cluster(core: Core, name: Any) -> ClusterInfo:
    """The named cluster, or the default (the first) for an absent, empty or "default" name."""
    clusters = list_clusters(core)
    if not clusters:
        raise InputError("No clusters are available")
    if name is None or (isinstance(name, str) and name.strip() in DEFAULT_NAMES):
        return clusters[0]
    for cluster in clusters:
        if cluster.name == name:
            return cluster
    raise InputError(f"Cluster '{name}' is not available")
