"""The core every face sits on: settings, database, files, services and executors, wired once."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cyclotron.domain.ports import Executor
from cyclotron.executors.sandbox import Sandbox
from cyclotron.plugins import executor_class
from cyclotron.services.bus import ProgressBus
from cyclotron.services.catalog import ServiceCatalog
from cyclotron.services.leases import lease_owner_of_this_process
from cyclotron.services.metrics import Metrics
from cyclotron.settings import Settings
from cyclotron.storage.database import Database
from cyclotron.storage.jobfiles import JobFiles
from cyclotron.storage.migrate import current_revision, upgrade

log = logging.getLogger(__name__)

# PostgreSQL's channel on which a process tells the others' dispatchers to make a pass.
WAKE_CHANNEL = "cyclotron_wake"


@dataclass
class Core:
    settings: Settings
    db: Database
    files: JobFiles
    catalog: ServiceCatalog
    executors: dict[str, Executor]
    sandbox: Sandbox
    bus: ProgressBus = field(default_factory=ProgressBus)
    metrics: Metrics = field(default_factory=Metrics)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    lease_owner: str = field(default_factory=lease_owner_of_this_process)
    _wake: threading.Event = field(default_factory=threading.Event)
    # The merges this process may run at once (``[dispatch] max_merges``).
    merge_slots: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self.merge_slots = threading.BoundedSemaphore(self.settings.dispatch.max_merges)

    def wake(self) -> None:
        """Ask the dispatchers for a pass now (a job arrived or left the admitted set): this
        process's at once, and on PostgreSQL every other server process's, through a NOTIFY
        (its callers have committed what the pass is to see)."""
        self._wake.set()
        self.wake_others()

    def wake_others(self) -> None:
        """Ask the other server processes' dispatchers for a pass (PostgreSQL only)."""
        try:
            self.db.notify(WAKE_CHANNEL, self.lease_owner)
        except Exception as exc:  # their periodic pass still comes
            log.warning("could not wake the other server processes: %s", exc)

    def woken_elsewhere(self, sender: str | None) -> None:
        """A wake-up notified on PostgreSQL (None: the listener just (re)connected, and may
        have missed some); this process's own were already taken in memory."""
        if sender != self.lease_owner:
            self._wake.set()

    def wait_for_wake(self, timeout: float) -> None:
        self._wake.wait(timeout)
        self._wake.clear()

    def executor_of(self, service: str) -> Executor | None:
        return self.executors.get(self.catalog.get(service).settings.executor)

    def close(self) -> None:
        self.db.dispose()


def build_core(settings: Settings, *, migrate: bool = True) -> Core:
    """Prepare the data directory, open the database (applying migrations), load plug-ins."""
    owner = lease_owner_of_this_process()
    files = JobFiles(settings.server.data_dir, process=owner)
    files.ensure()
    db = Database(settings.server.resolved_database_url())
    if migrate:
        upgrade(db)
    for change in files.secure(db.files()):
        log.warning("data folder was open to other users; fixed %s", change)
    wanted = {service.executor for service in settings.services.values()}
    executors = {name: executor_class(name)(settings) for name in sorted(wanted)}
    catalog = ServiceCatalog(settings, frozenset(executors))
    sandbox = Sandbox.of(settings)
    if sandbox.bwrap is not None:
        log.info("tasks run confined by %s", sandbox.bwrap)
    else:
        log.warning("tasks run unconfined: %s", sandbox.reason)
    core = Core(
        settings=settings,
        db=db,
        files=files,
        catalog=catalog,
        executors=executors,
        sandbox=sandbox,
        lease_owner=owner,
    )
    db.on_events_committed(core.bus.events_committed)
    core.metrics.watch(db, catalog)
    return core


def upgrade_database(settings: Settings) -> tuple[str | None, str]:
    """Apply the migrations; the revision reached and the kind of database."""
    db = Database(settings.server.resolved_database_url())
    try:
        upgrade(db)
        return current_revision(db), db.kind
    finally:
        db.dispose()
