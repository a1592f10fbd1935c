"""All queries live here, one module per aggregate. Every seller query takes `seller_id`."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class Page(Generic[T]):
    """One page of a newest-first list; `next_cursor` is None on the last page."""

    items: list[T]
    next_cursor: str | None


def encode_cursor(last_id: str) -> str:
    """An opaque cursor: the last id of a page (ids are time-ordered, see `new_id`)."""
    return base64.urlsafe_b64encode(json.dumps({"id": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The id a cursor stands for. Raises ValueError for anything we did not issue."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["id"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError("invalid cursor") from err
    if not isinstance(value, str):
        raise ValueError("invalid cursor")
    return value


class NotFoundError(LookupError):
    """The object does not exist, or belongs to another seller (the same answer for both)."""


class ConflictError(Exception):
    def __init__(self, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.slug = slug
        self.detail = detail
