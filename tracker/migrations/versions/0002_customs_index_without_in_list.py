"""customs index predicate without an IN list on SQLite

SQLite tests an IN list of three or more constants through a temporary index it builds
for every statement run, so the partial index `ix_events_customs` cost every event insert
a few microseconds. The same predicate written as equalities joined by OR costs a
comparison each. PostgreSQL keeps its predicate.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 21:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["shipment_id", "occurred_at", "sub_status"]
WITH_OR = "sub_status = 'customs_processing' OR sub_status = 'customs_held' OR sub_status = 'customs_info_required'"
WITH_IN = "sub_status IN ('customs_processing', 'customs_held', 'customs_info_required')"


def _recreate(predicate: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.drop_index("ix_events_customs", table_name="tracking_events")
    op.create_index("ix_events_customs", "tracking_events", COLUMNS, sqlite_where=sa.text(predicate))


def upgrade() -> None:
    _recreate(WITH_OR)


def downgrade() -> None:
    _recreate(WITH_IN)
