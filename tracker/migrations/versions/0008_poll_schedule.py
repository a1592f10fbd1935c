"""poll_schedule: the polling columns of shipments in a narrow table of their own

Every poll writes a shipment's due time, lease and poll counters; most polls write nothing
else, since the carrier's answer is the one already stored. On PostgreSQL an update that
changes an indexed column (the due time is one) adds an entry to every index of the table,
and shipments has 17. `bench/pg_fillfactor.py`, three cycles over 20,000 shipments,
measured the write-back of a poll at 52.5 us of server CPU a shipment there, and 5.5 us on
this table.

Every shipment gets a row with the values it had. The fillfactor of 50 that 0007 gave
shipments for the claim's lease moves here with the lease; shipments goes back to the
default. SQLite copies the shipments table to drop the columns.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import tracker.models.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILLFACTOR = 50
#: shipments' fillfactor before this revision (0007)
SHIPMENTS_PREVIOUS = 50
MOVED = ("next_poll_at", "lease_owner", "lease_until", "poll_count", "poll_errors", "last_polled_at")
DUE = sa.text("next_poll_at IS NOT NULL")


def _moved_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("next_poll_at", tracker.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("lease_until", tracker.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("poll_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("poll_errors", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_polled_at", tracker.models.types.UTCDateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "poll_schedule",
        sa.Column("shipment_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        *_moved_columns(),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipments.id"]),
        sa.PrimaryKeyConstraint("shipment_id"),
        postgresql_with={"fillfactor": FILLFACTOR},
    )
    columns = ", ".join(MOVED)
    op.execute(f"INSERT INTO poll_schedule (shipment_id, {columns}) SELECT id, {columns} FROM shipments")
    # the models declare no server defaults; they were only there to fill the copied rows
    with op.batch_alter_table("poll_schedule") as batch_op:
        batch_op.alter_column("poll_count", server_default=None)
        batch_op.alter_column("poll_errors", server_default=None)
    op.create_index("ix_poll_schedule_due", "poll_schedule", ["next_poll_at"], postgresql_where=DUE, sqlite_where=DUE)
    with op.batch_alter_table("shipments") as batch_op:
        batch_op.drop_index("ix_shipments_due", postgresql_where=DUE, sqlite_where=DUE)
        for name in MOVED:
            batch_op.drop_column(name)
    if postgres:
        op.execute("ALTER TABLE shipments RESET (fillfactor)")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("shipments") as batch_op:
        for column in _moved_columns():
            batch_op.add_column(column)
    # one statement for all six: on PostgreSQL each UPDATE writes a new version of every row
    values = ", ".join(f"{name} = p.{name}" for name in MOVED)
    op.execute(f"UPDATE shipments SET {values} FROM poll_schedule AS p WHERE p.shipment_id = shipments.id")
    with op.batch_alter_table("shipments") as batch_op:
        batch_op.alter_column("poll_count", server_default=None)
        batch_op.alter_column("poll_errors", server_default=None)
        batch_op.create_index("ix_shipments_due", ["next_poll_at"], postgresql_where=DUE, sqlite_where=DUE)
    op.drop_index("ix_poll_schedule_due", table_name="poll_schedule", postgresql_where=DUE, sqlite_where=DUE)
    op.drop_table("poll_schedule")
    if postgres:
        op.execute(f"ALTER TABLE shipments SET (fillfactor = {SHIPMENTS_PREVIOUS})")
