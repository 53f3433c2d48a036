"""running balances, key priorities and round-robin claim order

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

import ltxserve.db.schema

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN: on SQLite a batch rebuild of api_keys would drop a table the ledger points at.
    op.add_column('api_keys', sa.Column('balance', sa.BigInteger(), server_default='0', nullable=False))
    op.add_column('api_keys', sa.Column('priority', sa.Integer(), server_default='0', nullable=False))
    op.add_column('api_keys', sa.Column('last_claimed_at', ltxserve.db.schema.UTCDateTime(timezone=True),
                                        nullable=True))
    # Each key's balance as its entries sum to now: grants and releases add, reserves take.
    op.execute(
        "UPDATE api_keys SET balance = COALESCE((SELECT SUM(CASE "
        "WHEN kind IN ('grant', 'release') THEN amount WHEN kind = 'reserve' THEN -amount ELSE 0 END) "
        "FROM ledger WHERE ledger.key_id = api_keys.id), 0)"
    )


def downgrade() -> None:
    op.drop_column('api_keys', 'last_claimed_at')
    op.drop_column('api_keys', 'priority')
    op.drop_column('api_keys', 'balance')
