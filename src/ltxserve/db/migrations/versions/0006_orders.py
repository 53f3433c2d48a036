"""Each job's order: what a worker makes of the request, decided once at intake

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for jobs queued before: a worker refuses those (an order of no known version), unbilled.
    op.add_column('jobs', sa.Column('order', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('jobs', 'order')
