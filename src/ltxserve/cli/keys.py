"""`ltxserve keys ...` and `ltxserve credits add`: the operator's key and credit commands, run against
the job store directly (the admin API offers the same over HTTP)."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer
from rich.table import Table

from ..billing import keys
from ..billing.prices import format_dollars, to_micro
from ..db import Database
from ..errors import NotFound
from .common import console, settings_with

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
credits_app = typer.Typer(help="Add credits to a key.", no_args_is_help=True)


def _database() -> Database:
    db = Database(settings_with().database)
    db.migrate()
    return db


def _dollars(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not an amount of dollars") from None


def _key_json(info: keys.KeyInfo, balance: int) -> dict:
    return {
        "id": info.id,
        "name": info.name,
        "prefix": info.prefix,
        "scopes": list(info.scopes),
        "rpm_limit": info.rpm_limit,
        "concurrency_limit": info.concurrency_limit,
        "priority": info.priority,
        "credits": format_dollars(balance),
        "created_at": info.created_at.isoformat(),
        "revoked_at": info.revoked_at.isoformat() if info.revoked_at else None,
    }


@keys_app.command("create")
def create(
    credits: Annotated[str, typer.Option(help="Starting balance in US dollars")] = "0",
    scope: Annotated[list[str] | None, typer.Option(help=f"Repeat for several: {', '.join(keys.SCOPES)}")] = None,
    name: Annotated[str, typer.Option(help="A label for `keys list`")] = "",
    rpm: Annotated[
        int | None, typer.Option(min=1, max=1_000_000, help="Requests a minute (default: the server's)")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=10_000, help="Generations at once (default: the server's)")
    ] = None,
    priority: Annotated[
        int, typer.Option(min=-1000, max=1000, help="Higher is served first; keys of equal priority take turns")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the new key as JSON")] = False,
) -> None:
    """Create a key. It is printed this once; only its hash is kept."""
    try:
        new = keys.create_key(
            _database(),
            name=name,
            scopes=scope or ["ltx-2-fast"],
            credits=_dollars(credits),
            rpm_limit=rpm,
            concurrency_limit=concurrency,
            priority=priority,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if as_json:
        print(json.dumps({**_key_json(new.info, to_micro(_dollars(credits))), "key": new.secret}))
        return
    console.print(
        f"Created {new.info.id} with ${format_dollars(to_micro(_dollars(credits)))} and scopes "
        f"{', '.join(new.info.scopes)}. The key (shown this once):"
    )
    print(new.secret)


@keys_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines")] = False) -> None:
    """Every key, with its balance."""
    rows = keys.list_keys(_database())
    if as_json:
        for info, balance in rows:
            print(json.dumps(_key_json(info, balance)))
        return
    table = Table("id", "name", "prefix", "scopes", "credits", "rpm", "at once", "priority", "created", "revoked")
    for info, balance in rows:
        table.add_row(
            info.id,
            info.name,
            info.prefix + "…",
            " ".join(info.scopes),
            f"${format_dollars(balance)}",
            str(info.rpm_limit or "default"),
            str(info.concurrency_limit or "default"),
            str(info.priority),
            info.created_at.strftime("%Y-%m-%d %H:%M"),
            info.revoked_at.strftime("%Y-%m-%d %H:%M") if info.revoked_at else "",
        )
    console.print(table)


@keys_app.command("revoke")
def revoke(key: Annotated[str, typer.Argument(help="The key's id (key_...) or its prefix (ltx_...)")]) -> None:
    """Revoke a key: every request with it is refused (401) from now on."""
    try:
        info = keys.revoke_key(_database(), key)
    except NotFound as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    console.print(f"Revoked {info.id} ({info.prefix}…).")


@credits_app.command("add")
def add(
    key: Annotated[str, typer.Argument(help="The key's id (key_...) or its prefix (ltx_...)")],
    amount: Annotated[str, typer.Argument(help="US dollars to add")],
    note: Annotated[str, typer.Option(help="Kept in the ledger with the entry")] = "",
) -> None:
    """Add credits to a key."""
    try:
        balance = keys.add_credits(_database(), key, _dollars(amount), note or "ltxserve credits add")
    except NotFound as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    console.print(f"Added ${amount}; the balance is now ${format_dollars(balance)}.")
