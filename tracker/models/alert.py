"""Alerts raised on shipments, and customer notifications."""

from datetime import datetime

from sqlalchemy import JSON, Index, text
from sqlmodel import Field, SQLModel

from tracker.models.types import UTCDateTime


class Alert(SQLModel, table=True):
    __tablename__ = "alerts"
    __table_args__ = (
        # one open alert per kind per shipment, enforced by the database
        Index(
            "uq_alerts_open_kind",
            "shipment_id",
            "kind",
            unique=True,
            postgresql_where=text("resolved_at IS NULL"),
            sqlite_where=text("resolved_at IS NULL"),
        ),
        Index("ix_alerts_seller_state", "seller_id", "state", "opened_at"),
        # the scan's resolution pass walks the open alerts of one kind
        Index(
            "ix_alerts_open_by_kind",
            "kind",
            postgresql_where=text("resolved_at IS NULL"),
            sqlite_where=text("resolved_at IS NULL"),
        ),
        # the API lists newest first with an id cursor
        Index("ix_alerts_seller_id", "seller_id", "id"),
        # a seller's resolution holds until the carrier reports something new (the scan checks)
        Index("ix_alerts_shipment_kind", "shipment_id", "kind", "resolved_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    seller_id: str = Field(foreign_key="sellers.id", max_length=40)
    shipment_id: str = Field(foreign_key="shipments.id", max_length=40)
    kind: str = Field(max_length=32)
    state: str = Field(default="open", max_length=16)  # open, acknowledged, resolved
    opened_at: datetime = Field(sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: str | None = Field(default=None, max_length=100)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by: str | None = Field(default=None, max_length=100)
    resolution: str | None = Field(default=None, max_length=32)  # auto, reshipped, refunded, ...
    note: str | None = Field(default=None, max_length=2000)
    reshipment_id: str | None = Field(default=None, max_length=40)
    details: dict[str, object] = Field(default_factory=dict, sa_type=JSON)


class Notification(SQLModel, table=True):
    __tablename__ = "notifications"
    __table_args__ = (
        # once per milestone per shipment, across restarts and workers
        Index("uq_notifications_milestone", "shipment_id", "milestone", unique=True),
        Index("ix_notifications_due", "state", "next_attempt_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    seller_id: str = Field(foreign_key="sellers.id", index=True, max_length=40)
    shipment_id: str = Field(foreign_key="shipments.id", max_length=40)
    milestone: str = Field(max_length=32)  # shipped, out_for_delivery, ..., exception
    channel: str = Field(default="email", max_length=16)
    locale: str = Field(default="en", max_length=16)
    state: str = Field(default="queued", max_length=16)  # queued, sending, sent, failed, invalid
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = Field(default=None, max_length=500)
