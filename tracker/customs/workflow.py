"""Dossier status machine: draft -> validated -> approved (clerk) -> submitted -> released,
or rejected (back to the seller for correction). Every step is audited and announced."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from tracker.models import AuditLog, Declaration
from tracker.store import sellers as seller_store
from tracker.store.outbox import enqueue

#: action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "validate": (frozenset({"draft", "validated", "rejected"}), "validated"),
    "approve": (frozenset({"validated"}), "approved"),
    "submit": (frozenset({"approved"}), "submitted"),
    "release": (frozenset({"submitted"}), "released"),
    "reject": (frozenset({"validated", "approved", "submitted"}), "rejected"),
}
#: a seller may correct the dossier until a clerk approves it; any edit sends it back to draft
EDITABLE: frozenset[str] = frozenset({"draft", "validated", "rejected"})
#: keys whose actions make them an author of the dossier's content
AUTHOR_ACTIONS: frozenset[str] = frozenset({"declaration.created", "declaration.updated"})
_ENTRY = re.compile(r"^(\d{4})(\d{4})([01])(\d{9})$")


class TransitionError(Exception):
    def __init__(self, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.slug = slug
        self.detail = detail


def check_transition(decl: Declaration, action: str) -> str:
    sources, target = TRANSITIONS[action]
    if decl.status not in sources:
        allowed = ", ".join(sorted(sources))
        raise TransitionError(
            "invalid-transition", f"Cannot {action} a dossier in status {decl.status}; it must be one of: {allowed}."
        )
    return target


def check_editable(decl: Declaration) -> None:
    if decl.status not in EDITABLE:
        raise TransitionError("not-editable", f"A dossier in status {decl.status} can no longer be changed.")


def check_four_eyes(trail: Iterable[AuditLog], approver_prefix: str) -> None:
    """The approving key must not be one that wrote the dossier."""
    authors = {row.actor for row in trail if row.action in AUTHOR_ACTIONS}
    if approver_prefix in authors:
        raise TransitionError(
            "same-key-approval",
            "The key that created or edited a dossier cannot approve it; "
            "use a clerk key (scope declarations:review) of another person.",
        )


def entry_number_error(value: str, now: datetime) -> str | None:
    """The 18-digit customs declaration number: customs office (4), year (4), 0 for export, serial (9)."""
    m = _ENTRY.match(value)
    if m is None:
        return "the customs entry number has 18 digits"
    year = int(m.group(2))
    if not 2000 <= year <= now.year + 1:
        return f"digits 5-8 are the year; {year} is not plausible"
    if m.group(3) != "0":
        return "digit 9 is the import/export flag and must be 0 on an export declaration"
    return None


async def move(
    session: AsyncSession,
    decl: Declaration,
    target: str,
    *,
    actor: str,
    action: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    """Change status, and write the audit row and the outbox message in the same transaction."""
    previous = decl.status
    decl.status = target
    decl.updated_at = now
    session.add(decl)
    await seller_store.audit(
        session,
        seller_id=decl.seller_id,
        actor=actor,
        action=action,
        object_type="declaration",
        object_id=decl.id,
        now=now,
        details={"from": previous, "to": target, **(details or {})},
    )
    if previous != target:
        await enqueue(
            session,
            seller_id=decl.seller_id,
            event_type="declaration.status_changed",
            now=now,
            data={
                "id": decl.id,
                "shipment_id": decl.shipment_id,
                "from": previous,
                "to": target,
                "entry_number": decl.entry_number,
                "reason": decl.reject_reason if target == "rejected" else None,
            },
        )
