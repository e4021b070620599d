"""Posting to a URL someone else registered (schools' and forces' webhooks) without letting it
reach into our own network: the host is resolved once, refused if any address it names is not
a public one, and the request goes to the address that was checked while the Host header, TLS
SNI and the certificate check still name the host. No redirects, no proxies, bounded time."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx

from services.common.problems import Problem

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> every address it resolves to, as getaddrinfo writes them
Resolver = Callable[[str, int], Awaitable[list[str]]]

# instance metadata services: refused whatever else is allowed (some are link-local, some not)
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, Azure, Google Cloud, OpenStack
    "169.254.170.2",  # AWS container credentials
    "fd00:ec2::254",  # AWS over IPv6
    "100.100.100.200",  # Alibaba Cloud
    "192.0.0.192",  # Oracle Cloud
))
_HTTPS_ONLY = "must be an https URL"


class UnsafeDestination(Exception):
    """A URL this process will not post to; `reason` says why without naming the URL."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Egress:
    """How posts to registered URLs leave this process: loopback only where the settings
    allow it (tests, a local stack), within `timeout_s` from lookup to answer."""

    allow_loopback: bool = False
    timeout_s: float = 10
    resolve: Resolver | None = None  # the system resolver unless a test gives one


@dataclass(frozen=True)
class Pinned:
    """Where one request goes: the checked address, and the names the request keeps."""

    url: httpx.URL  # the registered URL with the checked address as its host
    host_header: str
    sni_hostname: str | None  # None for plain http and for a host given as an address


def address_refusal(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why nothing may be posted to `address` (None: it may): anything but a public unicast
    address, and loopback unless allowed; an IPv4-mapped IPv6 address is its IPv4 one."""
    address = _unmapped(address)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    kinds = {
        "an unspecified": address.is_unspecified, "a link-local": address.is_link_local,
        "a multicast": address.is_multicast, "a private": address.is_private,
        "a reserved": address.is_reserved,
        "a site-local": isinstance(address, ipaddress.IPv6Address) and address.is_site_local,
        # what is none of those and still not global: shared address space (100.64/10)
        "a non-public": not address.is_global,
    }
    return next((f"{kind} address" for kind, hit in kinds.items() if hit), None)


def numeric_host(host: str) -> IPAddress | None:
    """The address a host written as one means, in any form the C library reads
    (`2130706433`, `0x7f.1`, `127.1`, `[::ffff:7f00:1]`); None for a name. No lookup."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM,
                                   flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    return _parse(str(infos[0][4][0]))


def registration_refusal(url: str, *, allow_loopback: bool) -> str | None:
    """Why a webhook URL may not be registered (None: it may): https (plain http only to a
    loopback host where loopback is allowed), no credentials, and a host written as an address
    must be one a post may go to. A name is checked again at every delivery."""
    target, refusal = _parsed(url)
    if target is None:
        return refusal
    host = target.raw_host.decode("ascii").lower().rstrip(".")
    address = numeric_host(host)
    named_loopback = host == "localhost" or host.endswith(".localhost")  # RFC 6761
    loopback = named_loopback or (address is not None and _is_loopback(address))
    if target.scheme == "http" and not (allow_loopback and loopback):
        return _HTTPS_ONLY
    if named_loopback and not allow_loopback:
        return "must not name a loopback address"
    why = address_refusal(address, allow_loopback=allow_loopback) if address else None
    return f"must not name {why}" if why else None


def refuse_unsafe_registration(url: str, *, field: str, allow_loopback: bool) -> None:
    """A 422 naming `field` when `url` may not be registered (registration_refusal)."""
    if (message := registration_refusal(url, allow_loopback=allow_loopback)) is not None:
        raise Problem(422, "Invalid request body", f"{field} {message}.",
                      extra={"errors": [{"field": field, "message": message}]})


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (in the loop's executor)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(sockaddr[0]) for *_, sockaddr in infos]


async def pin(url: str, *, egress: Egress) -> Pinned:
    """Resolve the URL's host and choose the address to connect to; UnsafeDestination when
    the URL may not be posted to or ANY address the host resolves to is refused (a resolver
    that answers one bad address may answer only that one next time)."""
    target, refusal = _parsed(url)
    if target is None or (target.scheme == "http" and not egress.allow_loopback):
        raise UnsafeDestination(f"the URL {refusal or _HTTPS_ONLY}")
    host = target.raw_host.decode("ascii")
    port = target.port or (443 if target.scheme == "https" else 80)
    found = await (egress.resolve or resolve_host)(host, port)
    addresses = [_parse(a) for a in found]
    if not addresses:
        raise UnsafeDestination("the host resolves to no address")
    for address in addresses:
        if (refusal := address_refusal(address, allow_loopback=egress.allow_loopback)):
            raise UnsafeDestination(f"the host resolves to {refusal}")
    if target.scheme == "http" and not all(_is_loopback(a) for a in addresses):
        raise UnsafeDestination("plain http goes to loopback only")
    literal = numeric_host(host) is not None
    return Pinned(url=target.copy_with(host=str(addresses[0])),
                  host_header=target.netloc.decode("ascii"),
                  sni_hostname=host if target.scheme == "https" and not literal else None)


async def post_pinned(client: httpx.AsyncClient, url: str, *, content: bytes,
                      headers: Mapping[str, str], egress: Egress) -> None:
    """POST `content` to the checked address of `url` (pin); raises UnsafeDestination, an
    httpx error, TimeoutError, or HTTPStatusError for any answer but 2xx (a redirect is never
    followed). The answer's body is never read, so its size cannot matter."""
    async with asyncio.timeout(egress.timeout_s):
        target = await pin(url, egress=egress)
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
        # one connection per request: a pooled one was verified for another host's name
        request = client.build_request(
            "POST", target.url, content=content, extensions=extensions,
            headers={**headers, "Host": target.host_header, "Connection": "close"})
        response = await client.send(request, stream=True, follow_redirects=False)
        await response.aclose()
    response.raise_for_status()


def egress_client(timeout_s: float, *, verify: ssl.SSLContext | bool = True
                  ) -> httpx.AsyncClient:
    """The HTTP client for post_pinned: no proxy from the environment (it would resolve the
    host itself), no kept-alive connections, no redirects."""
    return httpx.AsyncClient(timeout=timeout_s, trust_env=False, follow_redirects=False,
                             limits=httpx.Limits(max_keepalive_connections=0), verify=verify)


def failure_reason(exc: BaseException) -> str:
    """What a failed delivery records: why its destination was refused, the receiver's status,
    else the error's type; never the error's text, which can hold the URL and its secrets."""
    if isinstance(exc, UnsafeDestination):
        return f"refused: {exc.reason}"[:200]
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


def _parsed(url: str) -> tuple[httpx.URL | None, str | None]:
    """The URL if its shape may be posted to (http(s), a host, no credentials), else why not."""
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL:
        return None, _HTTPS_ONLY
    if target.scheme not in ("https", "http") or not target.raw_host:
        return None, _HTTPS_ONLY
    if target.userinfo:
        return None, "must not carry credentials"
    return target, None


def _parse(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone is not part of it


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_loopback(address: IPAddress) -> bool:
    return _unmapped(address).is_loopback
