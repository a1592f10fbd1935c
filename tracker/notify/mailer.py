"""Customer emails: render (pure, Jinja + message tables + Babel dates) and send over SMTP.

Sending classifies every failure, because the notifier's state machine depends on it:
a refused recipient (5xx on RCPT) is `INVALID` and never retried; 4xx answers, refused or
dropped connections and timeouts are `RETRY`; any other 5xx is `RETRY` too (it is usually our
own configuration, which an operator can fix), bounded by the attempt limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import aiosmtplib
from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, select_autoescape

from carriers import ADAPTERS, adapter_class
from tracker.models import Seller, Shipment
from tracker.notify.messages import pick_language, text
from tracker.settings import EmailSettings

TEMPLATES = Path(__file__).with_name("templates")
DEFAULT_BRAND = "#1f6feb"
_COLOR = re.compile(r"^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$")


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True),
        trim_blocks=False,
        keep_trailing_newline=True,
    )


def carrier_name(code: str | None) -> str | None:
    if code is None:
        return None
    return adapter_class(code).name if code in ADAPTERS else code


@dataclass(frozen=True, slots=True)
class Rendered:
    language: str
    subject: str
    text: str
    html: str


def render(shipment: Shipment, seller: Seller, milestone: str, *, public_url: str, unsubscribe_url: str) -> Rendered:
    lang = pick_language(shipment.customer_locale)
    babel_locale = lang.replace("-", "_")
    seller_name = seller.name
    contact = seller.support_email or seller.support_url
    eta = shipment.eta_latest or shipment.eta_first
    show_eta = eta is not None and milestone in ("shipped", "exception")
    context = {
        "lang": lang,
        "seller": seller_name,
        "subject": text(lang, f"{milestone}.subject", seller=seller_name, order=shipment.order_number),
        "greeting": text(lang, "greeting", name=shipment.customer_name.split()[0])
        if shipment.customer_name
        else text(lang, "greeting_anonymous"),
        "intro": text(lang, f"{milestone}.intro", order=shipment.order_number),
        "tracking_number_label": text(lang, "tracking_number"),
        "tracking_number": shipment.tracking_number,
        "carrier_label": text(lang, "carrier"),
        "carrier": carrier_name(shipment.carrier),
        "eta": text(lang, "eta", date=format_date(eta, format="long", locale=babel_locale))
        if show_eta and eta is not None
        else None,
        "track": text(lang, "track"),
        "tracking_url": f"{public_url}/t/{shipment.public_token}",
        "contact": text(lang, "contact", seller=seller_name, contact=contact) if contact else None,
        "why": text(lang, "why", seller=seller_name),
        "unsubscribe": text(lang, "unsubscribe"),
        "unsubscribe_url": unsubscribe_url,
        "logo_url": seller.logo_url if seller.logo_url and seller.logo_url.startswith("https://") else None,
        "brand_color": seller.brand_color if seller.brand_color and _COLOR.match(seller.brand_color) else DEFAULT_BRAND,
    }
    env = environment()
    return Rendered(
        language=lang,
        subject=str(context["subject"]),
        text=env.get_template("email.txt.j2").render(context),
        html=env.get_template("email.html.j2").render(context),
    )


def compose(
    rendered: Rendered,
    *,
    to: str,
    from_address: str,
    seller: Seller,
    message_id: str,
    unsubscribe_url: str,
    now: datetime,
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = rendered.subject
    msg["From"] = formataddr((seller.name, from_address))
    msg["To"] = to
    if seller.support_email:
        msg["Reply-To"] = seller.support_email
    msg["Date"] = format_datetime(now)
    # a stable id per notification lets mail systems drop the rare resend after a crash
    msg["Message-ID"] = message_id
    msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    # after the parts exist: making the message multipart moves Content-* headers into them
    msg["Content-Language"] = rendered.language
    return msg


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    detail: str = ""


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> SendResult: ...


class SmtpMailer:
    """One SMTP transaction per message through aiosmtplib."""

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> SendResult:
        s = self.settings
        try:
            await aiosmtplib.send(
                message,
                hostname=s.host,
                port=s.port,
                use_tls=s.use_tls,
                start_tls=s.start_tls,
                username=s.username or None,
                password=s.password or None,
                timeout=s.timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as err:
            codes = [r.code for r in err.recipients]
            detail = "; ".join(f"{r.code} {r.message}" for r in err.recipients)
            return SendResult(Outcome.INVALID if all(c >= 500 for c in codes) else Outcome.RETRY, detail[:500])
        except aiosmtplib.SMTPResponseException as err:
            if isinstance(err, aiosmtplib.SMTPRecipientRefused) and err.code >= 500:
                return SendResult(Outcome.INVALID, f"{err.code} {err.message}"[:500])
            return SendResult(Outcome.RETRY, f"{err.code} {err.message}"[:500])
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as err:
            return SendResult(Outcome.RETRY, f"{type(err).__name__}: {err}"[:500])
        return SendResult(Outcome.SENT)
