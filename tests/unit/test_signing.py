"""Standard Webhooks signing: the published vector, library and independent verification, rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tracker.webhooks.signing import headers, new_secret, sign

SPEC_KEY = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = datetime.fromtimestamp(1614265330, UTC)
SPEC_BODY = '{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

BODY = json.dumps({"type": "shipment.delivered", "data": {"id": "shp_1", "sequence": 7}}).encode()


def independent_signature(secret: str, msg_id: str, unix_ts: int, body: bytes) -> str:
    """HMAC-SHA256 of "id.timestamp.body" with the base64-decoded secret, written from the spec."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{unix_ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def library_now() -> datetime:
    # Webhook.verify reads the wall clock itself and allows five minutes of skew, so a
    # signature it accepts must carry a current timestamp.
    return datetime.now(UTC)


def test_published_test_vector() -> None:
    assert sign([SPEC_KEY], SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE
    assert sign(SPEC_KEY, SPEC_ID, SPEC_TS, SPEC_BODY.encode()) == SPEC_SIGNATURE
    assert independent_signature(SPEC_KEY, SPEC_ID, 1614265330, SPEC_BODY.encode()) == SPEC_SIGNATURE


def test_headers_verify_with_library_and_independently() -> None:
    secret = new_secret()
    now = library_now()
    sent = headers([secret], "msg_1", now, BODY)
    assert set(sent) == {"webhook-id", "webhook-timestamp", "webhook-signature", "content-type"}
    assert sent["webhook-id"] == "msg_1"
    assert sent["content-type"] == "application/json"
    unix_ts = int(sent["webhook-timestamp"])
    assert unix_ts == int(now.timestamp())
    assert sent["webhook-signature"] == independent_signature(secret, "msg_1", unix_ts, BODY)
    assert Webhook(secret).verify(BODY, sent) == json.loads(BODY)


def test_tampered_body_or_other_secret_fails_verification() -> None:
    secret = new_secret()
    sent = headers(secret, "msg_2", library_now(), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", sent)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, sent)


def test_rotation_signs_with_every_secret_and_both_verify() -> None:
    old, new = new_secret(), new_secret()
    now = library_now()
    sent = headers([old, new], "msg_3", now, BODY)
    entries = sent["webhook-signature"].split(" ")
    unix_ts = int(sent["webhook-timestamp"])
    assert entries == [
        independent_signature(old, "msg_3", unix_ts, BODY),
        independent_signature(new, "msg_3", unix_ts, BODY),
    ]
    Webhook(old).verify(BODY, sent)
    Webhook(new).verify(BODY, sent)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, sent)


def test_duplicate_secrets_sign_once() -> None:
    secret = new_secret()
    assert sign([secret, secret], "msg_4", SPEC_TS, BODY).count("v1,") == 1


def test_non_utc_timestamp_signs_the_same_instant() -> None:
    shanghai = timezone(timedelta(hours=8))
    local = SPEC_TS.astimezone(shanghai)
    assert sign([SPEC_KEY], SPEC_ID, local, SPEC_BODY) == SPEC_SIGNATURE
    assert headers([SPEC_KEY], SPEC_ID, local, SPEC_BODY)["webhook-timestamp"] == "1614265330"


def test_sub_second_timestamp_is_floored_in_header_and_signature() -> None:
    at = SPEC_TS + timedelta(milliseconds=999)
    sent = headers([SPEC_KEY], SPEC_ID, at, SPEC_BODY)
    assert sent["webhook-timestamp"] == "1614265330"
    assert sent["webhook-signature"] == SPEC_SIGNATURE


def test_new_secret_format_and_randomness() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    assert first != second


@pytest.mark.parametrize(
    ("secrets", "msg_id", "timestamp", "message"),
    [
        ([], "msg_1", SPEC_TS, "at least one webhook secret"),
        (["whsec_c2hvcnQ="], "msg_1", SPEC_TS, "24-64 bytes"),
        (["whsec_not*base64"], "msg_1", SPEC_TS, "not base64"),
        ([SPEC_KEY], "msg.1", SPEC_TS, "invalid webhook message id"),
        ([SPEC_KEY], "msg 1", SPEC_TS, "invalid webhook message id"),
        ([SPEC_KEY], "", SPEC_TS, "invalid webhook message id"),
        ([SPEC_KEY], "msg_1", datetime(2021, 2, 22, 12, 0, 0), "timezone-aware"),
    ],
)
def test_invalid_inputs_are_rejected(
    secrets: list[str], msg_id: str, timestamp: datetime, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        sign(secrets, msg_id, timestamp, BODY)
