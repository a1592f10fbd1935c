"""Languages of the customer-facing pages: negotiation, gettext catalogs (Babel), localized
dates, country names and the wording of statuses.

Language tags on the wire are BCP 47 (`zh-Hans`); catalogs and Babel locales use the
underscore form (`zh_Hans`).
"""

from __future__ import annotations

import gettext
import io
import logging
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_time, get_timezone_gmt
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

log = logging.getLogger("tracker.i18n")

LOCALES_DIR = Path(__file__).with_name("locales")
DOMAIN = "messages"
DEFAULT = "en"
#: BCP 47 tag -> the language's own name, in switcher order
LANGUAGES: dict[str, str] = {
    "en": "English",
    "zh-Hans": "简体中文",
    "es": "Español",
    "fr": "Français",
    "de": "Deutsch",
    "ru": "Русский",
    "pt": "Português",
    "ja": "日本語",
}
COOKIE = "lang"
#: primary subtags that map onto one of our tags when the region or script differs
_PRIMARY = {tag.split("-")[0].lower(): tag for tag in LANGUAGES}


def _N(message: str) -> str:
    """Marks a string for extraction; translated later, when the language is known."""
    return message


STATUS_TEXT: dict[str, str] = {
    "pending": _N("Waiting for the carrier"),
    "info_received": _N("Label created"),
    "in_transit": _N("In transit"),
    "out_for_delivery": _N("Out for delivery"),
    "available_for_pickup": _N("Ready for pickup"),
    "failed_attempt": _N("Delivery attempted"),
    "delivered": _N("Delivered"),
    "exception": _N("Delivery problem"),
    "returned": _N("Returned to sender"),
    "expired": _N("No recent updates"),
}

SUB_STATUS_TEXT: dict[str, str] = {
    "label_created": _N("The shipping label was created"),
    "picked_up": _N("Picked up by the carrier"),
    "departed": _N("Left a sorting facility"),
    "arrived": _N("Arrived at a sorting facility"),
    "in_transit": _N("On its way"),
    "customs_processing": _N("Being processed by customs"),
    "customs_released": _N("Released by customs"),
    "customs_info_required": _N("Customs needs more information"),
    "customs_held": _N("Held by customs"),
    "handed_to_last_mile": _N("Handed to the local delivery company"),
    "out_for_delivery": _N("With the courier for delivery"),
    "delayed": _N("Delayed"),
    "damaged": _N("Damaged in transit"),
    "lost": _N("Reported lost"),
    "refused": _N("Delivery was refused"),
    "address_issue": _N("Problem with the delivery address"),
    "recipient_unavailable": _N("Nobody was available to receive it"),
    "returning": _N("On its way back to the sender"),
    "returned_to_sender": _N("Back with the sender"),
    "signed": _N("Signed for on delivery"),
    "left_at_door": _N("Left at the door"),
    "pickup_point": _N("Waiting at a pickup point"),
    "not_found": _N("Not yet found at the carrier"),
}

MILESTONES: tuple[tuple[str, str], ...] = (
    ("info_received", _N("Info received")),
    ("in_transit", _N("In transit")),
    ("customs", _N("Customs")),
    ("out_for_delivery", _N("Out for delivery")),
    ("delivered", _N("Delivered")),
)

MILESTONE_STATE: dict[str, str] = {
    "done": _N("completed"),
    "current": _N("current step"),
    "todo": _N("not reached yet"),
}

#: (heading, message) of the error pages
NOT_FOUND = (
    _N("Page not found"),
    _N("This tracking link is not valid. Check the link in your email, or look up your parcel by its number."),
)
TOO_MANY = (_N("Too many requests"), _N("Please wait a moment, then try again."))
FORBIDDEN = (_N("Request not accepted"), _N("Please go back to the tracking page, reload it and try again."))
NEED_FACTOR = _N("Enter the destination postcode or the email address you ordered with as well.")
NO_MATCH = _N("We could not find a parcel with these details. Check the number and the postcode or email address.")


def canonical(tag: str | None) -> str | None:
    """One of LANGUAGES for a tag like `zh`, `zh-CN`, `zh_Hans`, `pt-BR`, `FR`; else None."""
    if not tag:
        return None
    clean = tag.strip().replace("_", "-")
    for known in LANGUAGES:
        if clean.lower() == known.lower():
            return known
    return _PRIMARY.get(clean.split("-")[0].lower())


def parse_accept_language(header: str) -> list[str]:
    """Language ranges by descending quality (stable for equal q); q=0 ranges dropped."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        piece = part.strip()
        if not piece:
            continue
        name, _, params = piece.partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            ranked.append((-q, i, name.strip()))
    return [name for _, _, name in sorted(ranked)]


def negotiate(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The page language: an explicit ?lang= first, then the cookie the switcher set, then
    the browser's Accept-Language, then English."""
    for candidate in (query, cookie):
        found = canonical(candidate)
        if found:
            return found
    for name in parse_accept_language(accept_language or ""):
        found = canonical(name)
        if found:
            return found
    return DEFAULT


def babel_name(tag: str) -> str:
    return tag.replace("-", "_")


@lru_cache(maxsize=16)
def locale(tag: str) -> Locale:
    return Locale.parse(babel_name(tag))


def _compile_in_memory(po_path: Path) -> Translations:
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=po_path.parents[1].name, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf, domain=DOMAIN)


@lru_cache(maxsize=16)
def translations(tag: str) -> gettext.NullTranslations:
    """The catalog of `tag`. A checkout without compiled .mo files (or with stale ones)
    compiles the .po in memory, so the pages work before `make catalogs` has run."""
    base = LOCALES_DIR / babel_name(tag) / "LC_MESSAGES"
    po, mo = base / f"{DOMAIN}.po", base / f"{DOMAIN}.mo"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fh:
            return Translations(fp=fh, domain=DOMAIN)
    if po.exists():
        return _compile_in_memory(po)
    if tag != DEFAULT:
        log.warning("no catalog for language", extra={"lang": tag})
    return gettext.NullTranslations()


def status_text(tag: str, status: str) -> str:
    return translations(tag).gettext(STATUS_TEXT.get(status, STATUS_TEXT["in_transit"]))


def sub_status_text(tag: str, sub_status: str) -> str:
    """Wording of a sub-status, or "" when it adds nothing (`other`, unknown values)."""
    message = SUB_STATUS_TEXT.get(sub_status)
    return translations(tag).gettext(message) if message else ""


def country_name(tag: str, code: str | None) -> str:
    if not code:
        return ""
    return str(locale(tag).territories.get(code.upper(), code.upper()))


def wall_clock(occurred_at: datetime, local_time: str, offset_minutes: int | None) -> tuple[datetime, timezone | None]:
    """The event's time as the place's wall clock: from the UTC instant and the offset when
    the offset is known, else the carrier's own wall-clock text (offset unknown)."""
    if offset_minutes is not None:
        zone = timezone(timedelta(minutes=offset_minutes))
        return occurred_at.astimezone(zone), zone
    try:
        parsed = datetime.fromisoformat(local_time)
    except ValueError:
        return occurred_at.astimezone(UTC), UTC
    # the carrier gave wall-clock digits only; UTC is a neutral carrier for them, never shown
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)), None


def format_event_time(tag: str, occurred_at: datetime, local_time: str, offset_minutes: int | None) -> str:
    """`Mar 3, 2026, 2:05 PM (GMT+08:00)` in the page language, at the place of the event."""
    moment, zone = wall_clock(occurred_at, local_time, offset_minutes)
    loc = locale(tag)
    day = format_date(moment.date(), format="medium", locale=loc)
    clock = format_time(moment.timetz(), format="short", locale=loc)
    text = str(loc.datetime_formats["medium"]).format(clock, day)
    if zone is None:
        return text
    return f"{text} ({get_timezone_gmt(moment, width='long', locale=loc)})"


def format_day(tag: str, day: date | datetime) -> str:
    value = day.astimezone(UTC).date() if isinstance(day, datetime) else day
    return format_date(value, format="long", locale=locale(tag))
