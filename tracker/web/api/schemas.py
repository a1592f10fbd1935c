"""Request shapes of the seller API. Unknown fields are refused so typos never pass silently."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from carriers import ADAPTERS
from tracker.store.shipments import NewShipment

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


def _country(v: str) -> str:
    v = v.strip().upper()
    if len(v) != 2 or pycountry.countries.get(alpha_2=v) is None:
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return v


def _email(v: str) -> str:
    v = v.strip()
    if not _EMAIL.match(v):
        raise ValueError("not an email address")
    return v


def _locale(v: str) -> str:
    if not _LOCALE.match(v):
        raise ValueError("not a language tag such as en, zh-Hans or pt-BR")
    return v.replace("_", "-")


def _carrier(v: str) -> str:
    v = v.strip().lower()
    if v not in ADAPTERS:
        raise ValueError(f"unknown carrier; known: {', '.join(sorted(ADAPTERS))}")
    return v


def _tracking_number(v: str) -> str:
    cleaned = "".join(ch for ch in v.upper() if ch.isalnum())
    if not 5 <= len(cleaned) <= 40:
        raise ValueError("a tracking number has 5 to 40 letters and digits")
    return cleaned


Country = Annotated[str, AfterValidator(_country)]
Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(_email)]
Locale = Annotated[str, StringConstraints(max_length=16), AfterValidator(_locale)]
CarrierCode = Annotated[str, AfterValidator(_carrier)]
TrackingNumber = Annotated[str, StringConstraints(max_length=64), AfterValidator(_tracking_number)]
OrderNumber = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Customer(_Strict):
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    email: Email | None = None
    phone: Annotated[str, StringConstraints(max_length=64)] | None = None
    locale: Locale = "en"


class Destination(_Strict):
    country: Country
    postcode: Annotated[str, StringConstraints(max_length=32)] | None = None
    city: Annotated[str, StringConstraints(max_length=200)] | None = None
    address: Annotated[str, StringConstraints(max_length=500)] | None = None


class Item(_Strict):
    sku: Annotated[str, StringConstraints(max_length=100)] | None = None
    description: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    quantity: int = Field(ge=1, le=1_000_000)
    unit_price: Annotated[str, StringConstraints(pattern=r"^\d{1,12}(\.\d{1,4})?$")] | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    hs_code: Annotated[str, StringConstraints(pattern=r"^\d{6,10}$")] | None = None


class ShipmentCreate(_Strict):
    tracking_number: TrackingNumber
    carrier: CarrierCode | None = None
    order_number: OrderNumber
    customer: Customer = Customer()
    destination: Destination
    origin_country: Country | None = None
    promised_delivery: date | None = None
    items: list[Item] = Field(default_factory=list, max_length=200)
    #: the id of the parcel this one replaces (re-shipment)
    replaces: Annotated[str, StringConstraints(max_length=40)] | None = None

    def to_new_shipment(self) -> NewShipment:
        return NewShipment(
            tracking_number=self.tracking_number,
            order_number=self.order_number,
            dest_country=self.destination.country,
            carrier=self.carrier,
            customer_name=self.customer.name,
            customer_email=self.customer.email,
            customer_phone=self.customer.phone,
            customer_locale=self.customer.locale,
            dest_postcode=self.destination.postcode,
            dest_city=self.destination.city,
            dest_address=self.destination.address,
            origin_country=self.origin_country,
            promised_delivery=self.promised_delivery,
            items=[i.model_dump(exclude_none=True) for i in self.items],
            replaces=self.replaces,
        )


class ShipmentBatch(_Strict):
    shipments: list[dict[str, object]] = Field(min_length=1, max_length=100)


class ShipmentUpdate(_Strict):
    carrier: CarrierCode | None = None
    promised_delivery: date | None = None


class ListFilters(_Strict):
    status: str | None = None
    carrier: str | None = None
    has_open_alert: bool | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    order_number: str | None = None
    tracking_number: str | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = None
