"""Prometheus metrics: counts read from the database at scrape time, durations as they happen."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cyclotron.domain.states import JobState
from cyclotron.services.catalog import ServiceCatalog
from cyclotron.storage import jobs as repo
from cyclotron.storage.database import Database

TASK_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400, 86400)


class Metrics:
    """One registry per server (never the process-global one), so tests can build many."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.task_seconds = Histogram(
            "cyclotron_task_duration_seconds",
            "Wall time of task attempts, by service and outcome",
            ["service", "outcome"],
            buckets=TASK_BUCKETS,
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "cyclotron_http_request_duration_seconds",
            "Latency of HTTP requests, by method, route and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.cluster_commands = Counter(
            "cyclotron_cluster_commands",
            "Commands run on SLURM clusters, by cluster and program (sbatch, squeue, scancel)",
            ["cluster", "program"],
            registry=self.registry,
        )

    def watch(self, db: Database, catalog: ServiceCatalog) -> None:
        """Count the jobs of ``db`` by the services of ``catalog`` at every scrape."""
        self.registry.register(_JobCounts(db, catalog))


class _JobCounts(Collector):
    def __init__(self, db: Database, catalog: ServiceCatalog) -> None:
        self.db = db
        self.catalog = catalog

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.db.transaction(write=False) as session:
            counts = repo.jobs_by_service_and_state(session)
        jobs = GaugeMetricFamily(
            "cyclotron_jobs", "Jobs by service and state", labels=["service", "state"]
        )
        queue = GaugeMetricFamily(
            "cyclotron_queue_depth", "Pending jobs by service", labels=["service"]
        )
        for service in self.catalog.names():
            for state in JobState:
                jobs.add_metric([service, state.value], counts.get((service, state.value), 0))
            queue.add_metric([service], counts.get((service, JobState.PENDING.value), 0))
        yield jobs
        yield queue
