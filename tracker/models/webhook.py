"""Webhook endpoints, the outbox of messages, deliveries and attempts."""

from datetime import datetime
from typing import Any

from sqlalchemy import DDL, JSON, Connection, Index, UniqueConstraint, event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.ddl import BaseDDLElement
from sqlmodel import Field, SQLModel

from tracker.models.types import UTCDateTime


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"

    id: str = Field(primary_key=True, max_length=40)
    seller_id: str = Field(foreign_key="sellers.id", index=True, max_length=40)
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=500)
    event_types: list[str] = Field(default_factory=list, sa_type=JSON)  # empty: all
    secret: str = Field(max_length=100)
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, max_length=200)
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class WebhookMessage(SQLModel, table=True):
    """The outbox: written in the same transaction as the change that causes it."""

    __tablename__ = "webhook_messages"
    __table_args__ = (Index("ix_messages_seller_created", "seller_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=40)  # the webhook-id, same on every retry
    seller_id: str = Field(foreign_key="sellers.id", max_length=40)
    event_type: str = Field(max_length=64)
    shipment_id: str | None = Field(default=None, index=True, max_length=40)
    sequence: int | None = None
    payload: str  # the exact JSON body that is signed and sent
    created_at: datetime = Field(sa_type=UTCDateTime)


#: `SELECT`s whether this PostgreSQL server can compress values with LZ4 (14+, built with it)
LZ4_AVAILABLE = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"


def _lz4_available(
    ddl: BaseDDLElement,
    target: Any,
    bind: Connection | None,
    tables: Any = None,
    state: Any = None,
    *,
    dialect: Dialect,
    compiler: Any = None,
    checkfirst: bool = False,
) -> bool:
    # without a connection (DDL written out as text) there is no server to ask
    if bind is None:
        return False
    return bool(bind.execute(text(LZ4_AVAILABLE)).scalar())


# a first poll's `shipment.updated` payload is past the size PostgreSQL compresses at, and
# LZ4 costs the server half of pglz's CPU a message (migration 0006 does the same)
event.listen(
    WebhookMessage.__table__,  # type: ignore[attr-defined]
    "after_create",
    DDL(  # type: ignore[no-untyped-call]
        "ALTER TABLE %(fullname)s ALTER COLUMN payload SET COMPRESSION lz4"
    ).execute_if(dialect="postgresql", callable_=_lz4_available),
)


class WebhookDelivery(SQLModel, table=True):
    """One message to one endpoint; the unit the dispatcher claims and retries."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("message_id", "endpoint_id", name="uq_delivery_message_endpoint"),
        Index("ix_deliveries_due", "state", "next_attempt_at"),
        Index("ix_deliveries_endpoint", "endpoint_id", "state"),
    )

    id: str = Field(primary_key=True, max_length=40)
    seller_id: str = Field(max_length=40)
    message_id: str = Field(foreign_key="webhook_messages.id", max_length=40)
    endpoint_id: str = Field(foreign_key="webhook_endpoints.id", max_length=40)
    state: str = Field(default="pending", max_length=16)  # pending, succeeded, failed
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status: int | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempts"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(foreign_key="webhook_deliveries.id", index=True, max_length=40)
    attempted_at: datetime = Field(sa_type=UTCDateTime)
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = Field(default=None, max_length=500)
    response_excerpt: str | None = Field(default=None, max_length=1024)
    details: dict[str, object] = Field(default_factory=dict, sa_type=JSON)
