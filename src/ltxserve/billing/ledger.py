"""The credits ledger: append-only entries, balances derived by summing them.

Every function takes the caller's session so that money moves in the same transaction as the job
state it belongs to; none of them commits.
"""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..db import LedgerEntry

GRANT, RESERVE, CAPTURE, RELEASE = "grant", "reserve", "capture", "release"

# What each kind of entry does to the spendable balance and to the amount held for running jobs.
_AVAILABLE = case(
    (LedgerEntry.kind.in_((GRANT, RELEASE)), LedgerEntry.amount),
    (LedgerEntry.kind == RESERVE, -LedgerEntry.amount),
    else_=0,
)
_HELD = case(
    (LedgerEntry.kind == RESERVE, LedgerEntry.amount),
    (LedgerEntry.kind.in_((CAPTURE, RELEASE)), -LedgerEntry.amount),
    else_=0,
)


def balance(session: Session, key_id: str) -> int:
    """Spendable micro-dollars: grants, less what is held or spent."""
    return session.scalar(select(func.coalesce(func.sum(_AVAILABLE), 0)).where(LedgerEntry.key_id == key_id))


def balances(session: Session) -> dict[str, int]:
    rows = session.execute(select(LedgerEntry.key_id, func.sum(_AVAILABLE)).group_by(LedgerEntry.key_id))
    return {key_id: int(total) for key_id, total in rows}


def held(session: Session, key_id: str) -> int:
    return session.scalar(select(func.coalesce(func.sum(_HELD), 0)).where(LedgerEntry.key_id == key_id))


def captured_total(session: Session) -> int:
    return session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.kind == CAPTURE))


def _append(session: Session, key_id: str, kind: str, amount: int, job_id: str | None, note: str) -> None:
    if amount < 0:
        raise ValueError("ledger amounts are positive; the kind gives the direction")
    session.add(LedgerEntry(key_id=key_id, job_id=job_id, kind=kind, amount=amount, note=note))


def grant(session: Session, key_id: str, amount: int, note: str = "") -> None:
    _append(session, key_id, GRANT, amount, None, note)


def reserve(session: Session, key_id: str, job_id: str, amount: int) -> None:
    _append(session, key_id, RESERVE, amount, job_id, "")


def capture(session: Session, key_id: str, job_id: str, amount: int) -> None:
    _append(session, key_id, CAPTURE, amount, job_id, "")


def release(session: Session, key_id: str, job_id: str, amount: int, note: str = "") -> None:
    _append(session, key_id, RELEASE, amount, job_id, note)
