"""The job store on both databases: every transition, and the money that moves with it."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
import sqlalchemy.exc
from sqlalchemy import select, text

from ltxserve.billing import keys, ledger
from ltxserve.db import Database, LedgerEntry, Webhook, utcnow
from ltxserve.errors import IdempotencyConflict, InsufficientCredits, RateLimited
from ltxserve.jobs import IMAGE, JobStatus, JobStore

PRICE = 300_000  # $0.30


@pytest.fixture
def store(db) -> JobStore:
    return JobStore(db, lease_s=30, max_attempts=2)


def submit(store: JobStore, key, job_id: str, *, price: int = PRICE, limit: int = 10, image: bytes | None = None,
           **delivery):
    return store.intake.submit(
        key, job_id=job_id, model="ltx-2-fast", request={"prompt": "p"}, order={"prompt": "p"}, price=price,
        media={IMAGE: image} if image is not None else None, concurrency_limit=limit, **delivery,
    )


def entries(db: Database, job_id: str) -> list[str]:
    with db.read() as session:
        query = select(LedgerEntry.kind).where(LedgerEntry.job_id == job_id).order_by(LedgerEntry.id)
        return list(session.scalars(query))


def test_a_success_is_reserved_then_captured_once(db, store):
    key = keys.create_key(db, credits=Decimal(1)).info
    submit(store, key, "j1", image=b"png")
    assert keys.balance(store.db, key.id) == 700_000
    claimed = store.queue.claim("w1")
    assert claimed.job.id == "j1" and claimed.media == {IMAGE: b"png"} and claimed.job.attempts == 1
    assert claimed.job.order == {"prompt": "p"}
    assert store.queue.report_progress("j1", "w1", "stage1", 1, 8)
    assert store.queue.complete("j1", "w1", "j1.mp4", {"seed": 1})
    assert not store.queue.complete("j1", "w1", "j1.mp4", {"seed": 1}), "a second completion must change nothing"
    assert not store.queue.fail("j1", "w1", "generation_failed", "late")
    assert entries(db, "j1") == ["reserve", "capture"]
    assert keys.balance(store.db, key.id) == 700_000
    with db.read() as session:
        assert ledger.held(session, key.id) == 0
    assert store.records.get("j1").status is JobStatus.COMPLETED
    assert store.records.captured_total() == PRICE


def test_a_failure_releases_the_price(db, store):
    key = keys.create_key(db, credits=Decimal(1)).info
    submit(store, key, "j1")
    store.queue.claim("w1")
    assert store.queue.fail("j1", "w1", "generation_failed", "boom")
    assert entries(db, "j1") == ["reserve", "release"]
    assert keys.balance(store.db, key.id) == 1_000_000
    assert store.records.get("j1").error_message == "boom"


def test_cancel_of_a_running_job_stops_its_worker_and_is_not_billed(db, store):
    key = keys.create_key(db, credits=Decimal(1)).info
    submit(store, key, "j1")
    store.queue.claim("w1")
    assert store.queue.cancel("j1", "timeout", "too slow").status is JobStatus.CANCELED
    assert not store.queue.report_progress("j1", "w1", "stage2", 1, 3), "the worker must learn it lost the job"
    assert not store.queue.heartbeat("j1", "w1")
    assert not store.queue.complete("j1", "w1", "j1.mp4", {})
    assert store.queue.cancel("j1", "timeout", "again").status is JobStatus.CANCELED
    assert entries(db, "j1") == ["reserve", "release"]
    assert keys.balance(store.db, key.id) == 1_000_000


def test_insufficient_credits_and_concurrency_are_refused_without_a_trace(db, store):
    key = keys.create_key(db, credits=Decimal("0.5")).info
    submit(store, key, "j1", limit=1)
    with pytest.raises(RateLimited) as limited:
        submit(store, key, "j2", limit=1)
    assert limited.value.retry_after_s >= 1
    with pytest.raises(InsufficientCredits, match=r"costs \$0.3 and the key has \$0.2 left"):
        submit(store, key, "j3", limit=5)
    assert store.records.get("j2") is None and store.records.get("j3") is None
    assert keys.balance(store.db, key.id) == 200_000


def test_an_expired_lease_requeues_then_fails_unbilled(db, store):
    store = JobStore(db, lease_s=0.05, max_attempts=2)
    key = keys.create_key(db, credits=Decimal(1)).info
    submit(store, key, "j1")
    store.queue.claim("dead-1")
    threading.Event().wait(0.1)
    assert store.queue.reap() == 1
    assert store.records.get("j1").status is JobStatus.QUEUED
    assert not store.queue.complete("j1", "dead-1", "x", {}), "the dead worker's late result must not count"
    store.queue.claim("dead-2")
    threading.Event().wait(0.1)
    store.queue.reap()
    job = store.records.get("j1")
    assert job.status is JobStatus.FAILED and job.error_code == "worker_lost" and job.attempts == 2
    assert entries(db, "j1") == ["reserve", "release"]
    assert keys.balance(store.db, key.id) == 1_000_000


def test_claims_go_oldest_first_and_never_twice(db, store):
    key = keys.create_key(db, credits=Decimal(10)).info
    for n in range(6):
        submit(store, key, f"j{n}")
    claimed: list[str] = []
    lock = threading.Lock()

    def claim_all(worker: str) -> None:
        while (job := store.queue.claim(worker)) is not None:
            with lock:
                claimed.append(job.job.id)

    threads = [threading.Thread(target=claim_all, args=(f"w{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == [f"j{n}" for n in range(6)]


def test_concurrent_submissions_never_overspend(db, store):
    key = keys.create_key(db, credits=Decimal(3)).info
    outcomes: list[str] = []

    def one(n: int) -> None:
        try:
            submit(store, key, f"j{n}", limit=100)
            outcomes.append("ok")
        except InsufficientCredits:
            outcomes.append("406")

    threads = [threading.Thread(target=one, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("ok") == 10 and outcomes.count("406") == 20
    assert keys.balance(store.db, key.id) == 0


def test_the_ledger_is_append_only_in_the_database(db):
    key = keys.create_key(db, credits=Decimal(1)).info
    for statement in ("UPDATE ledger SET amount = 1", "DELETE FROM ledger"):
        with pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only"), db.write() as session:
            session.execute(text(statement))
    assert keys.balance(db, key.id) == 1_000_000


def test_live_workers_are_those_heard_from_within_a_lease(db):
    store = JobStore(db, lease_s=0.1)
    assert store.workers.live() == 0
    store.workers.register("w1", host="h", pid=1, model="tiny")
    assert store.workers.live() == 1
    threading.Event().wait(0.15)
    assert store.workers.live() == 0
    store.workers.heartbeat("w1")
    assert store.workers.live() == 1
    store.workers.unregister("w1")
    assert store.workers.live() == 0


def test_every_change_is_an_event_in_order_and_the_end_queues_its_webhook(db, store):
    key = keys.create_key(db, credits=Decimal(1)).info
    submit(store, key, "j1", webhook_url="http://hooks.example/1")
    submit(store, key, "j2")
    assert store.queue.positions()["j2"] == 2
    store.queue.claim("w1")
    assert store.queue.positions()["j2"] == 1
    assert store.queue.report_progress("j1", "w1", "stage1", 4, 8, 14.5)
    store.queue.complete("j1", "w1", "j1.mp4", {"seed": 1})
    events = store.events.after("j1", 0)
    assert [event.data for event in events] == [
        {"status": "QUEUED"},
        {"status": "PROCESSING"},
        {"status": "PROCESSING", "progress": {"stage": "stage1", "step": 4, "total": 8, "percent": 14.5}},
        {"status": "COMPLETED"},
    ]
    assert [event.finished for event in events] == [False, False, False, True]
    assert store.events.after("j1", events[1].id) == events[2:]
    store.queue.cancel("j2", "canceled", "by the client")
    assert store.events.after("j2", 0)[-1].data == {"status": "CANCELED", "error": "by the client"}
    with db.read() as session:
        outbox = session.scalars(select(Webhook)).all()
    assert [(row.job_id, row.url, row.status) for row in outbox] == [("j1", "http://hooks.example/1", "pending")]


def test_an_idempotency_key_makes_one_job_and_one_charge(db, store):
    key = keys.create_key(db, credits=Decimal(1)).info
    first = submit(store, key, "j1", idempotency_key="k", request_hash="h1")
    again = submit(store, key, "j2", idempotency_key="k", request_hash="h1")
    assert again.id == first.id == "j1" and store.records.get("j2") is None
    assert store.intake.replay(key.id, "k", "h1").id == "j1" and store.intake.replay(key.id, "other", "h1") is None
    with pytest.raises(IdempotencyConflict, match="different body"):
        submit(store, key, "j3", idempotency_key="k", request_hash="h2")
    with pytest.raises(IdempotencyConflict):
        store.intake.replay(key.id, "k", "h2")
    assert entries(db, "j1") == ["reserve"] and keys.balance(store.db, key.id) == 700_000
    other = keys.create_key(db, credits=Decimal(1)).info
    assert submit(store, other, "j4", idempotency_key="k", request_hash="h1").id == "j4"


def test_concurrent_retries_with_one_idempotency_key_make_one_job(db, store):
    key = keys.create_key(db, credits=Decimal(10)).info
    made: list[str] = []

    def one(n: int) -> None:
        made.append(submit(store, key, f"j{n}", idempotency_key="same", request_hash="h").id)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 8 and len(set(made)) == 1
    assert keys.balance(store.db, key.id) == 10_000_000 - PRICE


def test_only_stored_results_past_the_cut_off_expire(db, store):
    key = keys.create_key(db, credits=Decimal(1)).info
    for job_id in ("j1", "j2"):
        submit(store, key, job_id)
        store.queue.claim("w1")
    store.queue.complete("j1", "w1", "j1.mp4", {})
    store.queue.fail("j2", "w1", "generation_failed", "boom")
    assert store.records.expirable(store.records.get("j1").finished_at) == []
    assert store.records.expirable(utcnow()) == [("j1", "j1.mp4")]
    store.records.mark_expired("j1")
    job = store.records.get("j1")
    assert job.result_key is None and job.result_expired_at is not None and job.status is JobStatus.COMPLETED
    assert store.records.expirable(utcnow()) == []
    assert entries(db, "j1") == ["reserve", "capture"], "deleting a delivered clip moves no money"


def test_a_job_queued_anywhere_wakes_listening_workers_at_once(db, store):
    woken, stop = threading.Event(), threading.Event()
    listener = JobStore(Database(db.url.render_as_string(hide_password=False)))
    try:
        if db.is_sqlite:
            assert not listener.notices.listen_for_jobs(woken.set, stop), "SQLite has no NOTIFY: workers poll"
            return
        assert listener.notices.listen_for_jobs(woken.set, stop)
        key = keys.create_key(db, credits=Decimal(10)).info
        # The listener connects on its own thread: submit until it hears one, within a bound.
        for n in range(20):
            submit(store, key, f"j{n}", limit=100)
            if woken.wait(0.25):
                break
        assert woken.is_set()
        woken.clear()
        submit(store, key, "late", limit=100)
        assert woken.wait(1.0), "a listening worker hears of a new job within a second, not at its next poll"
    finally:
        stop.set()
        listener.db.dispose()


def test_swept_records_are_gone_and_their_ledger_entries_stay(db, store):
    from datetime import timedelta

    from ltxserve.db import Job, JobEvent, WorkerRow

    key = keys.create_key(db, credits=Decimal(1)).info
    submit(store, key, "old", webhook_url="https://example.com/hook")
    store.queue.claim("w1")
    store.queue.complete("old", "w1", "old.mp4", {"seed": 1})
    submit(store, key, "young")
    store.workers.register("gone", host="h", pid=1, model="tiny")
    balance = keys.balance(store.db, key.id)

    later = utcnow() + timedelta(seconds=1)
    swept = store.records.sweepable(later)
    assert swept == [("old", "old.mp4")], "only requests that ended are swept; a queued one stays"
    store.records.sweep([job_id for job_id, _ in swept], workers_seen_before=later)

    assert store.records.get("old") is None and store.records.get("young") is not None
    with db.read() as session:
        assert session.scalars(select(JobEvent).where(JobEvent.job_id == "old")).all() == []
        assert session.scalars(select(Webhook)).all() == []
        assert session.scalars(select(WorkerRow)).all() == []
        assert session.get(Job, "young").status == "QUEUED"
    assert entries(db, "old") == ["reserve", "capture"]
    assert keys.balance(store.db, key.id) == balance


def _drain(store: JobStore) -> list[str]:
    """Claim every queued job, finishing each before the next, as one worker would; the order taken."""
    order = []
    while (claimed := store.queue.claim("w1")) is not None:
        order.append(claimed.job.id)
        store.queue.complete(claimed.job.id, "w1", f"{claimed.job.id}.mp4", {"seed": 1})
    return order


def test_a_key_that_floods_the_queue_does_not_hold_up_the_others(db, store):
    """Claims take turns across keys (the one served longest ago first), oldest first within a key."""
    flood = keys.create_key(db, credits=Decimal(100)).info
    one = keys.create_key(db, credits=Decimal(100)).info
    late = keys.create_key(db, credits=Decimal(100)).info
    for number in range(20):
        submit(store, flood, f"flood{number:02d}", limit=100)
    submit(store, one, "one")
    first = store.queue.claim("w1").job.id
    submit(store, late, "late")  # arrives after the flood was first served
    store.queue.complete(first, "w1", "x.mp4", {})
    order = [first, *_drain(store)]
    assert order[:4] == ["flood00", "one", "late", "flood01"]
    assert order[4:] == [f"flood{number:02d}" for number in range(2, 20)]


def test_a_keys_priority_comes_before_turns(db, store):
    plain = keys.create_key(db, credits=Decimal(100)).info
    urgent = keys.create_key(db, credits=Decimal(100), priority=5).info
    low = keys.create_key(db, credits=Decimal(100), priority=-1).info
    submit(store, low, "low")
    for number in range(3):
        submit(store, plain, f"plain{number}", limit=10)
    submit(store, urgent, "urgent0", limit=10)
    submit(store, urgent, "urgent1", limit=10)
    assert _drain(store) == ["urgent0", "urgent1", "plain0", "plain1", "plain2", "low"]


def test_queue_positions_are_the_turns_claims_then_take(db, store):
    """`queue_position` replays the claim rule over the queue as it stands, so it comes true."""
    a, b, c = (keys.create_key(db, credits=Decimal(100), priority=p).info for p in (0, 0, 1))
    served_before = keys.create_key(db, credits=Decimal(100)).info
    submit(store, served_before, "s0", limit=10)
    store.queue.complete(store.queue.claim("w1").job.id, "w1", "s0.mp4", {})
    for number in range(4):
        submit(store, a, f"a{number}", limit=10)
    submit(store, served_before, "s1", limit=10)
    for number in range(2):
        submit(store, b, f"b{number}", limit=10)
    submit(store, c, "c0", limit=10)
    positions = store.queue.positions()
    predicted = sorted(positions, key=positions.get)
    assert predicted[0] == "c0" and sorted(positions.values()) == list(range(1, 9))
    assert _drain(store) == predicted
    assert store.queue.positions() == {}


def test_running_balances_always_equal_what_the_ledger_sums_to(db, store):
    """The balance each key carries moves with every entry; the append-only ledger stays the audit log."""
    first = keys.create_key(db, credits=Decimal("3.5")).info
    second = keys.create_key(db).info
    keys.add_credits(db, second.id, Decimal("1.25"))

    def agree() -> None:
        with db.read() as session:
            carried, summed = ledger.balances(session), ledger.audit(session)
        assert {key: carried.get(key, 0) for key in summed} == summed and set(carried) >= set(summed)

    for job_id, key in (("j1", first), ("j2", first), ("j3", second), ("j4", second)):
        submit(store, key, job_id)
    agree()
    store.queue.complete(store.queue.claim("w1").job.id, "w1", "done.mp4", {})
    store.queue.fail(store.queue.claim("w1").job.id, "w1", "generation_failed", "no")
    queued = [job_id for job_id in ("j1", "j2", "j3", "j4") if store.records.get(job_id).status == "QUEUED"]
    store.queue.cancel(queued[0], "canceled", "by the client")
    lost = JobStore(db, lease_s=0.0, max_attempts=1)
    lost.queue.claim("w2")
    lost.queue.reap()
    agree()
    assert {store.records.get(job_id).status for job_id in ("j1", "j2", "j3", "j4")} == {
        "COMPLETED", "FAILED", "CANCELED"}
    # Only the completed clip was paid for.
    assert keys.balance(db, first.id) + keys.balance(db, second.id) == 3_500_000 + 1_250_000 - PRICE
