"""PostgreSQL: outbox payloads compressed with LZ4

A `shipment.updated` message of a first poll lists a dozen events: about 3 KB of JSON,
past the 2 KB at which PostgreSQL compresses a value before storing it. With the default
pglz, inserting a poll's messages cost the server about 20 us of CPU a message; with LZ4,
about 10 us, for 5% more space (`bench/pg_payload_compression.py`). LZ4 also decompresses
faster when the dispatcher reads a payload to deliver it.

Values already stored keep their compression; new ones use LZ4. Needs PostgreSQL 14 or
later built with LZ4 (Debian's and the official images are); elsewhere this changes
nothing. SQLite does not compress.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 14:50:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LZ4_AVAILABLE = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and bind.execute(text(LZ4_AVAILABLE)).scalar():
        op.execute("ALTER TABLE webhook_messages ALTER COLUMN payload SET COMPRESSION lz4")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and bind.execute(text(LZ4_AVAILABLE)).scalar():
        op.execute("ALTER TABLE webhook_messages ALTER COLUMN payload SET COMPRESSION DEFAULT")
