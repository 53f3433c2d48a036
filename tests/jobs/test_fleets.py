"""What the fleet's autoscaling reads from the job store, on both databases: demand, draining workers, fleet
reports, and cold starts."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest

from ltxserve.billing import keys
from ltxserve.db import utcnow
from ltxserve.fleet.policy import replicas_for
from ltxserve.jobs import JobStore
from ltxserve.jobs.queue import Demand
from ltxserve.jobs.registry import Draining
from tests.jobs.test_store import submit


@pytest.fixture
def store(db):
    return JobStore(db, lease_s=30, max_attempts=3)


@pytest.fixture
def key(store):
    return keys.create_key(store.db, credits=Decimal(10), scopes=["ltx-2-fast"]).info


def test_demand_counts_queued_running_and_lapsed_jobs(store, key):
    assert store.queue.demand() == Demand(queued=0, running=0, lapsed=0, oldest_queued_s=None)
    for n in range(4):
        submit(store, key, f"job-{n}")
    store.queue.claim("w1")
    JobStore(store.db, lease_s=0.2).queue.claim("w2")
    # w2 dies: its lease runs out, and until a reaper queues its job again that job still needs a worker.
    threading.Event().wait(0.3)
    demand = store.queue.demand()
    assert (demand.queued, demand.running, demand.lapsed, demand.jobs) == (2, 1, 1, 4)
    assert 0.3 <= demand.oldest_queued_s < 5
    store.queue.reap()
    assert (store.queue.demand().queued, store.queue.demand().running) == (3, 1)


def test_draining_workers_and_the_jobs_they_hold(store, key):
    for n in range(2):
        submit(store, key, f"job-{n}")
    for worker in ("w1", "w2", "w3"):
        store.workers.register(worker, host="h", pid=1, model="tiny", fleet="f")
    store.queue.claim("w1")
    assert store.workers.draining("f") == Draining(0, 0)
    store.workers.set_draining("w1", True)
    store.workers.set_draining("w2", True)
    assert store.workers.draining("f") == Draining(2, 1)
    assert store.workers.draining("another") == Draining(0, 0)
    store.workers.set_draining("w2", False)
    assert store.workers.draining() == Draining(1, 1)


@pytest.mark.parametrize(
    ("jobs", "draining", "per_replica", "replicas"),
    [
        ((0, 0, 0), (0, 0), 1, 0),
        ((3, 0, 0), (0, 0), 1, 3),
        ((1, 1, 1), (0, 0), 2, 2),
        # A draining replica holding a job is kept for it; the queued job needs another replica.
        ((1, 1, 0), (1, 1), 1, 2),
        # An idle draining replica takes no new job either: the queued one needs a replica of its own.
        ((1, 0, 0), (1, 0), 1, 2),
    ],
)
def test_replicas_cover_the_demand_beside_draining_ones(jobs, draining, per_replica, replicas):
    demand = Demand(*jobs, oldest_queued_s=None)
    assert replicas_for(demand, Draining(*draining), per_replica) == replicas


def test_a_fleet_is_reporting_while_its_policy_reports(store):
    assert store.fleets.all() == [] and not store.fleets.any_reporting()
    store.fleets.deploy("f", min_replicas=0, max_replicas=4, jobs_per_replica=1)
    assert not store.fleets.any_reporting()  # deployed, but Ray has not run the policy yet
    store.fleets.report("f", target=2, replicas=2)
    fleet = store.fleets.get("f")
    assert (fleet.target, fleet.replicas) == (2, 2) and store.fleets.any_reporting()
    assert not fleet.reporting(store.fleets.REPORT_WITHIN_S, now=utcnow() + timedelta(seconds=31))
    # Redeployed with new bounds, it keeps its last report: requests are not refused while Serve swaps policies.
    store.fleets.deploy("f", min_replicas=0, max_replicas=4, jobs_per_replica=1)
    assert store.fleets.any_reporting() and store.fleets.get("f").target == 2
    store.workers.register("w1", host="h", pid=1, model="tiny", fleet="f")
    assert store.fleets.summaries(store.workers)[0] | {"reported_at": None} == {
        "name": "f", "reporting": True, "reported_at": None, "target": 2, "running": 1, "starting": 1,
        "draining": 0, "min_replicas": 0, "max_replicas": 4, "jobs_per_replica": 1,
    }
    store.fleets.remove("f")
    assert store.fleets.get("f") is None


def test_a_cold_start_is_measured_at_the_first_claim_only(store, key):
    submit(store, key, "warm")
    submit(store, key, "cold", cold=True)
    store.queue.claim("w1")
    store.queue.claim("w1")
    store.queue.reap(utcnow() + timedelta(seconds=31))  # w1 died: the cold job runs again, later
    store.queue.claim("w2")
    within, count, total = store.records.cold_starts((0.5, 60.0))
    assert count == 1 and within == [1, 1] and 0 <= total < 0.5
