"""Sellers, API keys and the audit log."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker.models import ApiKey, AuditLog, Seller, SellerKind, new_id
from tracker.store import NotFoundError

SCOPES: tuple[str, ...] = (
    "shipments:read",
    "shipments:write",
    "alerts:write",
    "webhooks:manage",
    "declarations:write",
    "declarations:review",
)
#: what a seller key gets when no scopes are named: everything but customs review, which
#: belongs to a clerk's key
DEFAULT_SCOPES: tuple[str, ...] = tuple(s for s in SCOPES if s != "declarations:review")
KEY_PREFIX = "trk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: str
    api_key: str  # shown once, never stored
    prefix: str
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's seller, the seller acted for, and the key's scopes."""

    key_id: str
    key_prefix: str
    key_seller_id: str
    seller_id: str
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        return scope in self.scopes


async def create_seller(
    session: AsyncSession,
    name: str,
    *,
    now: datetime,
    kind: str = SellerKind.TRADING_COMPANY.value,
    parent_id: str | None = None,
    support_email: str | None = None,
) -> Seller:
    if kind not in {k.value for k in SellerKind}:
        raise ValueError(f"unknown seller kind {kind!r}")
    if parent_id is not None:
        parent = await session.get(Seller, parent_id)
        if parent is None or parent.kind != SellerKind.PLATFORM.value:
            raise ValueError("a merchant's parent must be an existing platform seller")
    seller = Seller(
        id=new_id("sel"),
        name=name,
        kind=kind,
        parent_id=parent_id,
        support_email=support_email,
        created_at=now,
    )
    session.add(seller)
    await session.flush()
    return seller


async def get_seller(session: AsyncSession, seller_id: str) -> Seller:
    seller = await session.get(Seller, seller_id)
    if seller is None:
        raise NotFoundError(seller_id)
    return seller


async def create_key(
    session: AsyncSession, seller_id: str, scopes: tuple[str, ...], *, now: datetime, name: str = ""
) -> IssuedKey:
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")
    await get_seller(session, seller_id)
    prefix = KEY_PREFIX + secrets.token_hex(4)
    api_key = f"{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        id=new_id("key"),
        seller_id=seller_id,
        prefix=prefix,
        key_hash=hash_key(api_key),
        scopes=",".join(scopes),
        name=name,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return IssuedKey(id=row.id, api_key=api_key, prefix=prefix, scopes=scopes)


async def revoke_key(session: AsyncSession, key_id_or_prefix: str, *, now: datetime) -> ApiKey:
    row = (
        await session.exec(
            select(ApiKey).where((col(ApiKey.id) == key_id_or_prefix) | (col(ApiKey.prefix) == key_id_or_prefix))
        )
    ).first()
    if row is None:
        raise NotFoundError(key_id_or_prefix)
    if row.revoked_at is None:
        row.revoked_at = now
        session.add(row)
    return row


async def authenticate(session: AsyncSession, api_key: str) -> ApiKey | None:
    """The live key row for `api_key`, or None. Constant-time on the hash comparison."""
    # trk_<8 hex>_<secret>; the secret itself may contain underscores
    prefix_len = len(KEY_PREFIX) + 8
    prefix = api_key[:prefix_len]
    if not prefix.startswith(KEY_PREFIX) or api_key[prefix_len : prefix_len + 1] != "_":
        return None
    row = (await session.exec(select(ApiKey).where(ApiKey.prefix == prefix))).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, hash_key(api_key)):
        return None
    return row


async def can_act_for(session: AsyncSession, key_seller_id: str, target_seller_id: str) -> bool:
    """A platform's key may manage the merchants registered under it."""
    if key_seller_id == target_seller_id:
        return True
    target = await session.get(Seller, target_seller_id)
    return target is not None and target.parent_id == key_seller_id


async def audit(
    session: AsyncSession,
    *,
    seller_id: str,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    now: datetime,
    details: dict[str, object] | None = None,
) -> None:
    session.add(
        AuditLog(
            seller_id=seller_id,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            at=now,
            details=details or {},
        )
    )


async def audit_trail(session: AsyncSession, seller_id: str, object_type: str, object_id: str) -> list[AuditLog]:
    rows = await session.exec(
        select(AuditLog)
        .where(
            AuditLog.seller_id == seller_id,
            AuditLog.object_type == object_type,
            AuditLog.object_id == object_id,
        )
        .order_by(col(AuditLog.at), col(AuditLog.id))
    )
    return list(rows)
