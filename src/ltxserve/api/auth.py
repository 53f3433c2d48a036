"""API keys as the routes see them: looked up once, then kept for a few seconds, so that a client polling
every second costs no query to authenticate. A revoked key stops working within `ttl_s`; in the process
that revoked it, at once."""

from __future__ import annotations

import threading
import time

from ..billing.keys import KeyInfo, authenticate, hash_key
from ..db import Database


class KeyCache:
    def __init__(self, db: Database, ttl_s: float = 5.0, max_keys: int = 100_000) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.max_keys = max_keys
        self._keys: dict[str, tuple[KeyInfo, float]] = {}
        self._lock = threading.Lock()

    def cached(self, secret: str | None) -> KeyInfo | None:
        """The key, if it was authenticated within `ttl_s`: no query, no thread needed."""
        if not secret:
            return None
        with self._lock:
            found = self._keys.get(hash_key(secret))
        if found is None or time.monotonic() - found[1] > self.ttl_s:
            return None
        return found[0]

    def authenticate(self, secret: str | None) -> KeyInfo:
        """The key from the database (Unauthorized if missing, unknown or revoked), kept for next time."""
        key = authenticate(self.db, secret)
        with self._lock:
            if len(self._keys) >= self.max_keys:
                self._keys.clear()
            self._keys[hash_key(secret or "")] = (key, time.monotonic())
        return key

    def forget(self, key_id: str) -> None:
        """After a revocation here: the next request is checked against the database."""
        with self._lock:
            for digest in [digest for digest, (key, _) in self._keys.items() if key.id == key_id]:
                del self._keys[digest]
