"""Deploying, inspecting and removing the fleet's Ray Serve application (`ltxserve fleet ...`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import ray
from ray import serve
from ray.serve.config import AutoscalingConfig, AutoscalingPolicy, ProxyLocation

from ..jobs import JobStore
from . import DEPLOYMENT_NAME
from .options import FleetOptions, replica_environment
from .policy import publish_database
from .replica import FleetWorker

# Serve's own control loop reports replica health this often; the worker loop itself heartbeats to the
# job store, whose lease is what takes a job back from a replica that is gone.
HEALTH_CHECK_PERIOD_S = 10.0


def connect(address: str) -> None:
    if not ray.is_initialized():
        ray.init(address=address, namespace="ltxserve", log_to_driver=False, logging_level=logging.WARNING)


def deploy(store: JobStore, options: FleetOptions, values: dict) -> None:
    """Create or update the fleet, its replicas given `values` (`options.replica_settings`). Its row in the
    job store comes first, so that the API servers accept requests for it while Ray starts it; Serve then
    sizes it from the queue."""
    store.fleets.deploy(options.name, min_replicas=options.min_replicas, max_replicas=options.max_replicas,
                        jobs_per_replica=options.jobs_per_replica)
    publish_database(options.name, values["database_url"])
    serve.start(proxy_location=ProxyLocation.Disabled)
    autoscaling = AutoscalingConfig(
        min_replicas=options.min_replicas,
        max_replicas=options.max_replicas,
        initial_replicas=options.min_replicas,
        upscale_delay_s=options.upscale_delay_s,
        downscale_delay_s=options.downscale_delay_s,
        policy=AutoscalingPolicy(
            policy_function="ltxserve.fleet.policy:QueuePolicy",
            policy_kwargs={"fleet": options.name, "jobs_per_replica": options.jobs_per_replica},
        ),
    )
    deployment = serve.deployment(
        name=DEPLOYMENT_NAME,
        ray_actor_options={"num_gpus": options.gpus_per_replica, "num_cpus": options.cpus_per_replica},
        autoscaling_config=autoscaling,
        max_ongoing_requests=1,
        graceful_shutdown_timeout_s=options.grace_period_s,
        graceful_shutdown_wait_loop_s=0.5,
        health_check_period_s=HEALTH_CHECK_PERIOD_S,
    )(FleetWorker)
    app = deployment.bind(options.name, values, replica_environment(), options.grace_period_s)
    serve.run(app, name=options.name, route_prefix=None)


@dataclass(frozen=True)
class RayView:
    """The fleet as Ray Serve reports it."""

    status: str  # the application's: DEPLOYING, RUNNING, DEPLOY_FAILED, ... or NOT_DEPLOYED
    replica_states: dict[str, int]
    message: str


def ray_view(name: str) -> RayView:
    application = serve.status().applications.get(name)
    if application is None:
        return RayView("NOT_DEPLOYED", {}, "")
    deployment = application.deployments.get(DEPLOYMENT_NAME)
    states = {state.value: count for state, count in (deployment.replica_states if deployment else {}).items()}
    message = application.message or (deployment.message if deployment else "")
    return RayView(application.status.value, states, message)


def down(store: JobStore, name: str) -> None:
    """Remove the application (its replicas finish their jobs within the grace period) and its row."""
    store.fleets.remove(name)
    serve.delete(name)
