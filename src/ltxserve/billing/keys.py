"""API keys: shown once at creation, kept only as a SHA-256 hash, each with scopes, limits and credits."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, get_args

from sqlalchemy import or_, select

from ..db import ApiKey, Database, utcnow
from ..errors import NotFound, Unauthorized
from . import ledger
from .prices import grant_micro

KEY_PREFIX = "ltx_"
# A key needs the model's scope for every request and "4k" for 4K output.
Scope = Literal["ltx-2-fast", "4k"]
SCOPES: tuple[str, ...] = get_args(Scope)


@dataclass(frozen=True)
class KeyInfo:
    id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    rpm_limit: int | None
    concurrency_limit: int | None
    created_at: datetime
    revoked_at: datetime | None
    priority: int = 0  # claims serve higher priorities first; equal ones take turns

    @classmethod
    def of(cls, row: ApiKey) -> KeyInfo:
        return cls(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            scopes=tuple(row.scopes),
            rpm_limit=row.rpm_limit,
            concurrency_limit=row.concurrency_limit,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
            priority=row.priority or 0,
        )


@dataclass(frozen=True)
class NewKey:
    info: KeyInfo
    secret: str  # the only time the whole key exists outside the client's hands


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return tuple(dict.fromkeys(scopes))


def create_key(
    db: Database,
    *,
    name: str = "",
    scopes: Sequence[str] = ("ltx-2-fast",),
    credits: Decimal = Decimal(0),
    rpm_limit: int | None = None,
    concurrency_limit: int | None = None,
    priority: int = 0,
) -> NewKey:
    granted = grant_micro(credits, allow_zero=True)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        id="key_" + secrets.token_hex(6),
        name=name,
        key_hash=hash_key(secret),
        prefix=secret[: len(KEY_PREFIX) + 6],
        scopes=list(check_scopes(scopes)),
        rpm_limit=rpm_limit,
        concurrency_limit=concurrency_limit,
        priority=priority,
        created_at=utcnow(),
    )
    with db.write() as session:
        session.add(row)
        session.flush()
        if granted:
            ledger.grant(session, row.id, granted, note="created with the key")
        return NewKey(KeyInfo.of(row), secret)


def authenticate(db: Database, secret: str | None) -> KeyInfo:
    if not secret:
        raise Unauthorized("Missing API key. Send it in the x-api-key header.")
    with db.read() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret)))
    if row is None:
        raise Unauthorized("Invalid API key. Check the x-api-key header; keys are shown once, at creation.")
    if row.revoked_at is not None:
        raise Unauthorized("This API key has been revoked. Ask for a new one.")
    return KeyInfo.of(row)


def find_key(db: Database, ident: str) -> KeyInfo:
    """A key by its id (key_...) or by the prefix `keys list` shows."""
    with db.read() as session:
        rows = session.scalars(select(ApiKey).where(or_(ApiKey.id == ident, ApiKey.prefix == ident))).all()
    if len(rows) != 1:
        raise NotFound(f"No single API key has the id or prefix {ident!r}.")
    return KeyInfo.of(rows[0])


def list_keys(db: Database) -> list[tuple[KeyInfo, int]]:
    """Every key with its balance in micro-dollars, oldest first."""
    with db.read() as session:
        rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at)).all()
        balances = ledger.balances(session)
    return [(KeyInfo.of(row), balances.get(row.id, 0)) for row in rows]


def revoke_key(db: Database, ident: str) -> KeyInfo:
    key = find_key(db, ident)
    with db.write() as session:
        row = session.get_one(ApiKey, key.id)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        return KeyInfo.of(row)


def add_credits(db: Database, ident: str, dollars: Decimal, note: str = "") -> int:
    """Grant credits; returns the new balance in micro-dollars."""
    granted = grant_micro(dollars)
    key = find_key(db, ident)
    with db.write() as session:
        ledger.grant(session, key.id, granted, note=note)
        session.flush()
        return ledger.balance(session, key.id)


def balance(db: Database, key_id: str) -> int:
    """The key's spendable balance, in micro-dollars."""
    with db.read() as session:
        return ledger.balance(session, key_id)


def webhook_secret(db: Database, key_id: str) -> str:
    """The key's webhook signing secret, made on first use."""
    with db.read() as session:
        secret = session.scalar(select(ApiKey.webhook_secret).where(ApiKey.id == key_id))
    if secret is not None:
        return secret
    with db.write() as session:
        row = session.scalars(select(ApiKey).where(ApiKey.id == key_id).with_for_update()).one()
        if row.webhook_secret is None:  # another process may have made it since the read above
            row.webhook_secret = "whsec_" + secrets.token_urlsafe(32)
        return row.webhook_secret
