"""A webhook receiver on 127.0.0.1, as a client would run one: records each POST and answers from a script."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self, answers: list[int] | None = None, delay_s: float = 0.0) -> None:
        """`answers`: the status of each POST in turn; 200 once they run out. `delay_s`: time taken to answer."""
        self.answers = list(answers or [])
        self.deliveries: list[Delivery] = []
        self.received = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                time.sleep(delay_s)
                with receiver.received:
                    receiver.deliveries.append(Delivery({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    receiver.received.notify_all()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/ltx"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait(self, count: int, timeout_s: float = 60) -> list[Delivery]:
        with self.received:
            assert self.received.wait_for(lambda: len(self.deliveries) >= count, timeout_s), (
                f"{len(self.deliveries)} deliveries, expected {count}"
            )
            return list(self.deliveries)
