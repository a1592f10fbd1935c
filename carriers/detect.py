"""Tracking-number formats and check digits -> ranked carrier candidates.

Formats follow reference/carrier-apis.md §9 (jkeen/tracking_number_data). Numeric formats
overlap (a 12-digit number can be FedEx or DHL Paket), so a format with a check digit only
counts when the digit verifies, and verified formats rank above formats that have none.
17TRACK is an aggregator: it is offered only as the way to reach postal (S10), Cainiao,
YunExpress and SF numbers, never as a guess of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

AGGREGATOR = "17track"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One way to read a number: which carrier, which format, and whether its check digit held."""

    code: str
    kind: str
    check_digit_ok: bool | None  # None: the format has no check digit


#: ASCII characters that are not letters or digits, deleted by `str.translate`
_ASCII_SEPARATORS = {i: None for i in range(128) if not chr(i).isalnum()}


def normalize(number: str) -> str:
    """Upper case, with spaces, dashes and other separators removed."""
    upper = number.upper()
    if upper.isascii():  # the usual case, without a Python-level loop over characters
        return upper.translate(_ASCII_SEPARATORS)
    return "".join(ch for ch in upper if ch.isalnum())


# --- check digits -----------------------------------------------------------------------


def _digits(text: str) -> list[int]:
    return [int(c) for c in text]


def s10_ok(number: str) -> bool:
    """UPU S10: weights 8 6 4 2 3 5 9 7 over the serial, mod 11 with 10->0 and 11->5."""
    serial, check = _digits(number[2:10]), int(number[10])
    r = sum(d * w for d, w in zip(serial, (8, 6, 4, 2, 3, 5, 9, 7), strict=True)) % 11
    expected = {0: 5, 1: 0}.get(r, 11 - r)
    return expected == check


def _ups_value(ch: str) -> int:
    return int(ch) if ch.isdigit() else (ord(ch) - 3) % 10


def ups_ok(body: str) -> bool:
    """UPS mod 10 over `body` (check digit last); letters map to (ord - 3) mod 10."""
    serial, check = body[:-1], int(body[-1])
    total = sum(_ups_value(c) * (2 if i % 2 else 1) for i, c in enumerate(serial))
    return (10 - total % 10) % 10 == check


def gs1_ok(number: str) -> bool:
    """GS1 mod 10: weights 3, 1, 3, … from the digit next to the check digit leftwards."""
    serial, check = _digits(number[:-1]), int(number[-1])
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(serial)))
    return (10 - total % 10) % 10 == check


def fedex12_ok(number: str) -> bool:
    """FedEx Express: weights 3 1 7 over the first 11 digits, mod 11 then mod 10."""
    serial, check = _digits(number[:11]), int(number[11])
    total = sum(d * (3, 1, 7)[i % 3] for i, d in enumerate(serial))
    return total % 11 % 10 == check


def dhl_express_ok(number: str) -> bool:
    """DHL Express: the serial modulo 7 is the check digit."""
    return int(number[:-1]) % 7 == int(number[-1])


def _impb_ok(number: str) -> bool:
    for prefix in (r"420\d{9}", r"420\d{5}", ""):
        m = re.fullmatch(prefix + r"(9[2-5]\d{18,24})", number)
        if m and gs1_ok(m.group(1)):
            return True
    return False


# --- format table (order = rank among equally verified candidates) ----------------------


@dataclass(frozen=True, slots=True)
class Format:
    kind: str
    pattern: re.Pattern[str]
    codes: tuple[str, ...]  # direct carrier first, 17TRACK as the fallback where it applies
    check: Callable[[str], bool] | None = None


def _f(kind: str, regex: str, codes: tuple[str, ...], check: Callable[[str], bool] | None = None) -> Format:
    return Format(kind, re.compile(regex), codes, check)


FORMATS: tuple[Format, ...] = (
    _f("s10_us", r"[A-Z]{2}\d{9}US", ("usps", AGGREGATOR), s10_ok),
    _f("s10", r"[A-Z]{2}\d{9}(?!US)[A-Z]{2}", (AGGREGATOR,), s10_ok),
    _f("ups_1z", r"1Z[0-9A-Z]{15}\d", ("ups",), lambda n: ups_ok(n[2:])),
    _f("ups_waybill", r"[AHJKTV]\d{10}", ("ups",), lambda n: ups_ok(n[1:])),
    _f("sf_express", r"SF\d{13}", ("sf_express", AGGREGATOR)),
    _f("yunexpress", r"YT\d{16}", (AGGREGATOR,)),
    _f("cainiao", r"LP\d{14}", (AGGREGATOR,)),
    _f("fedex_express_12", r"\d{12}", ("fedex",), fedex12_ok),
    _f("fedex_ground_15", r"\d{15}", ("fedex",), gs1_ok),
    _f("fedex_ground_96", r"96\d{20}", ("fedex",), lambda n: gs1_ok(n[-15:])),
    # the 34-digit barcode ends with the 12-digit Express number and its check digit
    _f("fedex_34", r"[0-8]\d{33}|96\d{32}", ("fedex",), lambda n: fedex12_ok(n[-12:])),
    _f("usps_impb", r"(420\d{5}(\d{4})?)?9[2-5]\d{18,24}", ("usps",), _impb_ok),
    _f("dhl_paket_sscc", r"00340434\d{12}", ("dhl",), gs1_ok),
    _f("usps_20", r"\d{20}", ("usps",), gs1_ok),
    _f("fedex_sscc", r"(00)?\d{18}", ("fedex",), gs1_ok),
    _f("dhl_express", r"\d{10,11}", ("dhl",), dhl_express_ok),
    _f("dhl_express_piece", r"J[A-Z]{2,3}\d{9,10}", ("dhl",)),
    _f("dhl_ecommerce", r"(GM|LX|RX|UV|CN|SG|TH|IN|HK|MY)[0-9A-Z]{10,39}", ("dhl",)),
    _f("dhl_paket_12", r"\d{12}", ("dhl",)),
)

_S10_SHAPE = re.compile(r"[A-Z]{2}\d{9}[A-Z]{2}")


def describe(number: str) -> list[Candidate]:
    """Every format `number` matches, with the carrier codes it leads to, in rank order.

    Candidates whose check digit fails are listed (check_digit_ok False) so callers can tell
    a typo from an unknown format; `detect` drops them.
    """
    norm = normalize(number)
    verified: list[Candidate] = []
    unchecked: list[Candidate] = []
    failed: list[Candidate] = []
    for fmt in FORMATS:
        if not fmt.pattern.fullmatch(norm):
            continue
        # a number shaped exactly like S10 is a postal number, typo or not
        if fmt.kind == "dhl_ecommerce" and _S10_SHAPE.fullmatch(norm):
            continue
        ok = fmt.check(norm) if fmt.check is not None else None
        bucket = verified if ok else unchecked if ok is None else failed
        bucket.extend(Candidate(code, fmt.kind, ok) for code in fmt.codes)
    return verified + unchecked + failed


def detect(number: str) -> list[str]:
    """Ranked candidate carrier codes for `number` (check digits verified)."""
    codes: list[str] = []
    for cand in describe(number):
        if cand.check_digit_ok is not False and cand.code not in codes:
            codes.append(cand.code)
    # the aggregator is a fallback: keep it behind every direct carrier
    if AGGREGATOR in codes:
        codes.remove(AGGREGATOR)
        codes.append(AGGREGATOR)
    return codes
