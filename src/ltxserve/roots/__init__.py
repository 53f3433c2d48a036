"""One composition root per kind of process: each builds, from Settings, the database, job store, storage
and (for workers) engine that its process runs, so no other module wires them together.

    store.py    the job store every process opens
    server.py   the API server (`ltxserve serve`, `ltxserve demo`), with its embedded worker process
    worker.py   a worker process (`ltxserve worker`), the embedded one a server supervises, a Ray replica
"""
