"""A GPU worker fleet on Ray Serve: Ray decides where and how many workers run; the job store stays the one
queue. Each replica runs the same worker loop as `ltxserve worker`, and a custom autoscaling policy sizes
the fleet from the job store's queue.

    options   what `ltxserve fleet deploy` is given, and what reaches the replicas
    policy    the autoscaling policy (runs in Ray Serve's controller)
    replica   the deployment: one worker per replica
    deploy    deploy, inspect and remove the application (the CLI's side)

Importing this package does not import Ray; `policy`, `replica` and `deploy` do, and need
`pip install 'ltxserve[ray]'`.
"""

APP_NAME = "ltxserve-fleet"
DEPLOYMENT_NAME = "worker"
