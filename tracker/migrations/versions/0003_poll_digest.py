"""shipments.poll_digest: the last carrier answer a poll applied, digested

A routine poll gets back what it already stored. With the digest of that answer (and of
the status it left) kept on the shipment, the poller recognizes it without reading the
stored timeline or fingerprinting the carrier's events again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("shipments") as batch_op:
        batch_op.add_column(sa.Column("poll_digest", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shipments") as batch_op:
        batch_op.drop_column("poll_digest")
