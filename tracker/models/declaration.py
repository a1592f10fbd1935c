"""Customs declaration dossiers and their lines."""

from datetime import datetime

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from tracker.models.types import UTCDateTime


class Declaration(SQLModel, table=True):
    __tablename__ = "declarations"
    __table_args__ = (Index("ix_declarations_seller_status", "seller_id", "status", "created_at"),)

    id: str = Field(primary_key=True, max_length=40)
    seller_id: str = Field(foreign_key="sellers.id", max_length=40)
    shipment_id: str | None = Field(default=None, foreign_key="shipments.id", index=True, max_length=40)
    #: draft, validated, approved, submitted, released, rejected
    status: str = Field(default="draft", max_length=16)
    #: every header field of the forms (exporter, consignee, trade terms, codes...)
    header: dict[str, object] = Field(default_factory=dict, sa_type=JSON)
    currency: str = Field(max_length=3)
    total_value: str = Field(default="0", max_length=32)  # decimal as text: exact on every backend
    entry_number: str | None = Field(default=None, max_length=18)
    reject_reason: str | None = Field(default=None, max_length=1000)
    validation: dict[str, object] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class DeclarationLine(SQLModel, table=True):
    __tablename__ = "declaration_lines"
    __table_args__ = (UniqueConstraint("declaration_id", "line_no", name="uq_declaration_line_no"),)

    id: int | None = Field(default=None, primary_key=True)
    declaration_id: str = Field(foreign_key="declarations.id", max_length=40)
    line_no: int
    hs_code: str = Field(max_length=16)
    description: str = Field(max_length=500)
    description_en: str | None = Field(default=None, max_length=500)
    quantity: str = Field(max_length=32)
    unit: str = Field(max_length=16)
    unit_price: str = Field(max_length=32)
    total: str = Field(max_length=32)
    net_weight_kg: str | None = Field(default=None, max_length=32)
    gross_weight_kg: str | None = Field(default=None, max_length=32)
    origin_country: str | None = Field(default=None, max_length=3)
    extra: dict[str, object] = Field(default_factory=dict, sa_type=JSON)
