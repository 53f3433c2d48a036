"""Image URLs: refused addresses make no connection at all; allowed ones are bounded in size, type and time.

Every connection attempt goes through `transport` (recorded, and failed if not 127.0.0.1) and every
name through `resolver`; under both, conftest's socket guard fails the test on any off-loopback connect.
"""

from __future__ import annotations

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest
from PIL import Image

from ltxserve.errors import ImageRejected
from ltxserve.media.images import load_image
from ltxserve.net.safe_fetch import FetchFailed, FetchRefused, SafeFetcher, check_address


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


class _Handler(BaseHTTPRequestHandler):
    hosts: ClassVar[list[str]] = []

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", content_type: str = "image/png", **headers) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        if "Transfer_Encoding" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        type(self).hosts.append(self.headers["Host"])
        if self.path == "/fox.png":
            self._send(200, _png())
        elif self.path == "/big.png":
            self._send(200, b"\0" * 5000)
        elif self.path == "/chunked.png":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"400\r\n" + b"\0" * 1024 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/page.html":
            self._send(200, b"<html></html>", content_type="text/html; charset=utf-8")
        elif self.path == "/fake.png":
            self._send(200, b"definitely not a png")
        elif self.path == "/to-private":
            self._send(302, Location="http://10.0.0.1/x.png")
        elif self.path == "/to-fox":
            self._send(302, Location="/fox.png")
        elif self.path == "/slow.png":
            time.sleep(2)
            self._send(200, _png())
        else:
            self._send(404, b"", content_type="text/plain")


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


class RecordingTransport(httpx.BaseTransport):
    """The real transport, with every connection target recorded and anything off 127.0.0.1 failed."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        if request.url.host != "127.0.0.1":
            pytest.fail(f"connection attempted to {request.url.host}")
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class FakeResolver:
    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return self.table.get(host, [])


@pytest.fixture
def transport():
    return RecordingTransport()


def _fetcher(transport, *, allow_loopback=False, table=None, max_bytes=1 << 20, timeout_s=5.0):
    return SafeFetcher(
        max_bytes=max_bytes,
        timeout_s=timeout_s,
        allow_loopback=allow_loopback,
        resolver=FakeResolver(table or {}),
        transport=transport,
    )


REFUSED = [
    ("http://127.0.0.1:{port}/fox.png", {}, "loopback"),
    ("http://[::1]:{port}/fox.png", {}, "loopback"),
    ("http://localhost.test:{port}/fox.png", {"localhost.test": ["127.0.0.1"]}, "loopback"),
    ("http://10.0.0.7/fox.png", {}, "not a public address"),
    ("http://192.168.1.1/fox.png", {}, "not a public address"),
    ("http://172.16.5.4/fox.png", {}, "not a public address"),
    ("http://100.64.0.1/fox.png", {}, "not a public address"),
    ("http://0.0.0.0/fox.png", {}, "not a public address"),
    ("http://[::ffff:10.0.0.1]/fox.png", {}, "not a public address"),
    ("http://[fd00:ec2::254]/latest/meta-data/", {}, "not a public address"),
    ("http://169.254.169.254/latest/meta-data/", {}, "link-local"),
    ("http://metadata.test/computeMetadata/v1/", {"metadata.test": ["169.254.169.254"]}, "link-local"),
    ("http://mixed.test/fox.png", {"mixed.test": ["93.184.216.34", "10.1.2.3"]}, "not a public address"),
    ("file:///etc/passwd", {}, "scheme 'file'"),
    ("gopher://93.184.216.34/x", {}, "scheme 'gopher'"),
    # IPv6 forms that carry a refused IPv4 address a router or translator may deliver to.
    ("http://[2002:a00:1::]/fox.png", {}, "embeds 10.0.0.1"),  # 6to4
    ("http://[2002:7f00:1::]/fox.png", {}, "embeds 127.0.0.1"),
    ("http://[2002:a9fe:a9fe::]/latest/meta-data/", {}, "embeds 169.254.169.254"),
    ("http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", {}, "embeds 169.254.169.254"),  # NAT64
    ("http://[64:ff9b:1::a00:1]/fox.png", {}, "embeds 10.0.0.1"),
    ("http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/fox.png", {}, "embeds 10.0.0.1"),  # Teredo
    ("http://[::a00:1]/fox.png", {}, "embeds 10.0.0.1"),  # IPv4-compatible
    ("http://six.test/fox.png", {"six.test": ["2002:7f00:1::"]}, "embeds 127.0.0.1"),
    ("http://0177.0.0.1/fox.png", {}, "not a valid URL"),  # octal for 127.0.0.1; httpx cannot parse it
]


@pytest.mark.parametrize(("url", "table", "reason"), REFUSED)
def test_refused_urls_make_no_connection(server, transport, url, table, reason):
    fetcher = _fetcher(transport, table=table)
    with pytest.raises(FetchRefused, match=reason):
        fetcher.get(url.format(port=server))
    assert transport.hosts == []


@pytest.mark.parametrize(("url", "table", "reason"), REFUSED[:3] + REFUSED[10:12])
def test_a_refused_image_url_is_a_validation_error_on_the_image_field(server, transport, url, table, reason):
    with pytest.raises(ImageRejected, match="URL refused") as caught:
        load_image(url.format(port=server), _fetcher(transport, table=table), max_pixels=10**6)
    assert [issue.field for issue in caught.value.details] == ["image"]
    assert reason in caught.value.details[0].message
    assert transport.hosts == []


def test_public_unicast_addresses_pass_the_check():
    for address in ("93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"):
        check_address(address)
    check_address("127.0.0.1", allow_loopback=True)
    with pytest.raises(FetchRefused):
        check_address("10.0.0.1", allow_loopback=True)


def test_an_allowed_url_is_fetched_from_the_checked_address_with_its_own_host_name(server, transport):
    fetcher = _fetcher(transport, allow_loopback=True, table={"images.test": ["127.0.0.1"]})
    _Handler.hosts.clear()
    image = load_image(f"http://images.test:{server}/fox.png", fetcher, max_pixels=10**6)
    assert image.size == (40, 30)
    assert transport.hosts == ["127.0.0.1"]
    assert _Handler.hosts == [f"images.test:{server}"]
    assert fetcher._resolver.asked == ["images.test"]


def test_a_redirect_is_followed_and_checked_at_every_hop(server, transport):
    fetcher = _fetcher(transport, allow_loopback=True)
    fetched = fetcher.get(f"http://127.0.0.1:{server}/to-fox", content_type_prefix="image/")
    assert fetched.url.endswith("/fox.png")
    assert transport.hosts == ["127.0.0.1", "127.0.0.1"]

    transport.hosts.clear()
    with pytest.raises(FetchRefused, match=r"10\.0\.0\.1 is not a public address"):
        fetcher.get(f"http://127.0.0.1:{server}/to-private")
    assert transport.hosts == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("path", "max_bytes", "reason"),
    [
        ("/big.png", 1000, "5000 bytes is more than the limit of 1000"),
        ("/chunked.png", 4000, "more than the limit of 4000 bytes"),
        ("/page.html", 1 << 20, "content type 'text/html' is not image/"),
        ("/missing.png", 1 << 20, "HTTP 404"),
    ],
)
def test_too_large_wrong_type_and_errors_are_refused(server, transport, path, max_bytes, reason):
    fetcher = _fetcher(transport, allow_loopback=True, max_bytes=max_bytes)
    with pytest.raises(FetchFailed, match=reason):
        fetcher.get(f"http://127.0.0.1:{server}{path}", content_type_prefix="image/")
    with pytest.raises(ImageRejected, match="could not fetch the URL"):
        load_image(f"http://127.0.0.1:{server}{path}", fetcher, max_pixels=10**6)


def test_bytes_that_are_not_an_image_are_refused(server, transport):
    fetcher = _fetcher(transport, allow_loopback=True)
    with pytest.raises(ImageRejected, match="not a readable image"):
        load_image(f"http://127.0.0.1:{server}/fake.png", fetcher, max_pixels=10**6)


def test_a_slow_server_times_out(server, transport):
    fetcher = _fetcher(transport, allow_loopback=True, timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="timed out"):
        fetcher.get(f"http://127.0.0.1:{server}/slow.png")
    assert time.monotonic() - started < 1.9


def test_an_unresolvable_name_fails_cleanly(transport):
    with pytest.raises(FetchFailed, match="has no address"):
        _fetcher(transport).get("http://nowhere.test/fox.png")
    assert transport.hosts == []
