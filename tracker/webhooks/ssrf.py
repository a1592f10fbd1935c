"""SSRF guard for seller-supplied webhook URLs.

Two layers, both needed:

* `check_url` / `resolve_and_check` refuse a URL up front, with a machine-readable
  reason, before any connection is opened. They are the only check for IP-literal URLs,
  because aiohttp never hands a literal to a resolver.
* `PinnedResolver` is the resolver of the delivery connector. It looks the name up and
  classifies every answer *at connect time*, and aiohttp connects only to the addresses it
  returns (Svix's `NonLocalDnsResolver` design). So there is no second, unchecked lookup
  that a DNS-rebinding attacker could answer differently, while the URL, the `Host` header
  and TLS SNI/certificate checks keep the real hostname. Checking inside the resolver,
  rather than pinning one pre-resolved IP per delivery, lets one shared `ClientSession`
  serve every endpoint; pooled keep-alive connections were checked when they were opened.

No maintained async Python library does this (requests-hardened is requests-only,
advocate is archived), so the classification is stdlib `ipaddress` with explicit tables:
`ipaddress`'s own `is_private`/`is_global` differ between Python patch releases and miss
CGNAT, multicast and IPv6 forms that embed an IPv4 address.
"""

from __future__ import annotations

import asyncio
import functools
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

IPAddress = IPv4Address | IPv6Address
Lookup = Callable[[str], Awaitable[Sequence[str]]]
"""Resolves a hostname to IP address strings (the injected resolver)."""

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = frozenset({"http", "https"})

# WHATWG Fetch "bad ports": a POST to these is a cross-protocol attack (SMTP, IRC, ...).
BLOCKED_PORTS = frozenset(
    {1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102}
    | {103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427}
    | {465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989}
    | {990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665}
    | {6666, 6667, 6668, 6669, 6679, 6697, 10080}
)

_V4_LOOPBACK = IPv4Network("127.0.0.0/8")
_V6_LOOPBACK = IPv6Address("::1")


def _nets4(*cidrs: str) -> tuple[IPv4Network, ...]:
    return tuple(IPv4Network(c) for c in cidrs)


def _nets6(*cidrs: str) -> tuple[IPv6Network, ...]:
    return tuple(IPv6Network(c) for c in cidrs)


# Order matters: the first match names the reason (metadata before link-local, broadcast
# before reserved).
_V4_RULES: tuple[tuple[str, tuple[IPv4Network, ...]], ...] = (
    ("metadata", _nets4("169.254.169.254/32", "100.100.100.200/32")),
    ("unspecified", _nets4("0.0.0.0/8")),
    ("loopback", _nets4("127.0.0.0/8")),
    ("link_local", _nets4("169.254.0.0/16")),
    ("shared_address_space", _nets4("100.64.0.0/10")),
    ("private", _nets4("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "192.0.0.0/24")),
    ("documentation", _nets4("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")),
    ("benchmarking", _nets4("198.18.0.0/15")),
    ("multicast", _nets4("224.0.0.0/4")),
    ("broadcast", _nets4("255.255.255.255/32")),
    ("reserved", _nets4("240.0.0.0/4", "192.88.99.0/24")),
)
_V6_RULES: tuple[tuple[str, tuple[IPv6Network, ...]], ...] = (
    ("metadata", _nets6("fd00:ec2::254/128")),
    ("unspecified", _nets6("::/128")),
    ("loopback", _nets6("::1/128")),
    ("link_local", _nets6("fe80::/10")),
    ("private", _nets6("fc00::/7", "fec0::/10", "64:ff9b:1::/48")),
    ("documentation", _nets6("2001:db8::/32", "3fff::/20")),
    ("benchmarking", _nets6("2001:2::/48")),
    ("multicast", _nets6("ff00::/8")),
    ("reserved", _nets6("100::/64", "5f00::/16", "2001:10::/28", "2001:20::/28")),
)
_NAT64 = IPv6Network("64:ff9b::/96")
_V4_COMPAT = IPv6Network("::/96")

_LEGACY_V4_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")
_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


class UnsafeUrl(ValueError):
    """A webhook URL the guard refuses; `reason` is a stable machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ResolutionFailed(OSError):
    """The hostname did not resolve: a transient delivery failure, not a refusal."""


class BlockedAddress(OSError):
    """Raised inside the connector when a name resolves to a refused address."""

    def __init__(self, reason: str, host: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.reason = reason
        self.host = host


@dataclass(frozen=True, slots=True)
class ParsedTarget:
    """A syntactically acceptable URL; `ip` is set when the host is an IP literal."""

    url: str
    scheme: str
    host: str
    port: int
    ip: IPAddress | None


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """A URL whose every resolved address passed the guard; `ip` is the first of `ips`."""

    url: str
    host: str
    port: int
    ip: str
    scheme: str
    ips: tuple[str, ...]


def ip_refusal(ip: IPAddress, *, allow_loopback: bool) -> str | None:
    """Return why `ip` must not be contacted, or None when it is a public unicast address."""
    if allow_loopback and (ip in _V4_LOOPBACK if isinstance(ip, IPv4Address) else ip == _V6_LOOPBACK):
        return None
    if isinstance(ip, IPv4Address):
        return _v4_refusal(ip)
    return _v6_refusal(ip)


def _v4_refusal(ip: IPv4Address) -> str | None:
    for reason, nets in _V4_RULES:
        if any(ip in net for net in nets):
            return reason
    return None if ip.is_global else "non_global"


def _v6_refusal(ip: IPv6Address) -> str | None:
    # Embedded IPv4 is judged as the IPv4 address it reaches; loopback is never allowed
    # through an embedding, so the test-only exception stays exactly 127/8 and ::1.
    embedded = _embedded_v4(ip)
    if embedded is not None:
        kind, inner = embedded
        inner_reason = _v4_refusal(inner)
        if inner_reason is not None:
            return f"{kind}:{inner_reason}"
        if kind == "ipv4_compat":
            return "reserved"
    if ip.teredo is not None:
        for part in ip.teredo:
            part_reason = _v4_refusal(part)
            if part_reason is not None:
                return f"teredo:{part_reason}"
    for reason, nets in _V6_RULES:
        if any(ip in net for net in nets):
            return reason
    if not ip.is_global:
        return "non_global"
    return "zone_id" if ip.scope_id else None


def _embedded_v4(ip: IPv6Address) -> tuple[str, IPv4Address] | None:
    if ip.ipv4_mapped is not None:
        return "ipv4_mapped", ip.ipv4_mapped
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    low32 = IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64:
        return "nat64", low32
    if ip in _V4_COMPAT and int(ip) > 1:
        return "ipv4_compat", low32
    return None


def _check_host(host: str, *, allow_loopback: bool) -> IPAddress | None:
    """Refuse a bad host; return the address for IP literals and None for names."""
    if ":" in host:
        if "%" in host:
            raise UnsafeUrl("zone_id", host)
        try:
            literal: IPAddress = IPv6Address(host)
        except ValueError as exc:
            raise UnsafeUrl("invalid_ip_literal", host) from exc
        return _refuse_address(literal, host, allow_loopback=allow_loopback)
    name = host[:-1] if host.endswith(".") else host
    if not name:
        raise UnsafeUrl("missing_host")
    try:
        dotted: IPv4Address | None = IPv4Address(name)
    except ValueError:
        dotted = None
    if dotted is not None:
        return _refuse_address(dotted, host, allow_loopback=allow_loopback)
    labels = name.split(".")
    if _LEGACY_V4_LABEL.fullmatch(labels[-1]):
        _refuse_legacy_v4(name, allow_loopback=allow_loopback)
    if len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise UnsafeUrl("invalid_host", host)
    if not allow_loopback and (name == "localhost" or name.endswith(".localhost")):
        raise UnsafeUrl("loopback", host)
    return None


def _refuse_legacy_v4(name: str, *, allow_loopback: bool) -> None:
    # Decimal, hex, octal and short forms (2130706433, 0x7f.1, 0177.0.0.1, 127.1) mean an
    # address to inet_aton/getaddrinfo but not to ipaddress; refuse them all, naming the
    # address they decode to when that address is itself refused.
    try:
        decoded = IPv4Address(socket.inet_aton(name))
    except OSError as exc:
        raise UnsafeUrl("invalid_ip_literal", name) from exc
    reason = ip_refusal(decoded, allow_loopback=False)
    if reason is not None and not (allow_loopback and reason == "loopback"):
        raise UnsafeUrl(reason, f"{name} is {decoded}")
    raise UnsafeUrl("non_canonical_ip", f"{name} is {decoded}")


def _refuse_address(ip: IPAddress, host: str, *, allow_loopback: bool) -> IPAddress:
    reason = ip_refusal(ip, allow_loopback=allow_loopback)
    if reason is not None:
        raise UnsafeUrl(reason, host if host == str(ip) else f"{host} is {ip}")
    return ip


def check_url(url: str, *, allow_loopback: bool) -> ParsedTarget:
    """Check a webhook URL's syntax and any literal address, without DNS."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl("too_long")
    if any(ch.isspace() or not ch.isprintable() or ch == "\\" for ch in url):
        raise UnsafeUrl("invalid_characters")
    try:
        parsed = URL(url)
    except ValueError as exc:
        raise UnsafeUrl("invalid_url", str(exc)) from exc
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise UnsafeUrl("scheme", parsed.scheme or "none")
    # Look at the raw authority too: yarl silently drops an empty userinfo ("http://@host").
    authority = re.split(r"[/?#]", url.split("://", 1)[-1], maxsplit=1)[0]
    if "@" in authority or parsed.user is not None or parsed.password is not None:
        raise UnsafeUrl("credentials")
    host = parsed.raw_host
    if not host:
        raise UnsafeUrl("missing_host")
    port = parsed.port
    if port is None or port == 0:
        raise UnsafeUrl("bad_port", str(port))
    if port in BLOCKED_PORTS:
        raise UnsafeUrl("blocked_port", str(port))
    ip = _check_host(host, allow_loopback=allow_loopback)
    return ParsedTarget(url=str(parsed), scheme=parsed.scheme, host=host, port=port, ip=ip)


@functools.lru_cache(maxsize=4096)
def _check_url_once(url: str, allow_loopback: bool) -> ParsedTarget:
    # check_url depends on nothing but its arguments, and every delivery to an endpoint
    # checks the same URL; a refusal raises and so is never cached.
    return check_url(url, allow_loopback=allow_loopback)


async def system_lookup(host: str) -> list[str]:
    """Resolve with the operating system's resolver (the default lookup)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def lookup_checked(host: str, *, allow_loopback: bool, lookup: Lookup) -> tuple[str, ...]:
    """Resolve `host` once; refuse if ANY answer is refused, else return every answer."""
    try:
        answers = await lookup(host)
    except OSError as exc:
        raise ResolutionFailed(f"{host}: {exc}") from exc
    if not answers:
        raise ResolutionFailed(f"{host}: no addresses")
    checked: list[str] = []
    for answer in answers:
        try:
            ip = ip_address(answer)
        except ValueError as exc:
            raise UnsafeUrl("invalid_resolved_address", f"{host} -> {answer!r}") from exc
        _refuse_address(ip, host, allow_loopback=allow_loopback)
        checked.append(str(ip))
    return tuple(dict.fromkeys(checked))


async def resolve_and_check(url: str, *, allow_loopback: bool, resolver: Lookup | None = None) -> ResolvedTarget:
    """Check `url`, resolve its host once and refuse it if any address is refused."""
    parsed = _check_url_once(url, allow_loopback)
    if parsed.ip is not None:
        ips: tuple[str, ...] = (str(parsed.ip),)
    else:
        lookup = resolver or system_lookup
        ips = await lookup_checked(parsed.host, allow_loopback=allow_loopback, lookup=lookup)
    return ResolvedTarget(url=parsed.url, host=parsed.host, port=parsed.port, ip=ips[0], scheme=parsed.scheme, ips=ips)


class PinnedResolver(AbstractResolver):
    """aiohttp resolver that answers only with addresses it has just checked."""

    def __init__(self, *, allow_loopback: bool, lookup: Lookup | None = None) -> None:
        self._allow_loopback = allow_loopback
        self._lookup = lookup or system_lookup

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve and check `host`; raise `BlockedAddress` (an OSError) when refused."""
        try:
            literal = _check_host(host, allow_loopback=self._allow_loopback)
            ips = (
                (str(literal),)
                if literal is not None
                else await lookup_checked(host, allow_loopback=self._allow_loopback, lookup=self._lookup)
            )
        except UnsafeUrl as exc:
            raise BlockedAddress(exc.reason, host) from exc
        results: list[ResolveResult] = []
        for text in ips:
            fam = socket.AF_INET6 if ":" in text else socket.AF_INET
            if family in (socket.AF_INET, socket.AF_INET6) and family != fam:
                continue
            results.append(
                {
                    "hostname": host,
                    "host": text,
                    "port": port,
                    "family": fam,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST,
                }
            )
        if not results:
            raise ResolutionFailed(f"{host}: no address of family {family!r}")
        return results

    async def close(self) -> None:
        """Nothing to release: lookups hold no resources."""
