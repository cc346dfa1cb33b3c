"""``cyclotron keys``: API keys, stored as digests in the database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from cyclotron.services.core import Core

app = typer.Typer(help="API keys.", no_args_is_help=True)
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML configuration file.")
]


def _core(config: Path | None) -> Core:
    from cyclotron.cli.config import settings_or_exit
    from cyclotron.services.core import build_core

    return build_core(settings_or_exit(config))


@app.command("create")
def create(
    user_id: Annotated[
        int | None,
        typer.Option("--user-id", min=0, help="A key-only user (below 1000000000) owns it."),
    ] = None,
    account: Annotated[
        str | None,
        typer.Option(help="The YAPTIDE account (local username) it acts as."),
    ] = None,
    admin: Annotated[bool, typer.Option(help="May see and act on every user's jobs.")] = False,
    label: Annotated[str, typer.Option(help="A note to recognise the key by.")] = "",
    config: ConfigOption = None,
) -> None:
    """Create a key and print it once (it is not stored in plain text)."""
    from cyclotron.errors import CyclotronError
    from cyclotron.services.access.apikeys import create_account_key, create_key

    if (user_id is None) == (account is None):
        typer.echo("give exactly one of --user-id (a key-only user) and --account", err=True)
        raise typer.Exit(2)
    core = _core(config)
    try:
        if account is not None:
            key, info = create_account_key(core, account, admin=admin, label=label)
        else:
            assert user_id is not None
            key, info = create_key(core, user_id, admin, label)
    except CyclotronError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    finally:
        core.close()
    typer.echo(key)
    Console(stderr=True).print(
        f"key {info.id} for user {info.user_id}{' (admin)' if admin else ''}"
    )


@app.command("list")
def list_(config: ConfigOption = None) -> None:
    """List keys (never their secret part)."""
    from cyclotron.services.access.apikeys import list_keys

    core = _core(config)
    table = Table("id", "user", "admin", "label", "created", "revoked")
    for info in list_keys(core):
        table.add_row(
            str(info.id),
            str(info.user_id),
            "yes" if info.admin else "",
            info.label,
            info.created_at.isoformat(timespec="seconds"),
            info.revoked_at.isoformat(timespec="seconds") if info.revoked_at else "",
        )
    core.close()
    Console().print(table)


@app.command("revoke")
def revoke(key_id: int, config: ConfigOption = None) -> None:
    """Revoke a key by its id."""
    from cyclotron.errors import NotFound
    from cyclotron.services.access.apikeys import revoke_key

    core = _core(config)
    try:
        revoke_key(core, key_id)
    except NotFound as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    finally:
        core.close()
    typer.echo(f"key {key_id} revoked")
