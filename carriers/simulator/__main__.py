"""Run the simulator on its own: `python -m carriers.simulator --port 8900`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from aiohttp import web

from carriers.simulator.app import MODULES, MOUNTED, create_app
from carriers.simulator.state import Faults, SimState


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m carriers.simulator", description=__doc__)
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rate-429", type=float, default=0.0)
    parser.add_argument("--rate-5xx", type=float, default=0.0)
    parser.add_argument("--rate-malformed", type=float, default=0.0)
    parser.add_argument("--retry-after", default="2", help="Retry-After for injected 429s ('' for none)")
    parser.add_argument("--carriers", nargs="*", choices=sorted(MODULES), default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    faults = Faults(
        latency_ms=args.latency_ms,
        rate_429=args.rate_429,
        rate_5xx=args.rate_5xx,
        rate_malformed=args.rate_malformed,
        retry_after=args.retry_after or None,
    )
    app = create_app(SimState(seed=args.seed, faults=faults), codes=args.carriers)
    for code in app[MOUNTED]:
        print(f"{code:<11} http://{args.host}:{args.port}/{code}")
    print(f"{'admin':<11} http://{args.host}:{args.port}/_sim/stats")
    sys.stdout.flush()
    web.run_app(app, host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
