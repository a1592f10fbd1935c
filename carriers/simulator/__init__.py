"""A loopback carrier simulator speaking every carrier's documented tracking API."""

from __future__ import annotations

from carriers.simulator.app import create_app
from carriers.simulator.journeys import journey_for
from carriers.simulator.state import Faults, SimState

__all__ = ["Faults", "SimState", "create_app", "journey_for"]
