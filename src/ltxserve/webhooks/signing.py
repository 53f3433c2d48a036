"""How webhook deliveries are signed, and how a receiver checks them.

Each delivery carries the header

    ltxserve-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" under the key's webhook secret>

The timestamp is inside the signed text, so a captured delivery cannot be replayed later with a fresh
time; a receiver refuses signatures older than a few minutes. The secret is per API key:
`GET /v2/webhook-secret` shows it to that key's holder.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "ltxserve-signature"
DEFAULT_TOLERANCE_S = 300


class InvalidSignature(Exception):
    pass


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for `body`, signed now (or at `timestamp`)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: float = DEFAULT_TOLERANCE_S,
           now: float | None = None) -> int:
    """Check a delivery as a receiver should; returns its timestamp or raises InvalidSignature."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
        given = fields["v1"]
    except (KeyError, ValueError):
        raise InvalidSignature("the header must be t=<unix seconds>,v1=<hex>") from None
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        raise InvalidSignature("the signature's timestamp is too far from now")
    if not hmac.compare_digest(given, _mac(secret, timestamp, body)):
        raise InvalidSignature("the signature does not match the body")
    return timestamp
