"""An image host on 127.0.0.1: serves one PNG, counts requests, and can be made slow."""

from __future__ import annotations

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


class ImageHost:
    def __init__(self, delay_s: float = 0.0, readable: bool = True) -> None:
        """`readable=False` serves bytes that are not an image (under an image/png content type)."""
        buffer = io.BytesIO()
        Image.new("RGB", (64, 36), (200, 120, 40)).save(buffer, "PNG")
        png = buffer.getvalue() if readable else b"not an image at all"
        self.requests = 0
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.requests += 1
                time.sleep(delay_s)
                self.send_response(200)
                self.send_header("content-type", "image/png")
                self.send_header("content-length", str(len(png)))
                self.end_headers()
                self.wfile.write(png)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/frame.png"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ImageHost:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
