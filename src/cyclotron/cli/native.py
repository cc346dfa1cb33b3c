"""``cyclotron jobs|watch|cancel|results``: the native /api, through ``cyclotron.client``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from cyclotron.cli.files import KeyOption, ServerOption, client_for, reported

if TYPE_CHECKING:
    from cyclotron.client import ProgressEvent

console = Console(stderr=True)
FINAL = {"completed": 0, "failed": 1, "cancelled": 1}
# How long ``watch`` tries to get its progress stream back after the connection broke.
WATCH_RETRY_FOR = 30.0


class Bars:
    """One progress bar for the job and one per task, moved by its progress events."""

    def __init__(self, progress: Progress, job: str) -> None:
        self.progress = progress
        self.overall = progress.add_task(f"job {job}", total=100)
        self.tasks: dict[int, TaskID] = {}

    def _task(self, index: int) -> TaskID:
        if index not in self.tasks:
            self.tasks[index] = self.progress.add_task(f"  task {index}", total=100)
        return self.tasks[index]

    def __call__(self, event: ProgressEvent) -> None:
        if event.percent is not None:
            self.progress.update(self.overall, completed=event.percent)
        for task in event.raw.get("tasks", []):
            self.progress.update(self._task(task["index"]), completed=task["percent"])
        if event.type == "progress" and event.task_index is not None:
            self.progress.update(self._task(event.task_index), completed=event.task_percent)
        if event.type == "task_state" and event.raw.get("state") == "completed":
            self.progress.update(self._task(event.raw["task_index"]), completed=100)


def watch_job(server: str, job: str, api_key: str | None) -> str:
    """Follow a job's progress live (server-sent events), one bar per task; returns its
    final status."""
    from cyclotron.client import Unauthorized  # not at import: ``cyclotron serve`` loads this

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
    )
    with client_for(server, api_key, WATCH_RETRY_FOR) as client, reported():
        try:
            with Progress(*columns, console=console) as progress:
                return client.wait(job, Bars(progress, job)).status
        except Unauthorized:
            console.print("[red]the server refused the API key[/red]")
            raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    @app.command()
    def jobs(
        status: Annotated[str | None, typer.Option(help="Comma list: pending,running,...")] = None,
        service: Annotated[str | None, typer.Option()] = None,
        page: Annotated[int, typer.Option(min=1)] = 1,
        server: ServerOption = "http://127.0.0.1:5000",
        api_key: KeyOption = None,
    ) -> None:
        """List jobs, newest first."""
        with client_for(server, api_key) as client, reported():
            listing = client.jobs(status=status, service=service, page=page)
        table = Table("number", "id", "name", "service", "status", "stage", "percent")
        for job in listing.jobs:
            table.add_row(
                str(job.number),
                job.id,
                job.name,
                job.service,
                job.status,
                job.stage,
                f"{job.percent:.1f}",
            )
        Console().print(table)
        console.print(f"{listing.total} job(s) in all; page {listing.page}")

    @app.command()
    def watch(
        job: str,
        server: ServerOption = "http://127.0.0.1:5000",
        api_key: KeyOption = None,
    ) -> None:
        """Follow a job's progress until it ends (exit status 0 only if it completed)."""
        final = watch_job(server, job, api_key)
        console.print(f"job {job} {final}")
        raise typer.Exit(FINAL.get(final, 1))

    @app.command()
    def cancel(
        job: str,
        server: ServerOption = "http://127.0.0.1:5000",
        api_key: KeyOption = None,
    ) -> None:
        """Cancel a job."""
        with client_for(server, api_key) as client, reported():
            typer.echo(client.cancel(job))

    @app.command()
    def results(
        job: str,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Save the ZIP here.")
        ] = None,
        server: ServerOption = "http://127.0.0.1:5000",
        api_key: KeyOption = None,
    ) -> None:
        """Print a completed job's results summary, or save its result ZIP with --output."""
        with client_for(server, api_key) as client, reported():
            if output is None:
                typer.echo(json.dumps(client.results(job).raw, indent=2))
                return
            client.download_results(job, output)
        console.print(f"saved {output}")
