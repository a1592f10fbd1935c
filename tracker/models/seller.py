"""Sellers and their API keys."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from tracker.models.types import UTCDateTime


class SellerKind(StrEnum):
    TRADING_COMPANY = "trading_company"  # sells its own goods abroad
    PLATFORM = "platform"  # third-party platform; its merchants sit under it
    SERVICE_PROVIDER = "service_provider"  # logistics / customs support provider


class Seller(SQLModel, table=True):
    __tablename__ = "sellers"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    kind: str = Field(default=SellerKind.TRADING_COMPANY.value, max_length=32)
    #: a platform's merchant points at the platform, whose keys may manage it
    parent_id: str | None = Field(default=None, foreign_key="sellers.id", index=True, max_length=40)
    support_email: str | None = Field(default=None, max_length=320)
    support_url: str | None = Field(default=None, max_length=500)
    logo_url: str | None = Field(default=None, max_length=500)
    brand_color: str | None = Field(default=None, max_length=16)
    settings: dict[str, object] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(sa_type=UTCDateTime)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=40)
    seller_id: str = Field(foreign_key="sellers.id", index=True, max_length=40)
    #: the visible part of the key, unique, used to find the row
    prefix: str = Field(max_length=32, unique=True)
    #: sha256 of the whole key; keys are 256-bit random, so a slow hash buys nothing
    key_hash: str = Field(max_length=64)
    scopes: str = Field(max_length=500)
    name: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_object", "object_type", "object_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    seller_id: str = Field(index=True, max_length=40)
    actor: str = Field(max_length=100)  # key prefix, "system", "customer"
    action: str = Field(max_length=64)
    object_type: str = Field(max_length=32)
    object_id: str = Field(max_length=40)
    at: datetime = Field(sa_type=UTCDateTime)
    details: dict[str, object] = Field(default_factory=dict, sa_type=JSON)


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    seller_id: str = Field(primary_key=True, max_length=40)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    status: int
    body: str
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
