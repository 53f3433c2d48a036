"""Ray Serve fleets: their bounds and reports, the fleet of each worker, cold starts of requests

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

import ltxserve.db.schema

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'fleets',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('min_replicas', sa.Integer(), nullable=False),
        sa.Column('max_replicas', sa.Integer(), nullable=False),
        sa.Column('jobs_per_replica', sa.Integer(), nullable=False),
        sa.Column('deployed_at', ltxserve.db.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column('target', sa.Integer(), nullable=False),
        sa.Column('replicas', sa.Integer(), nullable=False),
        sa.Column('reported_at', ltxserve.db.schema.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('name'),
    )
    # Plain ADD COLUMN: SQLite adds these in place, without rebuilding a table others point at.
    op.add_column('workers', sa.Column('fleet', sa.String(length=64), nullable=True))
    op.add_column('workers', sa.Column('draining', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('jobs', sa.Column('cold', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('jobs', sa.Column('cold_start_s', sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column('jobs', 'cold_start_s')
    op.drop_column('jobs', 'cold')
    op.drop_column('workers', 'draining')
    op.drop_column('workers', 'fleet')
    op.drop_table('fleets')
