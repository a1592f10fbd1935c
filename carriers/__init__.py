"""Carrier adapters behind one small contract (DESIGN §5).

`carriers` never imports from `tracker`: it is a library the service uses.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import aiohttp

from carriers.base import (
    AuthError,
    BadResponse,
    CarrierAdapter,
    CarrierError,
    CarrierEvent,
    CarrierSettings,
    CarrierUnavailable,
    Clock,
    Location,
    NotFound,
    RateLimited,
    TimeBasis,
    TrackResult,
    utc_now,
)
from carriers.detect import detect
from carriers.status import Status, SubStatus

#: code -> "module:Class". Explicit, greppable, type-checked by the registry test.
ADAPTERS: Mapping[str, str] = {
    "17track": "carriers.track17:Track17Adapter",
    "dhl": "carriers.dhl:DhlAdapter",
    "ups": "carriers.ups:UpsAdapter",
    "fedex": "carriers.fedex:FedexAdapter",
    "usps": "carriers.usps:UspsAdapter",
    "sf_express": "carriers.sf_express:SfExpressAdapter",
    "yanwen": "carriers.yanwen:YanwenAdapter",
}


def adapter_class(code: str) -> type[CarrierAdapter]:
    try:
        target = ADAPTERS[code]
    except KeyError:
        raise KeyError(f"unknown carrier code {code!r}; known: {', '.join(sorted(ADAPTERS))}") from None
    module_name, _, class_name = target.partition(":")
    cls: type[CarrierAdapter] = getattr(importlib.import_module(module_name), class_name)
    return cls


def get_adapter(
    code: str,
    *,
    session: aiohttp.ClientSession | None = None,
    settings: CarrierSettings | None = None,
    clock: Clock = utc_now,
) -> CarrierAdapter:
    """The adapter for `code`. Without a session it can still `parse`; `track` needs one."""
    cls = adapter_class(code)
    module = importlib.import_module(cls.__module__)
    if settings is None:
        settings = CarrierSettings(base_url=getattr(module, "DEFAULT_BASE_URL", ""))
    return cls(session=session, settings=settings, clock=clock)  # type: ignore[arg-type]


__all__ = [
    "ADAPTERS",
    "AuthError",
    "BadResponse",
    "CarrierAdapter",
    "CarrierError",
    "CarrierEvent",
    "CarrierSettings",
    "CarrierUnavailable",
    "Location",
    "NotFound",
    "RateLimited",
    "Status",
    "SubStatus",
    "TimeBasis",
    "TrackResult",
    "adapter_class",
    "detect",
    "get_adapter",
]
