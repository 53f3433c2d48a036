"""async requests: idempotency, progress, the event log, webhooks, result expiry, server secrets

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import secrets

import sqlalchemy as sa
from alembic import op

import ltxserve.db.schema

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

UTC_DATETIME = ltxserve.db.schema.UTCDateTime(timezone=True)


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN and CREATE INDEX only: on SQLite a batch rebuild of `jobs` would drop
    # and re-create a table that the ledger and job inputs point at.
    for column in (
        sa.Column('progress_percent', sa.Float(), nullable=True),
        sa.Column('result_expired_at', UTC_DATETIME, nullable=True),
        sa.Column('idempotency_key', sa.String(length=255), nullable=True),
        sa.Column('request_hash', sa.String(length=64), nullable=True),
        sa.Column('webhook_url', sa.Text(), nullable=True),
        sa.Column('base_url', sa.String(length=255), nullable=True),
    ):
        op.add_column('jobs', column)
    op.create_index('uq_jobs_key_idempotency', 'jobs', ['key_id', 'idempotency_key'], unique=True)
    op.add_column('api_keys', sa.Column('webhook_secret', sa.String(length=64), nullable=True))

    op.create_table('job_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', UTC_DATETIME, nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_job_events_job_id', 'job_events', ['job_id'], unique=False)

    op.create_table('webhooks',
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', UTC_DATETIME, nullable=False),
    sa.Column('next_attempt_at', UTC_DATETIME, nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id')
    )
    op.create_index('ix_webhooks_status_next', 'webhooks', ['status', 'next_attempt_at'], unique=False)

    op.create_table('webhook_attempts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('at', UTC_DATETIME, nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_webhook_attempts_job_id', 'webhook_attempts', ['job_id'], unique=False)

    secrets_table = op.create_table('server_secrets',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    # Made here, once per database, so that every server process sharing it signs alike.
    op.bulk_insert(secrets_table, [{'name': 'output_url', 'value': secrets.token_hex(32)}])


def downgrade() -> None:
    op.drop_table('server_secrets')
    op.drop_index('ix_webhook_attempts_job_id', table_name='webhook_attempts')
    op.drop_table('webhook_attempts')
    op.drop_index('ix_webhooks_status_next', table_name='webhooks')
    op.drop_table('webhooks')
    op.drop_index('ix_job_events_job_id', table_name='job_events')
    op.drop_table('job_events')
    op.drop_index('uq_jobs_key_idempotency', table_name='jobs')
    with op.batch_alter_table('api_keys') as batch_op:
        batch_op.drop_column('webhook_secret')
    with op.batch_alter_table('jobs') as batch_op:
        for name in ('base_url', 'webhook_url', 'request_hash', 'idempotency_key', 'result_expired_at',
                     'progress_percent'):
            batch_op.drop_column(name)
