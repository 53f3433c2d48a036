"""record retention: the ledger no longer points at job rows, so records can be swept and the ledger kept

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# SQLite's constraint is unnamed: batch mode names it by this convention to drop it.
_SQLITE_FK = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
_SQLITE_TRIGGERS = ("UPDATE", "DELETE")


def _ledger_job_fk(bind) -> str:
    for fk in sa.inspect(bind).get_foreign_keys("ledger"):
        if fk["constrained_columns"] == ["job_id"]:
            return fk["name"]
    raise RuntimeError("ledger.job_id has no foreign key to drop")


def upgrade() -> None:
    # The ledger keeps naming each request it charged (job_id) after the request's record is swept.
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(_ledger_job_fk(bind), "ledger", type_="foreignkey")
        return
    # SQLite rebuilds the table to drop a constraint; its append-only triggers go with the old table.
    for action in _SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER ledger_no_{action.lower()}")
    with op.batch_alter_table("ledger", recreate="always", naming_convention=_SQLITE_FK) as batch_op:
        batch_op.drop_constraint("fk_ledger_job_id_jobs", type_="foreignkey")
    for action in _SQLITE_TRIGGERS:
        op.execute(
            f"CREATE TRIGGER ledger_no_{action.lower()} BEFORE {action} ON ledger "
            "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END"
        )


def downgrade() -> None:
    raise NotImplementedError("swept records cannot be brought back for the ledger to point at")
