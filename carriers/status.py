"""The status taxonomy every adapter maps into (DESIGN §4, a contract).

`tracker` uses these same enums; values are stable strings stored in the database and
sent in webhooks, so never rename a member.
"""

from __future__ import annotations

import logging
from enum import StrEnum

log = logging.getLogger("carriers.status")


class Status(StrEnum):
    PENDING = "pending"
    INFO_RECEIVED = "info_received"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    FAILED_ATTEMPT = "failed_attempt"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    RETURNED = "returned"
    EXPIRED = "expired"


class SubStatus(StrEnum):
    LABEL_CREATED = "label_created"
    PICKED_UP = "picked_up"
    DEPARTED = "departed"
    ARRIVED = "arrived"
    IN_TRANSIT = "in_transit"
    CUSTOMS_PROCESSING = "customs_processing"
    CUSTOMS_RELEASED = "customs_released"
    CUSTOMS_INFO_REQUIRED = "customs_info_required"
    CUSTOMS_HELD = "customs_held"
    HANDED_TO_LAST_MILE = "handed_to_last_mile"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELAYED = "delayed"
    DAMAGED = "damaged"
    LOST = "lost"
    REFUSED = "refused"
    ADDRESS_ISSUE = "address_issue"
    RECIPIENT_UNAVAILABLE = "recipient_unavailable"
    RETURNING = "returning"
    RETURNED_TO_SENDER = "returned_to_sender"
    SIGNED = "signed"
    LEFT_AT_DOOR = "left_at_door"
    PICKUP_POINT = "pickup_point"
    NOT_FOUND = "not_found"
    OTHER = "other"


#: A shipment in one of these states gets no further updates unless a newer event says so.
TERMINAL: frozenset[Status] = frozenset({Status.DELIVERED, Status.RETURNED, Status.EXPIRED})

#: Customs sub-statuses, used by alert rules and the customs dwell-time analytics.
CUSTOMS: frozenset[SubStatus] = frozenset(
    {
        SubStatus.CUSTOMS_PROCESSING,
        SubStatus.CUSTOMS_INFO_REQUIRED,
        SubStatus.CUSTOMS_HELD,
    }
)

#: Progress rank: how far along the journey a status is. Used to refuse regressions.
RANK: dict[Status, int] = {
    Status.PENDING: 0,
    Status.INFO_RECEIVED: 1,
    Status.IN_TRANSIT: 2,
    Status.EXCEPTION: 2,
    Status.FAILED_ATTEMPT: 3,
    Status.AVAILABLE_FOR_PICKUP: 3,
    Status.OUT_FOR_DELIVERY: 3,
    Status.RETURNED: 4,
    Status.DELIVERED: 4,
    Status.EXPIRED: 4,
}

_unknown_seen: set[tuple[str, str]] = set()


def unknown_code(carrier: str, code: str, parent: Status) -> tuple[Status, SubStatus]:
    """Map a code we have no entry for to a safe parent with sub-status `other`.

    Logged once per (carrier, code) so a new carrier code shows up in the logs without
    flooding them on every poll.
    """
    key = (carrier, code)
    if key not in _unknown_seen:
        _unknown_seen.add(key)
        log.warning(
            "unknown carrier status code",
            extra={"carrier": carrier, "raw_code": code, "mapped_to": parent.value},
        )
    return parent, SubStatus.OTHER
