"""tracking_events without the (shipment_id, occurred_at) index

Every read of events is one shipment's timeline: the unique (shipment_id, fingerprint)
index finds its rows, and sorting a few dozen rows by time costs nothing. The second index
on (shipment_id, occurred_at) only made every event insert update one more B-tree, and
polling inserts a dozen events for every shipment it sees for the first time.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 12:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_events_shipment_time", table_name="tracking_events")


def downgrade() -> None:
    op.create_index("ix_events_shipment_time", "tracking_events", ["shipment_id", "occurred_at"])
