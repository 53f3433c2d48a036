"""The migrations build exactly the schema the code declares, and upgrade a live database in place."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from ltxserve.billing import keys
from ltxserve.db import Base, Database, Job, LedgerEntry, ServerSecret, utcnow
from ltxserve.db.database import MIGRATIONS
from ltxserve.jobs import JobStore

from .concurrency import at_once


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    database = Database(url)
    yield database
    database.dispose()


def upgrade(db: Database, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_the_migrated_schema_is_the_declared_one(db):
    db.migrate()
    db.migrate()  # a second run is a no-op
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_upgrading_keeps_jobs_keys_and_money_and_makes_one_signing_secret(db):
    upgrade(db, "0001")
    # Rows as 0001 knew them (the models' newer columns do not exist yet).
    with db.write() as session:
        session.execute(text(
            "INSERT INTO api_keys (id, name, key_hash, prefix, scopes, created_at) "
            "VALUES ('key_old', '', :hash, 'ltx_old', '[\"ltx-2-fast\"]', :now)"), {"hash": "0" * 64, "now": utcnow()})
        session.execute(text(
            "INSERT INTO jobs (id, key_id, model, status, request, price, created_at, attempts, result_key) "
            "VALUES ('old', 'key_old', 'ltx-2-fast', 'COMPLETED', '{\"prompt\": \"p\"}', 300000, :now, 1, "
            "'old.mp4')"), {"now": utcnow()})
        session.execute(LedgerEntry.__table__.insert().values(key_id="key_old", kind="grant", amount=2_000_000))
    db.migrate()
    store = JobStore(db)
    # The running balance starts from what the ledger sums to.
    assert store.records.get("old").result_key == "old.mp4" and keys.balance(store.db, "key_old") == 2_000_000
    with db.read() as session:
        assert session.execute(select(Job.cold, Job.cold_start_s).where(Job.id == "old")).one() == (False, None)
    assert keys.webhook_secret(db, "key_old").startswith("whsec_")
    with db.read() as session:
        secrets = session.scalars(select(ServerSecret.value)).all()
    assert len(secrets) == 1 and len(secrets[0]) == 64


@pytest.mark.timeout(60)
def test_processes_starting_together_migrate_once(db):
    """Servers and workers migrate at start-up, often at once (a race a crash test once lost)."""
    url = db.url.render_as_string(hide_password=False)
    errors = at_once(url, 4, Database.migrate)
    assert errors == []
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
