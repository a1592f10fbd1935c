"""The `tracker` command: serve, worker, migrate, seller, key, retention, demo, import."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from tracker.clock import utc_now
from tracker.db import create_sessionmaker, engine_for
from tracker.logs import setup_logging
from tracker.settings import Settings, load_settings

log = logging.getLogger("tracker.cli")


def _settings(args: argparse.Namespace) -> Settings:
    try:
        settings = load_settings(args.config)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        raise SystemExit(f"tracker: invalid configuration: {problems}") from err
    except FileNotFoundError as err:
        raise SystemExit(f"tracker: configuration file not found: {err.filename}") from err
    port = getattr(args, "port", None)
    if port is not None:
        settings = settings.model_copy(update={"server": settings.server.model_copy(update={"port": port})})
    return settings


def _print(data: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        for k, v in data.items():
            print(f"{k}: {v}")


def cmd_migrate(args: argparse.Namespace) -> int:
    from tracker.migrate import upgrade

    settings = _settings(args)
    upgrade(settings.database)
    print("database is at the latest schema")
    return 0


async def _seller_create(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from tracker.store import sellers

    engine = engine_for(settings.database)
    try:
        async with create_sessionmaker(engine)() as session:
            seller = await sellers.create_seller(
                session,
                args.name,
                now=utc_now(),
                kind=args.kind,
                parent_id=args.parent,
                support_email=args.support_email,
            )
            scopes = tuple(args.scopes.split(",")) if args.scopes else sellers.DEFAULT_SCOPES
            key = await sellers.create_key(session, seller.id, scopes, now=utc_now(), name="initial")
            await session.commit()
            return {
                "id": seller.id,
                "name": seller.name,
                "kind": seller.kind,
                "api_key": key.api_key,
                "key_prefix": key.prefix,
                "scopes": list(key.scopes),
            }
    finally:
        await engine.dispose()


def cmd_seller_create(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        out = asyncio.run(_seller_create(settings, args))
    except ValueError as err:
        print(f"tracker: {err}", file=sys.stderr)
        return 2
    _print(out, args.json)
    if not args.json:
        print("Store the API key now: it is shown only once.", file=sys.stderr)
    return 0


async def _key_create(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from tracker.store import NotFoundError, sellers

    engine = engine_for(settings.database)
    try:
        async with create_sessionmaker(engine)() as session:
            scopes = (
                tuple(s.strip() for s in args.scopes.split(",") if s.strip()) if args.scopes else sellers.DEFAULT_SCOPES
            )
            try:
                key = await sellers.create_key(session, args.seller, scopes, now=utc_now(), name=args.name or "")
            except NotFoundError as err:
                raise ValueError(f"no seller {args.seller}") from err
            await session.commit()
            return {
                "id": key.id,
                "api_key": key.api_key,
                "key_prefix": key.prefix,
                "scopes": list(key.scopes),
            }
    finally:
        await engine.dispose()


def cmd_key_create(args: argparse.Namespace) -> int:
    try:
        out = asyncio.run(_key_create(_settings(args), args))
    except ValueError as err:
        print(f"tracker: {err}", file=sys.stderr)
        return 2
    _print(out, args.json)
    return 0


async def _key_revoke(settings: Settings, key: str) -> dict[str, Any]:
    from tracker.store import sellers

    engine = engine_for(settings.database)
    try:
        async with create_sessionmaker(engine)() as session:
            row = await sellers.revoke_key(session, key, now=utc_now())
            await session.commit()
            return {
                "id": row.id,
                "key_prefix": row.prefix,
                "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
            }
    finally:
        await engine.dispose()


def cmd_key_revoke(args: argparse.Namespace) -> int:
    from tracker.store import NotFoundError

    try:
        out = asyncio.run(_key_revoke(_settings(args), args.key))
    except NotFoundError:
        print(f"tracker: no key {args.key}", file=sys.stderr)
        return 2
    _print(out, args.json)
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    from tracker.retention import run_purge_cli

    return run_purge_cli(_settings(args), dry_run=args.dry_run, as_json=args.json)


def cmd_erase(args: argparse.Namespace) -> int:
    from tracker.retention import run_erase_cli

    return run_erase_cli(
        _settings(args), seller_id=args.seller, shipment_id=args.shipment, email=args.email, as_json=args.json
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from tracker.server import serve

    settings = _settings(args)
    setup_logging(settings.logging.level, json_lines=settings.logging.json_lines)
    return serve(settings, run_web=True, run_jobs=not args.no_jobs)


def cmd_worker(args: argparse.Namespace) -> int:
    from tracker.server import serve

    settings = _settings(args)
    setup_logging(settings.logging.level, json_lines=settings.logging.json_lines)
    return serve(settings, run_web=False, run_jobs=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from tracker.demo import run_demo

    settings = _settings(args)
    setup_logging(settings.logging.level, json_lines=settings.logging.json_lines)
    code: int = run_demo(settings, shipments=args.shipments, speed=args.speed, seconds=args.seconds)
    return code


def cmd_import(args: argparse.Namespace) -> int:
    from tracker.importer import run_import_cli

    code: int = run_import_cli(
        _settings(args),
        args.file,
        seller_id=args.seller,
        skip_invalid=args.skip_invalid,
        mapping=args.mapping,
    )
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracker", description="cbec-tracker: tracking and customs documents")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="config.toml to read (default: $TRACKER_CONFIG, else ./config.toml)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", parents=[common], help="run the web service (and its jobs unless --no-jobs)")
    p.add_argument("--no-jobs", action="store_true", help="web only; run `tracker worker` elsewhere")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", parents=[common], help="run the periodic jobs only (polling, webhooks, email)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("migrate", parents=[common], help="upgrade the database schema")
    p.set_defaults(func=cmd_migrate)

    seller = sub.add_parser("seller", help="manage sellers").add_subparsers(dest="seller_cmd", required=True)
    p = seller.add_parser("create", parents=[common], help="create a seller and its first API key")
    p.add_argument("name")
    p.add_argument("--kind", default="trading_company", choices=["trading_company", "platform", "service_provider"])
    p.add_argument("--parent", help="platform seller id this merchant sits under")
    p.add_argument("--support-email")
    p.add_argument("--scopes", help="comma-separated scopes of the first key")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_seller_create)

    key = sub.add_parser("key", help="manage API keys").add_subparsers(dest="key_cmd", required=True)
    p = key.add_parser("create", parents=[common], help="create an API key (shown once)")
    p.add_argument("--seller", required=True)
    p.add_argument("--scopes", help="comma-separated, e.g. shipments:read,declarations:review")
    p.add_argument("--name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_key_create)
    p = key.add_parser("revoke", parents=[common], help="revoke a key by id or visible prefix")
    p.add_argument("key")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_key_revoke)

    p = sub.add_parser("retention", parents=[common], help="purge records older than the retention period")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_retention)

    p = sub.add_parser("erase", parents=[common], help="erase a customer's personal data (keeps the shipment)")
    p.add_argument("--seller", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--shipment")
    g.add_argument("--email")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_erase)

    p = sub.add_parser("demo", parents=[common], help="run with the carrier simulator and demo data")
    p.add_argument("--shipments", type=int, default=300)
    p.add_argument("--speed", type=float, default=3600.0, help="simulated seconds per real second")
    p.add_argument("--seconds", type=float, default=0, help="stop after this many real seconds (0: run until Ctrl-C)")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("import", parents=[common], help="import shipments from a CSV file")
    p.add_argument("file")
    p.add_argument("--seller", required=True)
    p.add_argument("--skip-invalid", action="store_true", help="import valid rows, report the others")
    p.add_argument("--mapping", default="auto", help="column mapping: auto, native, shopify, amazon, aliexpress")
    p.set_defaults(func=cmd_import)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
