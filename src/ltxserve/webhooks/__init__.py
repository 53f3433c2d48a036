from .dispatcher import RetryPolicy, WebhookDispatcher
from .signing import HEADER, InvalidSignature, sign, verify

__all__ = ["HEADER", "InvalidSignature", "RetryPolicy", "WebhookDispatcher", "sign", "verify"]
