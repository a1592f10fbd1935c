"""PostgreSQL: shipments pages filled to 50%

Migration 0004 left 30% of each page free, so that a claim's lease update could be written
beside the old row without new index entries (a HOT update). But a cycle claims the
shipments of a page together: shipments created together share pages and fall due together.
At 70% only about a third of a page's rows found room, and the rest of the claim updated all
17 indexes. At 50% every claim is HOT: `bench/pg_fillfactor.py`, three cycles over 20,000
shipments, measured 30.8 us of server CPU a claimed shipment at 70% and 11.2 us at 50%
(82.5 us with the default 100%). The table was smaller too, 13.1 MiB against 20.1 MiB,
because updates that stay on their page leave no dead versions elsewhere.

As with 0004, the setting applies to pages written from now on; `VACUUM FULL shipments`
(which locks the table) rewrites the existing ones. SQLite has no such setting.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 15:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILLFACTOR = 50
PREVIOUS = 70


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE shipments SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE shipments SET (fillfactor = {PREVIOUS})")
