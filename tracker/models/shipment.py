"""Orders, shipments and their tracking events."""

from datetime import date, datetime

from sqlalchemy import JSON, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from tracker.models.types import UTCDateTime

#: sub-statuses of a parcel waiting on customs: what the customs dwell analytics read
CUSTOMS_WAITING = ("customs_processing", "customs_held", "customs_info_required")
#: SQLite tests an IN list of three or more constants through a temporary index it builds
#: afresh for every statement run, so a partial index with such a predicate cost every
#: event insert a few microseconds, customs or not. Equalities joined by OR cost one
#: comparison each; a query uses the index only if it repeats this exact expression.
CUSTOMS_WAITING_SQLITE = " OR ".join(f"sub_status = '{s}'" for s in CUSTOMS_WAITING)
CUSTOMS_WAITING_POSTGRES = f"sub_status IN ({', '.join(repr(s) for s in CUSTOMS_WAITING)})"


#: percent of each PostgreSQL page of the poll schedule filled by inserts (migration 0008)
POLL_SCHEDULE_FILLFACTOR = 50


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    #: the standard the product follows: order numbers never repeat within a seller
    __table_args__ = (UniqueConstraint("seller_id", "order_number", name="uq_orders_seller_number"),)

    id: str = Field(primary_key=True, max_length=40)
    seller_id: str = Field(foreign_key="sellers.id", max_length=40)
    order_number: str = Field(max_length=100)
    #: hash of the customer identity the order was first registered with
    customer_key: str = Field(max_length=64)
    items: list[dict[str, object]] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)


class Shipment(SQLModel, table=True):
    __tablename__ = "shipments"
    __table_args__ = (
        Index("ix_shipments_seller_created", "seller_id", "created_at", "id"),
        Index("ix_shipments_seller_tracking", "seller_id", "tracking_number"),
        Index("ix_shipments_seller_status", "seller_id", "status"),
        Index("ix_shipments_active_status", "active", "status", "last_event_at"),
        # alert rules (tracker/alerts.py): each rule is a range scan on one of these
        Index("ix_shipments_active_status_created", "active", "status", "created_at"),
        Index("ix_shipments_active_sub_status", "active", "sub_status"),
        Index("ix_shipments_active_promised", "active", "promised_delivery"),
        Index("ix_shipments_active_eta", "active", "eta_latest_end", "eta_latest"),
        Index("ix_shipments_active_customs", "active", "customs_since"),
        # the public lookup form searches across sellers by tracking or order number
        Index("ix_shipments_tracking_number", "tracking_number"),
        Index("ix_shipments_order_number", "order_number"),
        # seller analytics (tracker/store/analytics.py): covers every column the lane
        # aggregate reads, in lane order, so one index-only pass needs no table rows and no sort
        Index(
            "ix_shipments_seller_lane",
            "seller_id",
            "carrier",
            "origin_country",
            "dest_country",
            "created_at",
            "status",
            "sub_status",
            "first_event_at",
            "delivered_at",
            "promised_delivery",
            "eta_latest",
            "eta_latest_end",
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    seller_id: str = Field(foreign_key="sellers.id", max_length=40)
    order_id: str = Field(foreign_key="orders.id", index=True, max_length=40)
    order_number: str = Field(max_length=100)
    tracking_number: str = Field(max_length=64)
    carrier: str | None = Field(default=None, max_length=32)
    carrier_candidates: list[str] = Field(default_factory=list, sa_type=JSON)
    status: str = Field(default="pending", max_length=32)
    sub_status: str = Field(default="other", max_length=40)
    public_token: str = Field(max_length=64, unique=True)

    customer_name: str | None = Field(default=None, max_length=200)
    customer_email: str | None = Field(default=None, max_length=320)
    customer_phone: str | None = Field(default=None, max_length=64)
    customer_locale: str = Field(default="en", max_length=16)
    origin_country: str | None = Field(default=None, max_length=2)
    dest_country: str = Field(max_length=2)
    dest_postcode: str | None = Field(default=None, max_length=32)
    dest_city: str | None = Field(default=None, max_length=200)
    dest_address: str | None = Field(default=None, max_length=500)

    promised_delivery: date | None = None
    eta_first: datetime | None = Field(default=None, sa_type=UTCDateTime)
    eta_latest: datetime | None = Field(default=None, sa_type=UTCDateTime)
    eta_latest_end: datetime | None = Field(default=None, sa_type=UTCDateTime)
    eta_source: str | None = Field(default=None, max_length=16)
    signed_by: str | None = Field(default=None, max_length=200)

    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    first_event_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_event_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: when customs processing began, for the customs_held rule and dwell analytics
    customs_since: datetime | None = Field(default=None, sa_type=UTCDateTime)

    #: still polled (its `PollSchedule` has a due time)
    active: bool = Field(default=True)
    confirmed_terminal: bool = False
    stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    stop_reason: str | None = Field(default=None, max_length=64)
    #: digest of the last carrier answer applied and of the status it left; a poll whose
    #: answer and status digest the same has nothing to merge (`tracker.polling`)
    poll_digest: str | None = Field(default=None, max_length=32)

    #: a re-shipment points at the parcel it replaces
    replaces_id: str | None = Field(default=None, foreign_key="shipments.id", index=True, max_length=40)
    #: per-shipment webhook sequence, incremented for each outbox message
    sequence: int = 0
    notify_opt_out: bool = False
    received_confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    pii_erased_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PollSchedule(SQLModel, table=True):
    """When a shipment is polled next and which worker holds it: one row a shipment.

    Every poll writes these columns, most polls nothing else (the carrier's answer is the
    one already stored). On `shipments`, where they were until migration 0008, each such
    write added an entry to every one of its 17 indexes on PostgreSQL, since the due time is
    indexed; here it touches two.
    """

    __tablename__ = "poll_schedule"
    __table_args__ = (
        # the poller's claim query: shipments by due time; NULL means no more polling
        Index(
            "ix_poll_schedule_due",
            "next_poll_at",
            postgresql_where=text("next_poll_at IS NOT NULL"),
            sqlite_where=text("next_poll_at IS NOT NULL"),
        ),
        # a cycle claims shipments that fell due together and share pages; with room left on
        # each page PostgreSQL writes the lease (no indexed column) beside the old row
        # version, without index entries (a HOT update; `bench/pg_fillfactor.py`)
        {"postgresql_with": {"fillfactor": POLL_SCHEDULE_FILLFACTOR}},
    )

    shipment_id: str = Field(primary_key=True, foreign_key="shipments.id", max_length=40)
    next_poll_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    poll_count: int = 0
    poll_errors: int = 0
    last_polled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TrackingEvent(SQLModel, table=True):
    __tablename__ = "tracking_events"
    __table_args__ = (
        # also the index every read of a shipment's timeline goes through: a timeline is a few
        # dozen rows, sorted by time after the read, so a second index on (shipment_id,
        # occurred_at) would only be one more B-tree every event insert updates (migration 0005)
        UniqueConstraint("shipment_id", "fingerprint", name="uq_events_shipment_fingerprint"),
        # customs dwell analytics reads only customs events; they are a small share of all events
        Index(
            "ix_events_customs",
            "shipment_id",
            "occurred_at",
            "sub_status",
            postgresql_where=text(CUSTOMS_WAITING_POSTGRES),
            sqlite_where=text(CUSTOMS_WAITING_SQLITE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    shipment_id: str = Field(foreign_key="shipments.id", max_length=40)
    fingerprint: str = Field(max_length=64)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    time_basis: str = Field(max_length=24)
    local_time: str = Field(max_length=32)
    utc_offset_minutes: int | None = None
    status: str = Field(max_length=32)
    sub_status: str = Field(max_length=40)
    raw_code: str = Field(max_length=64)
    description: str = Field(max_length=1000)
    city: str | None = Field(default=None, max_length=200)
    region: str | None = Field(default=None, max_length=200)
    country: str | None = Field(default=None, max_length=2)
    postcode: str | None = Field(default=None, max_length=32)
    provider: str = Field(default="", max_length=64)
    recorded_at: datetime = Field(sa_type=UTCDateTime)
