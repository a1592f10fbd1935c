"""Builds each configured carrier's adapter, poll policy, token bucket and circuit breaker.

In demo mode (or when a simulator URL is given) carriers without credentials point at the
in-process carrier simulator with its credentials, so the whole pipeline runs for real.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import aiohttp

from carriers import ADAPTERS, CarrierAdapter, CarrierSettings, adapter_class, get_adapter
from carriers.base import Clock
from carriers.simulator.state import Credentials
from tracker.ratelimit import CircuitBreaker, TokenBucket
from tracker.schedule import PollPolicy
from tracker.settings import CarrierConfig, PollingSettings, Settings

log = logging.getLogger("tracker.carriers")

#: the simulator answers as fast as the machine allows; its carriers get a generous limit
SIMULATOR_RATE = 500.0


@dataclass(slots=True)
class CarrierRuntime:
    """Everything the poller needs about one carrier in this process."""

    adapter: CarrierAdapter
    policy: PollPolicy
    bucket: TokenBucket
    breaker: CircuitBreaker


def has_credentials(config: CarrierConfig) -> bool:
    return bool(config.api_key or config.client_id)


def policy_for(config: CarrierConfig, polling: PollingSettings) -> PollPolicy:
    """The default policy with this carrier's configured intervals (0 keeps a default)."""
    base = PollPolicy(jitter=polling.jitter)
    hours = {
        "pending_first": config.poll_pending_first_hours,
        "pending": config.poll_pending_hours,
        "in_transit": config.poll_in_transit_hours,
        "exception": config.poll_exception_hours,
        "customs": config.poll_customs_hours,
        "last_mile": config.poll_last_mile_hours,
        "confirm_terminal": config.poll_confirm_terminal_hours,
    }
    changes = {name: timedelta(hours=v) for name, v in hours.items() if v > 0}
    if config.expire_after_days > 0:
        changes["expire_after"] = timedelta(days=config.expire_after_days)
    return PollPolicy(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, **changes})


def simulator_settings(simulator_url: str, code: str, config: CarrierConfig) -> CarrierSettings:
    creds = Credentials()
    sf = code == "sf_express"
    return CarrierSettings(
        base_url=simulator_url.rstrip("/") + "/" + code,
        api_key=creds.api_key,
        client_id=creds.partner_id if sf else creds.client_id,
        client_secret=creds.check_word if sf else creds.client_secret,
        timeout=config.timeout,
        webhook_secret=config.webhook_secret,
    )


def build_carriers(
    settings: Settings,
    session: aiohttp.ClientSession,
    *,
    clock: Clock,
    simulator_url: str | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> dict[str, CarrierRuntime]:
    """One runtime per enabled carrier that can be reached (credentials, or the simulator)."""
    out: dict[str, CarrierRuntime] = {}
    codes = list(ADAPTERS) if simulator_url else list(settings.carriers)
    for code in codes:
        if code not in ADAPTERS:
            log.warning("unknown carrier in config", extra={"carrier": code})
            continue
        config = settings.carriers.get(code, CarrierConfig())
        if not config.enabled:
            continue
        on_simulator = simulator_url is not None and not has_credentials(config)
        if on_simulator:
            assert simulator_url is not None
            carrier_settings = simulator_settings(simulator_url, code, config)
        elif has_credentials(config):
            base_url = config.base_url or _default_base_url(code)
            carrier_settings = CarrierSettings(
                base_url=base_url,
                api_key=config.api_key,
                client_id=config.client_id,
                client_secret=config.client_secret,
                account=config.account,
                timeout=config.timeout,
                webhook_secret=config.webhook_secret,
            )
        else:
            log.info("carrier without credentials not polled", extra={"carrier": code})
            continue
        adapter = get_adapter(code, session=session, settings=carrier_settings, clock=clock)
        default = adapter.rate_limit
        rate = config.rate_per_second or (SIMULATOR_RATE if on_simulator else default.per_second)
        burst = config.burst or (int(SIMULATOR_RATE) if on_simulator else default.burst)
        out[code] = CarrierRuntime(
            adapter=adapter,
            policy=policy_for(config, settings.polling),
            bucket=TokenBucket(rate, burst, monotonic),
            breaker=CircuitBreaker(
                settings.polling.breaker_failures, settings.polling.breaker_reset_seconds, monotonic
            ),
        )
    return out


def _default_base_url(code: str) -> str:
    import importlib

    module = importlib.import_module(adapter_class(code).__module__)
    return str(getattr(module, "DEFAULT_BASE_URL", ""))
