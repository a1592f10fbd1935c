"""Standard Webhooks signatures (`v1`, HMAC-SHA256) for outgoing deliveries."""

from __future__ import annotations

import base64
import binascii
import functools
import math
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format marker, not a credential
SECRET_BYTES = 32
# The specification's bounds for symmetric secrets: 24 to 64 bytes.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
CONTENT_TYPE = "application/json"


def new_secret() -> str:
    """Return a fresh endpoint secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _check_secret(secret: str) -> None:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("webhook secret is not base64") from exc
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"webhook secret must be {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes")


def _check_msg_id(msg_id: str) -> None:
    # The id is part of the signed "id.timestamp.body" string and a header value: a "."
    # would make the split ambiguous, and whitespace or non-ASCII would break the header.
    if not msg_id or not msg_id.isascii() or "." in msg_id or not msg_id.isprintable() or " " in msg_id:
        raise ValueError(f"invalid webhook message id {msg_id!r}")


def _unix_seconds(timestamp: datetime) -> int:
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise ValueError("webhook timestamp must be timezone-aware")
    return math.floor(timestamp.timestamp())


def _as_tuple(secret_or_secrets: str | Sequence[str]) -> tuple[str, ...]:
    # A bare str is itself a Sequence[str]; iterating it would sign with single characters.
    chosen = (secret_or_secrets,) if isinstance(secret_or_secrets, str) else tuple(secret_or_secrets)
    if not chosen:
        raise ValueError("at least one webhook secret is needed")
    return tuple(dict.fromkeys(chosen))


@functools.lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    # Every delivery to an endpoint signs with the same secrets: decode and check each once.
    _check_secret(secret)
    return Webhook(secret)


def sign(secret_or_secrets: str | Sequence[str], msg_id: str, timestamp: datetime, body: bytes | str) -> str:
    """Return the `webhook-signature` value: one `v1,<sig>` per active secret."""
    signers = [_signer(secret) for secret in _as_tuple(secret_or_secrets)]
    _check_msg_id(msg_id)
    # The library re-stamps the datetime as UTC, so hand it the exact UTC second that
    # also goes into the `webhook-timestamp` header.
    at = datetime.fromtimestamp(_unix_seconds(timestamp), UTC)
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    return " ".join(signer.sign(msg_id, at, text) for signer in signers)


def headers(
    secret_or_secrets: str | Sequence[str],
    msg_id: str,
    timestamp: datetime,
    body: bytes | str,
    *,
    content_type: str = CONTENT_TYPE,
) -> dict[str, str]:
    """Return the Standard Webhooks headers for one delivery attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(_unix_seconds(timestamp)),
        "webhook-signature": sign(secret_or_secrets, msg_id, timestamp, body),
        "content-type": content_type,
    }
