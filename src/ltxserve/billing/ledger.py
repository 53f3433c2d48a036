"""The credits ledger: append-only entries, and each key's running balance moved with every one of them.

The entries are the audit log; `api_keys.balance` is what they sum to, kept in the same transaction so
that a balance is one indexed read instead of a sum over the key's whole history. `audit` recomputes the
sum, and the tests check that the two always agree.

Every function takes the caller's session so that money moves in the same transaction as the job
state it belongs to; none of them commits.
"""

from __future__ import annotations

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from ..db import ApiKey, LedgerEntry

GRANT, RESERVE, CAPTURE, RELEASE = "grant", "reserve", "capture", "release"

# What each kind of entry does to the spendable balance: a reserve holds the price (capture then spends
# what is held, release gives it back).
_SPENDABLE_DELTA = {GRANT: 1, RESERVE: -1, CAPTURE: 0, RELEASE: 1}
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


def balance(session: Session, key_id: str, *, lock: bool = False) -> int:
    """Spendable micro-dollars: grants, less what is held or spent. `lock` holds the key's row (PostgreSQL)
    until the transaction ends, so that a check and the entry that follows it cannot interleave."""
    query = select(ApiKey.balance).where(ApiKey.id == key_id)
    return session.scalar(query.with_for_update() if lock else query) or 0


def balances(session: Session) -> dict[str, int]:
    rows = session.execute(select(ApiKey.id, ApiKey.balance))
    return {key_id: balance for key_id, balance in rows}  # noqa: C416 (dict() would read a Row as a mapping)


def audit(session: Session) -> dict[str, int]:
    """Each key's balance summed from its entries: what `balances` must equal."""
    rows = session.execute(select(LedgerEntry.key_id, func.sum(_AVAILABLE)).group_by(LedgerEntry.key_id))
    return {key_id: int(total) for key_id, total in rows}


def held(session: Session, key_id: str) -> int:
    return session.scalars(select(func.coalesce(func.sum(_HELD), 0)).where(LedgerEntry.key_id == key_id)).one()


def captured_total(session: Session) -> int:
    query = select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.kind == CAPTURE)
    return session.scalars(query).one()


def _append(session: Session, key_id: str, kind: str, amount: int, job_id: str | None, note: str) -> None:
    if amount < 0:
        raise ValueError("ledger amounts are positive; the kind gives the direction")
    session.add(LedgerEntry(key_id=key_id, job_id=job_id, kind=kind, amount=amount, note=note))
    if _SPENDABLE_DELTA[kind]:
        session.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(balance=ApiKey.balance + _SPENDABLE_DELTA[kind] * amount)
        )


def grant(session: Session, key_id: str, amount: int, note: str = "") -> None:
    _append(session, key_id, GRANT, amount, None, note)


def reserve(session: Session, key_id: str, job_id: str, amount: int) -> None:
    _append(session, key_id, RESERVE, amount, job_id, "")


def capture(session: Session, key_id: str, job_id: str, amount: int) -> None:
    _append(session, key_id, CAPTURE, amount, job_id, "")


def release(session: Session, key_id: str, job_id: str, amount: int, note: str = "") -> None:
    _append(session, key_id, RELEASE, amount, job_id, note)
