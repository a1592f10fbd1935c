"""SSRF guard: hostile URLs are refused with a reason, public ones pass, loopback is opt-in."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from ipaddress import ip_address

import pytest

from tracker.webhooks.ssrf import (
    BlockedAddress,
    PinnedResolver,
    ResolutionFailed,
    ResolvedTarget,
    UnsafeUrl,
    check_url,
    ip_refusal,
    resolve_and_check,
    system_lookup,
)


class FakeDns:
    """An injected resolver: a fixed table, counting every question."""

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        name = host.rstrip(".")
        if name not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.table[name])


PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"

DNS = {
    "rebind.example.com": [PUBLIC_V4, "10.0.0.5"],
    "metadata.example.com": ["169.254.169.254"],
    "v6private.example.com": ["fd12:3456::1"],
    "mapped.example.com": ["::ffff:10.1.2.3"],
    "cgnat.example.com": ["100.64.1.1"],
    "loop.example.com": ["127.0.0.1"],
    "garbage.example.com": ["not-an-ip"],
    "hooks.example.com": [PUBLIC_V4],
    "dual.example.com": [PUBLIC_V4, PUBLIC_V6],
    "xn--bcher-kva.example": [PUBLIC_V4],
    "localhost": ["127.0.0.1", "::1"],
    "mixed-loop.example.com": ["127.0.0.1", "192.168.0.1"],
}

# Teredo address whose client (obfuscated as the bitwise complement) is 10.0.0.1.
TEREDO_PRIVATE_CLIENT = "2001:0:4136:e378:8000:63bf:f5ff:fffe"

HOSTILE: list[tuple[str, str]] = [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.0.0.1./", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://0x7f.1/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://１２７.0.0.1/", "loopback"),
    ("http://0/", "unspecified"),
    ("http://0.0.0.0:8080/", "unspecified"),
    ("http://localhost/", "loopback"),
    ("http://LOCALHOST./", "loopback"),
    ("http://api.localhost/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[::]/", "unspecified"),
    ("http://[::ffff:127.0.0.1]/", "ipv4_mapped:loopback"),
    ("http://[::ffff:7f00:1]:8080/", "ipv4_mapped:loopback"),
    ("http://[::ffff:169.254.169.254]/", "ipv4_mapped:metadata"),
    ("http://[::127.0.0.1]/", "ipv4_compat:loopback"),
    ("http://[2002:7f00:1::]/", "6to4:loopback"),
    ("http://[2002:c0a8:101::1]/", "6to4:private"),
    ("http://[64:ff9b::a9fe:a9fe]/", "nat64:metadata"),
    ("http://[64:ff9b::10.0.0.1]/", "nat64:private"),
    (f"http://[{TEREDO_PRIVATE_CLIENT}]/", "teredo:private"),
    ("http://[fe80::1%25eth0]/", "zone_id"),
    ("http://[fe80::1]/", "link_local"),
    ("http://[fc00::1]/", "private"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
    ("http://[ff02::1]/", "multicast"),
    ("http://[2001:db8::1]/", "documentation"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://100.100.100.200/", "metadata"),
    ("http://169.254.10.10/", "link_local"),
    ("http://100.64.0.1/", "shared_address_space"),
    ("http://224.0.0.1/", "multicast"),
    ("http://255.255.255.255/", "broadcast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://192.0.2.10/", "documentation"),
    ("http://198.18.0.1/", "benchmarking"),
    ("ftp://example.com/", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://example.com:70/", "scheme"),
    ("javascript:alert(1)", "scheme"),
    ("hooks.example.com/no-scheme", "scheme"),
    ("http://user:pass@example.com/", "credentials"),
    ("http://@example.com/", "credentials"),
    ("http://example.com@127.0.0.1/", "credentials"),
    ("http://example.com\\@127.0.0.1/", "invalid_characters"),
    ("http://exa mple.com/", "invalid_characters"),
    ("http://example.com/\r\nX-Injected: 1", "invalid_characters"),
    ("http://example.com:0/", "bad_port"),
    ("http://example.com:70000/", "invalid_url"),
    ("http://example.com:25/", "blocked_port"),
    ("http:///nohost", "missing_host"),
    ("http://%31%32%37.0.0.1/", "invalid_ip_literal"),
    ("http://1.2.3.4.5/", "invalid_ip_literal"),
    ("http://134744072/", "non_canonical_ip"),
    ("http://under_score-.example.com/", "invalid_host"),
    ("http://rebind.example.com/", "private"),
    ("http://metadata.example.com/", "metadata"),
    ("http://v6private.example.com/", "private"),
    ("http://mapped.example.com/", "ipv4_mapped:private"),
    ("http://cgnat.example.com/", "shared_address_space"),
    ("http://loop.example.com/", "loopback"),
    ("http://garbage.example.com/", "invalid_resolved_address"),
    ("http://example.com/" + "a" * 2050, "too_long"),
]


def test_table_is_large_and_every_url_distinct() -> None:
    assert len(HOSTILE) >= 30
    assert len({url for url, _ in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize(("url", "reason"), HOSTILE)
async def test_hostile_url_is_refused_with_reason(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl) as info:
        await resolve_and_check(url, allow_loopback=False, resolver=FakeDns(DNS))
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/", "private"),
        ("http://169.254.169.254/", "metadata"),
        ("http://[::ffff:127.0.0.1]/", "ipv4_mapped:loopback"),
        ("http://[2002:7f00:1::]/", "6to4:loopback"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://127.1/", "non_canonical_ip"),
        ("http://[fc00::1]/", "private"),
        ("http://100.64.0.1/", "shared_address_space"),
        ("http://mixed-loop.example.com/", "private"),
        ("http://[fe80::1]/", "link_local"),
    ],
)
async def test_allow_loopback_keeps_every_other_range_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl) as info:
        await resolve_and_check(url, allow_loopback=True, resolver=FakeDns(DNS))
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("url", "ips"),
    [
        ("http://127.0.0.1:8080/hook", ("127.0.0.1",)),
        ("http://127.5.6.7/hook", ("127.5.6.7",)),
        ("http://[::1]:9000/hook", ("::1",)),
        ("http://localhost:8080/hook", ("127.0.0.1", "::1")),
        ("http://loop.example.com/hook", ("127.0.0.1",)),
    ],
)
async def test_allow_loopback_lets_loopback_through(url: str, ips: tuple[str, ...]) -> None:
    target = await resolve_and_check(url, allow_loopback=True, resolver=FakeDns(DNS))
    assert target.ips == ips
    assert target.ip == ips[0]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://hooks.example.com/webhooks/cbec",
            ResolvedTarget(
                url="https://hooks.example.com/webhooks/cbec",
                host="hooks.example.com",
                port=443,
                ip=PUBLIC_V4,
                scheme="https",
                ips=(PUBLIC_V4,),
            ),
        ),
        (
            "HTTP://Dual.Example.COM:8080/x?y=1",
            ResolvedTarget(
                url="http://dual.example.com:8080/x?y=1",
                host="dual.example.com",
                port=8080,
                ip=PUBLIC_V4,
                scheme="http",
                ips=(PUBLIC_V4, PUBLIC_V6),
            ),
        ),
        (
            "https://hooks.example.com./trailing-dot",
            ResolvedTarget(
                url="https://hooks.example.com./trailing-dot",
                host="hooks.example.com.",
                port=443,
                ip=PUBLIC_V4,
                scheme="https",
                ips=(PUBLIC_V4,),
            ),
        ),
        (
            "https://bücher.example/hook",
            ResolvedTarget(
                url="https://xn--bcher-kva.example/hook",
                host="xn--bcher-kva.example",
                port=443,
                ip=PUBLIC_V4,
                scheme="https",
                ips=(PUBLIC_V4,),
            ),
        ),
    ],
)
async def test_public_names_pass_and_resolve_once(url: str, expected: ResolvedTarget) -> None:
    dns = FakeDns(DNS)
    assert await resolve_and_check(url, allow_loopback=False, resolver=dns) == expected
    assert dns.asked == [expected.host]


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.216.34/hook",
        "http://8.8.8.8:8443/hook",
        f"https://[{PUBLIC_V6}]/hook",
        "https://[2606:4700:4700::1111]:8080/hook",
        # DNS64 networks hand out NAT64 addresses for every IPv4-only host.
        "https://[64:ff9b::808:808]/hook",
        "https://[2002:808:808::1]/hook",
    ],
)
async def test_public_literals_pass_without_asking_dns(url: str) -> None:
    dns = FakeDns(DNS)
    target = await resolve_and_check(url, allow_loopback=False, resolver=dns)
    assert ip_address(target.ip) == check_url(url, allow_loopback=False).ip
    assert dns.asked == []


async def test_unknown_name_is_a_resolution_failure_not_a_refusal() -> None:
    with pytest.raises(ResolutionFailed):
        await resolve_and_check("https://nowhere.example.com/", allow_loopback=False, resolver=FakeDns(DNS))


async def test_empty_answer_is_a_resolution_failure() -> None:
    dns = FakeDns({"empty.example.com": []})
    with pytest.raises(ResolutionFailed):
        await resolve_and_check("https://empty.example.com/", allow_loopback=False, resolver=dns)


@pytest.mark.parametrize("ip", ["8.8.8.8", "1.1.1.1", PUBLIC_V4, PUBLIC_V6, "2606:4700::1111"])
def test_public_addresses_have_no_refusal(ip: str) -> None:
    assert ip_refusal(ip_address(ip), allow_loopback=False) is None


def test_unsafe_url_is_a_value_error_carrying_detail() -> None:
    with pytest.raises(ValueError, match=r"loopback: 2130706433 is 127\.0\.0\.1"):
        check_url("http://2130706433/", allow_loopback=False)


async def test_pinned_resolver_answers_only_with_checked_addresses() -> None:
    resolver = PinnedResolver(allow_loopback=False, lookup=FakeDns(DNS))
    answers = await resolver.resolve("dual.example.com", 443, socket.AF_UNSPEC)
    assert [(a["hostname"], a["host"], a["port"], a["family"]) for a in answers] == [
        ("dual.example.com", PUBLIC_V4, 443, socket.AF_INET),
        ("dual.example.com", PUBLIC_V6, 443, socket.AF_INET6),
    ]
    only_v4 = await resolver.resolve("dual.example.com", 443, socket.AF_INET)
    assert [a["host"] for a in only_v4] == [PUBLIC_V4]


async def test_pinned_resolver_refuses_with_an_os_error_carrying_the_reason() -> None:
    resolver = PinnedResolver(allow_loopback=False, lookup=FakeDns(DNS))
    with pytest.raises(BlockedAddress) as info:
        await resolver.resolve("rebind.example.com", 80, socket.AF_UNSPEC)
    assert isinstance(info.value, OSError)
    assert info.value.reason == "private"
    with pytest.raises(BlockedAddress) as named:
        await resolver.resolve("localhost", 80, socket.AF_UNSPEC)
    assert named.value.reason == "loopback"


async def test_pinned_resolver_rechecks_every_lookup_so_rebinding_is_refused() -> None:
    answers = iter([[PUBLIC_V4], ["127.0.0.1"]])

    async def rebinding(host: str) -> list[str]:
        return next(answers)

    resolver = PinnedResolver(allow_loopback=False, lookup=rebinding)
    first = await resolver.resolve("flip.example.com", 443, socket.AF_UNSPEC)
    assert [a["host"] for a in first] == [PUBLIC_V4]
    with pytest.raises(BlockedAddress) as info:
        await resolver.resolve("flip.example.com", 443, socket.AF_UNSPEC)
    assert info.value.reason == "loopback"


async def test_pinned_resolver_reports_lookup_failure_as_resolution_failed() -> None:
    resolver = PinnedResolver(allow_loopback=False, lookup=FakeDns(DNS))
    with pytest.raises(ResolutionFailed):
        await resolver.resolve("nowhere.example.com", 443, socket.AF_UNSPEC)


async def test_system_lookup_resolves_localhost_to_loopback_only() -> None:
    answers = await system_lookup("localhost")
    assert answers
    assert all(ip_address(a).is_loopback for a in answers)
    target = await resolve_and_check("http://localhost:8080/", allow_loopback=True)
    assert ip_address(target.ip).is_loopback
