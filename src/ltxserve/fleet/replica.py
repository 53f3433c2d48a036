"""The fleet's Ray Serve deployment: each replica loads the model once and runs the worker loop of
`ltxserve worker` in a thread, claiming from the job store under leases. No request passes through Ray.

Stopping (scale-down, a drained node, `ltxserve fleet down`): Serve calls `__del__`, which stops claiming
and waits for the job in hand up to the deployment's graceful-shutdown period; past it Ray kills the
replica and the job's lease returns it to the queue. A replica on a node being drained stops claiming at
once, before Serve gets to stop it.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import ray
import ray._private.state

from ..config import Settings
from ..db import STORE_ERRORS
from ..roots.store import open_store
from ..roots.worker import build_worker, load_engine
from ..workers import WorkerIdentity

log = logging.getLogger("ray.serve")

DRAIN_CHECK_S = 1.0


class FleetWorker:
    def __init__(self, fleet: str, settings: dict, environment: dict[str, str], grace_period_s: float) -> None:
        os.environ.update(environment)
        self.settings = Settings(**settings)
        self.grace_period_s = grace_period_s
        self.store = open_store(self.settings)
        started = time.perf_counter()
        engine = load_engine(self.settings)
        self.load_seconds = time.perf_counter() - started
        self.node_id = ray.get_runtime_context().get_node_id()
        identity = WorkerIdentity.local(prefix=f"ray-{self.node_id[:12]}", host=ray.util.get_node_ip_address(),
                                        fleet=fleet)
        self.draining = False
        self.worker = build_worker(self.settings, self.store, engine, identity=identity,
                                   may_claim=lambda: not self.draining)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.worker.run, args=(self._stop,), name="ltxserve-worker", daemon=True)
        self._thread.start()
        threading.Thread(target=self._watch_drain, name="ltxserve-drain-watch", daemon=True).start()
        log.info("ltxserve worker %s ready (model loaded in %.1f s)", self.worker.id, self.load_seconds)

    def _watch_drain(self) -> None:
        """Ask Ray once a second whether this node drains (a preemption notice, `ray drain-node`, an
        autoscaler taking it): the worker then claims nothing new, and the job store says so at once, even
        while the worker is busy with a job, so that the fleet's policy starts a replica elsewhere for the
        queue. On a thread of its own, so that a claim never waits for Ray."""
        recorded = False
        while not self._stop.wait(DRAIN_CHECK_S):
            try:
                self.draining = self.node_id in ray._private.state.state.get_draining_nodes()
            except Exception:
                log.exception("could not ask Ray whether this node drains")
                continue
            if self.draining != recorded:
                try:
                    if not self.store.workers.set_draining(self.worker.id, self.draining):
                        continue  # not registered yet: next time
                except STORE_ERRORS:
                    continue  # the worker loop reports the outage; try again next time
                recorded = self.draining
                if self.draining:
                    log.warning("ltxserve worker %s: this node is draining; taking no new jobs", self.worker.id)

    def check_health(self) -> None:
        if not self._thread.is_alive():
            raise RuntimeError(f"ltxserve worker {self.worker.id}: the worker loop stopped")

    def __del__(self) -> None:
        self._stop.set()
        self.worker.wake()
        self._thread.join(self.grace_period_s)
        self.store.db.dispose()
