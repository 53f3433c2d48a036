"""A loopback HTTP proxy that breaks things on purpose, once each: it cuts a response after so many bytes
(a dropped connection), or forwards a request and answers 502 in place of the server's answer (an answer
lost on the way back). Everything else passes through unchanged, one request per connection."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass


@dataclass
class Fault:
    match: str  # a substring of the request line, e.g. "GET /v2/requests/"
    cut_after: int | None = None  # close the client's connection after this many response bytes
    bad_gateway: bool = False  # forward the request, drop the server's answer, answer 502
    used: bool = False


class FaultyProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.faults: list[Fault] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _fault_for(self, request_line: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if not fault.used and fault.match in request_line:
                    fault.used = True
                    return fault
        return None

    def _serve(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            head, _, body = head.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")),
                          0)
            while len(body) < length:
                body += client.recv(65536)
            # One request per connection: the server closes after its answer, which ends the relay.
            kept = [line for line in lines if not line.lower().startswith("connection:")]
            request = ("\r\n".join([*kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1") + body
            fault = self._fault_for(lines[0])
            with socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
                upstream.sendall(request)
                if fault is not None and fault.bad_gateway:
                    while upstream.recv(65536):
                        pass
                    answer = b'{"error": "the test proxy dropped the answer", "code": "bad_gateway"}'
                    client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\n"
                                   b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(answer), answer))
                    return
                sent = 0
                while chunk := upstream.recv(65536):
                    if fault is not None and fault.cut_after is not None and sent + len(chunk) >= fault.cut_after:
                        client.sendall(chunk[: fault.cut_after - sent])
                        client.shutdown(socket.SHUT_RDWR)
                        return
                    client.sendall(chunk)
                    sent += len(chunk)
