"""Fetch a user-supplied URL without letting it reach inside the network (SSRF).

The host is resolved first, every address it resolves to is checked, and the connection goes to the
checked address itself (with the original Host header and TLS server name), so a second DNS answer
cannot swap in another address. Redirects are followed by hand and every hop is checked the same way.
Size and total time are bounded while the body streams in.

The resolver and the HTTP transport are parameters so that tests can see, and stop, every
connection attempt.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from ..config import Settings

Resolver = Callable[[str, int], list[str]]

_MAX_REDIRECTS = 3
_CHUNK = 64 * 1024


class FetchRefused(Exception):
    """The URL or its address is not allowed; no connection was made to it."""


class FetchFailed(Exception):
    """The server could not be reached, answered with an error, or sent too much or the wrong thing."""


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchFailed(f"could not resolve host {host!r}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# IPv6 prefixes whose addresses carry an IPv4 address that a router or translator may deliver to: NAT64
# (RFC 6052's well-known prefix and RFC 8215's local-use one) in their last 32 bits.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: IPv4-mapped, 6to4, Teredo (its client), NAT64, or the
    deprecated IPv4-compatible form (::a.b.c.d). Each can reach the IPv4 host it embeds."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in network for network in _NAT64) or (int(ip) >> 32 == 0 and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def check_address(address: str, *, allow_loopback: bool = False) -> None:
    """Refuse anything but public unicast addresses (loopback only when the operator allows it). An IPv6
    address that embeds an IPv4 one is judged by the IPv4 address it stands for."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = embedded_ipv4(ip)
        if embedded is not None:
            try:
                check_address(str(embedded), allow_loopback=allow_loopback)
            except FetchRefused as exc:
                raise FetchRefused(f"address {ip} embeds {embedded}: {exc}") from None
            if ip.ipv4_mapped is not None:
                return
    if ip.is_loopback:
        if allow_loopback:
            return
        raise FetchRefused(f"address {ip} is a loopback address")
    if ip.is_link_local:
        raise FetchRefused(f"address {ip} is link-local (cloud metadata services live there)")
    if ip.is_private or ip.is_multicast or ip.is_reserved or ip.is_unspecified or not ip.is_global:
        raise FetchRefused(f"address {ip} is not a public address")


def _parse(url: str | httpx.URL, base: httpx.URL | None = None) -> httpx.URL:
    """The URL httpx would request, or FetchRefused: what httpx cannot parse (http://0177.0.0.1/, an octal
    IPv4 some resolvers read as 127.0.0.1) is refused, never an error of ours."""
    try:
        return base.join(url) if base is not None else httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise FetchRefused(f"not a valid URL ({exc})") from None


@dataclass(frozen=True)
class Fetched:
    body: bytes
    content_type: str
    url: str


class SafeFetcher:
    @classmethod
    def for_images(cls, settings: Settings) -> SafeFetcher:
        """The fetcher for input images and webhook deliveries, under the operator's limits."""
        return cls(
            max_bytes=settings.image_max_bytes, timeout_s=settings.fetch_timeout_s,
            allow_loopback=settings.allow_loopback_urls,
        )

    def __init__(
        self,
        *,
        max_bytes: int,
        timeout_s: float,
        allow_loopback: bool = False,
        resolver: Resolver = system_resolver,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.allow_loopback = allow_loopback
        self._resolver = resolver
        self._transport = transport

    def _pin(self, url: httpx.URL) -> tuple[httpx.URL, dict[str, str], dict]:
        """The URL rewritten to a checked address, with the headers and TLS name of the original."""
        if url.scheme not in ("http", "https"):
            raise FetchRefused(f"scheme {url.scheme!r} is not allowed; use http or https")
        if not url.host:
            raise FetchRefused("the URL has no host")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = [str(ipaddress.ip_address(url.host))]
        except ValueError:
            addresses = self._resolver(url.host, port)
        if not addresses:
            raise FetchFailed(f"host {url.host!r} has no address")
        for address in addresses:
            check_address(address, allow_loopback=self.allow_loopback)
        host_header = url.netloc.decode("ascii").rsplit("@", 1)[-1]
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        return url.copy_with(host=addresses[0]), {"Host": host_header}, extensions

    def check_url(self, url: str) -> None:
        """Refuse a URL now that could never be fetched or posted to (it is checked again at use)."""
        self._pin(_parse(url))

    def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout_s: float) -> int:
        """POST `body` to a checked address and return the status; redirects are not followed."""
        pinned, host_header, extensions = self._pin(_parse(url))
        with httpx.Client(transport=self._transport, timeout=timeout_s, follow_redirects=False,
                          trust_env=False) as client:
            request = client.build_request("POST", pinned, content=body, headers={**headers, **host_header},
                                           extensions=extensions)
            try:
                return client.send(request).status_code
            except httpx.TimeoutException as exc:
                raise FetchFailed(f"timed out after {timeout_s:g} s") from exc
            except httpx.TransportError as exc:
                raise FetchFailed(f"could not connect: {exc}") from exc

    def get(self, url: str, *, content_type_prefix: str = "") -> Fetched:
        deadline = time.monotonic() + self.timeout_s
        current = _parse(url)
        with httpx.Client(
            transport=self._transport, timeout=self.timeout_s, follow_redirects=False, trust_env=False
        ) as client:
            for _ in range(_MAX_REDIRECTS + 1):
                pinned, headers, extensions = self._pin(current)
                request = client.build_request("GET", pinned, headers=headers, extensions=extensions)
                try:
                    response = client.send(request, stream=True)
                except httpx.TimeoutException as exc:
                    raise FetchFailed(f"timed out after {self.timeout_s:g} s") from exc
                except httpx.TransportError as exc:
                    raise FetchFailed(f"could not connect: {exc}") from exc
                try:
                    if response.is_redirect:
                        current = _parse(response.headers.get("location", ""), base=current)
                        continue
                    return self._read(response, str(current), content_type_prefix, deadline)
                finally:
                    response.close()
        raise FetchFailed(f"more than {_MAX_REDIRECTS} redirects")

    def _read(self, response: httpx.Response, url: str, content_type_prefix: str, deadline: float) -> Fetched:
        if response.status_code != 200:
            raise FetchFailed(f"the server answered HTTP {response.status_code}")
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not content_type.startswith(content_type_prefix):
            raise FetchFailed(f"content type {content_type or 'none'!r} is not {content_type_prefix}*")
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchFailed(f"{int(declared)} bytes is more than the limit of {self.max_bytes}")
        body = bytearray()
        try:
            for chunk in response.iter_bytes(_CHUNK):
                body += chunk
                if len(body) > self.max_bytes:
                    raise FetchFailed(f"more than the limit of {self.max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise FetchFailed(f"download took longer than {self.timeout_s:g} s")
        except httpx.TimeoutException as exc:
            raise FetchFailed(f"timed out after {self.timeout_s:g} s") from exc
        except httpx.TransportError as exc:
            raise FetchFailed(f"the download broke off: {exc}") from exc
        return Fetched(bytes(body), content_type, url)
