"""The fleet's autoscaling policy, a Ray Serve custom policy: replicas to cover the job store's demand.

Serve calls it on its controller's event loop several times a second, so it never queries there: a thread
reads the demand once a second and whenever a job is queued, and the call returns what it last read. The
same thread reports back to the job store what Ray has (target and replicas), which is how the API servers
learn that the fleet is alive.
Serve applies min/max, the delays (none from zero replicas) and the one-step scale-down itself.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from typing import Any

from ray.experimental.internal_kv import _internal_kv_get, _internal_kv_put

from ..db import STORE_ERRORS, Database
from ..jobs import JobStore
from ..jobs.queue import Demand
from ..jobs.registry import Draining

log = logging.getLogger("ray.serve")

POLL_S = 1.0


def database_key(fleet: str) -> str:
    # The database URL may hold a password: it travels in Ray's cluster store, not in the policy's
    # arguments, which Serve's controller writes to its log.
    return f"ltxserve:fleet:{fleet}:database_url"


def publish_database(fleet: str, url: str) -> None:
    _internal_kv_put(database_key(fleet), url.encode(), overwrite=True, namespace="ltxserve")


def replicas_for(demand: Demand, draining: Draining, jobs_per_replica: int) -> int:
    """Enough replicas for every job that needs a worker: queued, running, and running under a lapsed
    lease (its replica is gone; the job will be queued again and needs one). Replicas on draining nodes
    take no new job: they are kept for the jobs they hold, and the rest of the work needs others."""
    return draining.workers + math.ceil((demand.jobs - draining.jobs) / jobs_per_replica)


class QueuePolicy:
    def __init__(self, fleet: str, jobs_per_replica: int = 1) -> None:
        self.fleet = fleet
        self.jobs_per_replica = jobs_per_replica
        self.demand: tuple[Demand, Draining] | None = None
        self.seen = (0, 0)  # (target, replicas) as Serve last told us
        self.wake = threading.Event()  # a job was queued, or Serve's replicas changed: read and report now
        threading.Thread(target=_watch, args=(weakref.ref(self),), name=f"ltxserve-{fleet}-policy",
                         daemon=True).start()

    def __call__(self, ctx: Any) -> tuple[int, dict]:
        seen = (ctx.target_num_replicas, ctx.current_num_replicas)
        if seen != self.seen:
            self.seen = seen
            self.wake.set()
        if self.demand is None:  # the job store has not answered yet: change nothing
            return ctx.target_num_replicas, {}
        return replicas_for(*self.demand, self.jobs_per_replica), {}


def _watch(policy_ref: weakref.ref[QueuePolicy]) -> None:
    """Poll the job store while the policy exists (Serve makes a new one when the fleet is redeployed), and at
    once when a job is queued anywhere (PostgreSQL's NOTIFY), so that a fleet at zero starts a replica
    without waiting for the next poll."""
    store: JobStore | None = None
    stop = threading.Event()
    problem: str | None = None
    while (policy := policy_ref()) is not None:
        try:
            if store is None:
                url = _internal_kv_get(database_key(policy.fleet), namespace="ltxserve")
                if url is None:
                    raise LookupError(f"no database published for fleet {policy.fleet!r}")
                store = JobStore(Database(url.decode()))
                store.notices.listen_for_jobs(policy.wake.set, stop)
            policy.demand = (store.queue.demand(), store.workers.draining(policy.fleet))
            target, replicas = policy.seen
            store.fleets.report(policy.fleet, target=target, replicas=replicas)
            problem = None
        except (*STORE_ERRORS, LookupError) as exc:
            # Keep the last demand: scaling down because the database blinked would stop running jobs.
            if str(exc) != problem:
                log.warning("ltxserve fleet %s: the job store does not answer: %s", policy.fleet, exc)
                problem = str(exc)
        wake = policy.wake
        del policy  # no strong reference while waiting, so the policy can be collected
        wake.wait(POLL_S)
        wake.clear()
    stop.set()
    if store is not None:
        store.db.dispose()
