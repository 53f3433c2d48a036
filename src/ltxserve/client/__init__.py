"""A Python client for an ltxserve server (or any server speaking its API): `Client(base_url, api_key)`.

    from ltxserve.client import Client
    client = Client("http://127.0.0.1:8000", "ltx_...")
    clip = client.run(prompt="a red fox in fresh snow", duration=6, resolution="1080p")   # the sync call
    request = client.submit(prompt="waves on a pebble beach", duration=8)              # the async path
    record = request.wait(on_progress=print)
    request.download("clip.mp4")

`AsyncClient` offers the same calls for asyncio. It imports httpx only: no PyTorch, no server code.
"""

from .aio import AsyncClient, AsyncRequest
from .errors import ApiError
from .models import Event, Progress, Record, Status
from .sync import Client, Request

__all__ = ["ApiError", "AsyncClient", "AsyncRequest", "Client", "Event", "Progress", "Record", "Request", "Status"]
