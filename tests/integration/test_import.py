"""CSV import: mappings, validation with line numbers, all-or-nothing, skip-invalid, re-import."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from tests.conftest import FakeClock, make_settings
from tracker import importer
from tracker.db import create_sessionmaker, engine_for
from tracker.models import Shipment
from tracker.settings import DatabaseSettings
from tracker.store import sellers as seller_store

NATIVE = (
    "tracking_number,carrier,order_number,customer_name,customer_email,customer_phone,customer_locale,"
    "dest_country,dest_postcode,dest_city,dest_address,origin_country,promised_delivery\n"
    "1Z999AA10123456784,ups,N-1,Ann Lee,ann@example.com,+1 555 0100,en,US,94103,San Francisco,1 Market St,CN,"
    "2026-03-20\n"
    "JD014600006281234567,dhl,N-2,Bo Chen,bo@example.com,,zh-Hans,DE,10115,Berlin,Hauptstr. 1,CN,\n"
    "LX123456785CN,,N-3,Cy Diaz,,,,FR,75001,Paris,,CN,\n"
)
SHOPIFY = (
    "Name,Email,Financial Status,Fulfillment Status,Lineitem name,Shipping Name,Shipping Address1,"
    "Shipping City,Shipping Zip,Shipping Country,Shipping Phone,Tracking Number,Tracking Company\n"
    "#1001,dee@example.com,paid,fulfilled,Mug,Dee Ell,5 Rue X,Lyon,69001,FR,,JD014600006281234999,DHL Express\n"
    "#1001,,,,Spoon,,,,,,,,\n"
    "#1002,eve@example.com,paid,fulfilled,Cup,Eve Ng,9 Elm St,Austin,73301,US,,1Z999AA10123456785,UPS\n"
)
AMAZON = (
    "amazon-order-id\tbuyer-email\trecipient-name\tship-address-1\tship-city\tship-postal-code\tship-country\t"
    "tracking-number\tcarrier-code\n"
    "111-2223334-5556667\tfay@marketplace.amazon.de\tFay Gu\tRing 2\tMunich\t80331\tDE\tLX123456786CN\tYanwen\n"
)
ALIEXPRESS = (
    "Order ID,Receiver,Country/Region,City,Zip Code,Address,Tracking Number,Logistics Company\n"
    "8123456789,Gil Ho,Spain,Madrid,28001,Calle 1,LX123456787CN,\n"
)


@pytest.fixture
async def env(database: DatabaseSettings) -> Any:
    engine = engine_for(database)
    sm = create_sessionmaker(engine)
    clock = FakeClock()
    async with sm() as session:
        seller = await seller_store.create_seller(session, "Importer", now=clock())
        await session.commit()
    yield sm, seller.id, clock
    await engine.dispose()


async def _shipments(sm: Any, seller_id: str) -> list[Shipment]:
    async with sm() as session:
        return list(await session.exec(select(Shipment).where(Shipment.seller_id == seller_id)))


async def _import(env: Any, text: str, **kw: Any) -> importer.ImportReport:
    sm, seller_id, clock = env
    return await importer.import_text(sm, seller_id, text, now=clock(), public_url="http://t.test", **kw)


async def test_native_file_imports_every_column(env: Any) -> None:
    report = await _import(env, NATIVE)
    assert (report.mapping, report.rows, report.imported, report.errors, report.committed) == ("native", 3, 3, [], True)
    by_order = {s.order_number: s for s in await _shipments(env[0], env[1])}
    assert set(by_order) == {"N-1", "N-2", "N-3"}
    first = by_order["N-1"]
    assert (first.carrier, first.dest_city, first.origin_country, str(first.promised_delivery)) == (
        "ups",
        "San Francisco",
        "CN",
        "2026-03-20",
    )
    assert by_order["N-2"].customer_locale == "zh-Hans"
    assert by_order["N-3"].carrier is None
    assert by_order["N-3"].carrier_candidates


async def test_reimport_skips_registered_rows(env: Any) -> None:
    await _import(env, NATIVE)
    again = await _import(env, NATIVE)
    assert again.committed
    assert again.imported == 0
    assert again.skipped == [(2, "already registered"), (3, "already registered"), (4, "already registered")]
    assert len(await _shipments(env[0], env[1])) == 3


@pytest.mark.parametrize(
    ("text", "mapping", "expected"),
    [
        (
            SHOPIFY,
            "shopify",
            {("#1001", "JD014600006281234999", "dhl", "FR"), ("#1002", "1Z999AA10123456785", "ups", "US")},
        ),
        (AMAZON, "amazon", {("111-2223334-5556667", "LX123456786CN", "yanwen", "DE")}),
        (ALIEXPRESS, "aliexpress", {("8123456789", "LX123456787CN", None, "ES")}),
    ],
)
async def test_marketplace_exports_are_detected_and_mapped(
    env: Any, text: str, mapping: str, expected: set[Any]
) -> None:
    report = await _import(env, text)
    assert report.mapping == mapping
    assert report.errors == []
    got = {(s.order_number, s.tracking_number, s.carrier, s.dest_country) for s in await _shipments(env[0], env[1])}
    assert got == expected


BAD = NATIVE + (
    "12,ups,N-4,,,,,US,,,,,\n"  # tracking number too short
    ",dhl,N-5,,not-an-email,,,XX,,,,,\n"  # three errors on one line
)


async def test_invalid_rows_refuse_the_whole_file_with_line_numbers(env: Any) -> None:
    report = await _import(env, BAD)
    assert not report.committed
    assert report.imported == 0
    assert {(e.line, e.field) for e in report.errors} == {
        (5, "tracking_number"),
        (6, "tracking_number"),
        (6, "customer_email"),
        (6, "dest_country"),
    }
    assert await _shipments(env[0], env[1]) == []


async def test_skip_invalid_imports_the_valid_rows(env: Any) -> None:
    report = await _import(env, BAD, skip_invalid=True)
    assert report.committed
    assert report.imported == 3
    assert report.invalid_lines == 2
    assert len(await _shipments(env[0], env[1])) == 3


async def test_an_order_number_of_another_customer_is_an_error(env: Any) -> None:
    await _import(env, NATIVE)
    clash = NATIVE.splitlines()[0] + "\nLX123456790CN,,N-1,Zed Other,zed@example.com,,,GB,SW1A 1AA,London,,CN,\n"
    report = await _import(env, clash)
    assert [(e.line, e.field) for e in report.errors] == [(2, "order_number")]
    assert not report.committed


async def test_unknown_header_is_refused() -> None:
    with pytest.raises(importer.ImportFileError, match="Unknown column set"):
        importer.read_rows("a,b\n1,2\n")


def test_progress_bar_is_plain_text_off_a_terminal() -> None:
    out = io.StringIO()
    bar = importer.ProgressBar(out)
    for done in range(0, 101, 5):
        bar("import", done, 100)
    lines = out.getvalue().splitlines()
    assert lines[0] == "import: 0/100 rows (0%)"
    assert lines[-1] == "import: 100/100 rows (100%)"
    assert len(lines) == 11
    assert "\r" not in out.getvalue()


async def test_cli_entry_point(
    env: Any, database: DatabaseSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(BAD, encoding="utf-8")
    settings = make_settings(database)
    # run_import_cli runs its own event loop, so it goes to a worker thread here
    import asyncio

    code = await asyncio.to_thread(
        importer.run_import_cli, settings, str(path), seller_id=env[1], skip_invalid=False, mapping="auto"
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "line 6: customer_email:" in captured.out
    assert "nothing imported" in captured.out
    assert "validate:" in captured.err
    code = await asyncio.to_thread(
        importer.run_import_cli, settings, str(path), seller_id=env[1], skip_invalid=True, mapping="native"
    )
    assert code == 0
    assert "imported 3, skipped 0, invalid 2" in capsys.readouterr().out
    assert (
        await asyncio.to_thread(
            importer.run_import_cli,
            settings,
            str(tmp_path / "none.csv"),
            seller_id=env[1],
            skip_invalid=False,
            mapping="auto",
        )
        == 2
    )
