"""Simulated SF Express gateway: signed form posts to /std/service, China-time routes.

The signature is checked with its own implementation of the documented rule, so an
adapter that signs wrongly fails here as it would against SF. Gateway codes: A1000 ok,
A1004 unknown partner or service, A1006 bad digest, A1001 missing fields.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo

from aiohttp import web

from carriers.simulator.journey import Journey, Step
from carriers.simulator.journeys import journey_for
from carriers.simulator.responses import json_response
from carriers.simulator.state import SimState
from carriers.status import Status, SubStatus

CODE = "sf_express"
SERVICE_CODE = "EXP_RECE_SEARCH_ROUTES"
#: the simulator's own limit per call (SF's real one is not documented)
BATCH_LIMIT = 10
CHINA = ZoneInfo("Asia/Shanghai")
MALFORMED_MARKER = "MALFORMED"

JourneyLookup = Callable[[str, str, SimState], Journey | None]

#: (status, sub-status) -> (opCode, secondaryStatusCode or "")
_BY_PAIR: dict[tuple[Status, SubStatus], tuple[str, str]] = {
    (Status.IN_TRANSIT, SubStatus.PICKED_UP): ("50", "101"),
    (Status.IN_TRANSIT, SubStatus.IN_TRANSIT): ("30", "201"),
    (Status.IN_TRANSIT, SubStatus.DEPARTED): ("36", ""),
    (Status.IN_TRANSIT, SubStatus.ARRIVED): ("70", "1301"),
    (Status.IN_TRANSIT, SubStatus.CUSTOMS_PROCESSING): ("30", "204"),
    (Status.IN_TRANSIT, SubStatus.CUSTOMS_RELEASED): ("30", "205"),
    (Status.OUT_FOR_DELIVERY, SubStatus.OUT_FOR_DELIVERY): ("44", "301"),
}
_BY_STATUS: dict[Status, tuple[str, str]] = {
    Status.IN_TRANSIT: ("30", "201"),
    Status.OUT_FOR_DELIVERY: ("44", "301"),
    Status.DELIVERED: ("80", "401"),
}


def expected_digest(msg_data: str, timestamp: str, check_word: str) -> str:
    # Java's URLEncoder leaves "*" alone and encodes "~"
    encoded = quote_plus(msg_data + timestamp + check_word, safe="*").replace("~", "%7E")
    digest = hashlib.md5(encoded.encode("utf-8"), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


def route(step: Step) -> dict[str, Any]:
    op_code, secondary = _BY_PAIR.get((step.status, step.sub_status)) or _BY_STATUS.get(step.status, ("33", ""))
    out: dict[str, Any] = {
        "acceptTime": step.at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
        "acceptAddress": step.city,
        "remark": step.description,
        "opCode": op_code,
    }
    if secondary:
        out["secondaryStatusCode"] = secondary
    return out


def route_resp(number: str, journey: Journey | None, state: SimState) -> dict[str, Any]:
    steps = journey.visible(state.clock()) if journey is not None else []
    # SF shows nothing before it has the parcel
    routes = [route(s) for s in steps if s.status is not Status.INFO_RECEIVED]
    if routes and MALFORMED_MARKER in number.upper():
        routes[-1]["acceptTime"] = "soon"
    return {"mailNo": number, "routes": routes}


def envelope(code: str, message: str = "", data: dict[str, Any] | None = None) -> web.Response:
    return json_response(
        {
            "apiErrorMsg": message,
            "apiResponseID": uuid.uuid4().hex.upper(),
            "apiResultCode": code,
            "apiResultData": json.dumps(data, ensure_ascii=False) if data is not None else None,
        }
    )


def add_routes(app: web.Application, state: SimState, prefix: str, *, journeys: JourneyLookup | None = None) -> None:
    """Mount POST {prefix}/std/service."""
    lookup: JourneyLookup = journeys or journey_for

    async def service(request: web.Request) -> web.Response:
        form = await request.post()
        fields = {k: str(form.get(k, "")) for k in ("partnerID", "requestID", "serviceCode", "timestamp")}
        digest, msg_data = str(form.get("msgDigest", "")), str(form.get("msgData", ""))
        if not all(fields.values()) or not digest or not msg_data:
            return envelope("A1001", "必传参数不可为空")
        if fields["partnerID"] != state.creds.partner_id or fields["serviceCode"] != SERVICE_CODE:
            return envelope("A1004", "无对应服务权限")
        if digest != expected_digest(msg_data, fields["timestamp"], state.creds.check_word):
            return envelope("A1006", "数字签名无效")
        try:
            query = json.loads(msg_data)
            numbers = [str(n).strip() for n in query["trackingNumber"]]
        except (ValueError, TypeError, KeyError):
            return envelope("A1000", data={"success": False, "errorCode": "1010", "errorMsg": "msgData无效"})
        if not numbers or len(numbers) > BATCH_LIMIT:
            bad = {"success": False, "errorCode": "1011", "errorMsg": f"运单号数量须为1-{BATCH_LIMIT}"}
            return envelope("A1000", data=bad)
        resps = []
        for number in numbers:
            state.lookups[(CODE, number)] += 1
            resps.append(route_resp(number, lookup(number, CODE, state), state))
        ok = {"success": True, "errorCode": "S0000", "errorMsg": None, "msgData": {"routeResps": resps}}
        return envelope("A1000", data=ok)

    app.router.add_post(f"{prefix}/std/service", service)
