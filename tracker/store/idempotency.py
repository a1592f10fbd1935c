"""Idempotency-Key handling for POSTs: the same key with the same body replays the first
answer; the same key with another body is refused."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from tracker.models import IdempotencyRecord


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    body: str


class KeyReused(Exception):
    """The key was used before with a different request body."""


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


async def lookup(session: AsyncSession, seller_id: str, key: str, req_hash: str) -> Replay | None:
    row = await session.get(IdempotencyRecord, (seller_id, key))
    if row is None:
        return None
    if row.request_hash != req_hash:
        raise KeyReused(key)
    return Replay(row.status, row.body)


def remember(
    session: AsyncSession, seller_id: str, key: str, req_hash: str, status: int, body: str, *, now: datetime
) -> None:
    session.add(
        IdempotencyRecord(seller_id=seller_id, key=key, request_hash=req_hash, status=status, body=body, created_at=now)
    )
