"""The public pages' reads: the one-query page read agrees with the re-validation query,
re-shipment links stay within one seller, and a cached page re-validates without rendering."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import select

from tests.conftest import FakeClock, make_account
from tests.web.test_tracking_pages import CN_DE, Seed, seed
from tracker import keys
from tracker.models import Shipment
from tracker.store import public as store
from tracker.web.pages import tracking

Client = TestClient  # type: ignore[type-arg]


def _reader(app: web.Application) -> store.Reader:
    return app[tracking.PAGES].reader


async def test_page_read_and_revalidation_agree_on_the_version(
    client: Client, app: web.Application, clock: FakeClock
) -> None:
    account = await make_account(app, "Version Shop", clock)
    old = await seed(app, clock, account.seller_id, Seed(events=CN_DE))
    clock.advance(hours=1)
    new = await seed(app, clock, account.seller_id, Seed(number="JD0146000088", replaces=old.id))
    for shipment, events in ((old, 3), (new, 0)):
        state = await store.page_state(_reader(app), shipment.public_token)
        assert state is not None
        assert len(state.events) == events
        # equal versions are what lets a stale cache entry be kept without rendering again
        assert await store.version(_reader(app), shipment.public_token) == state.version
    state = await store.page_state(_reader(app), old.public_token)
    assert state is not None
    assert [e.occurred_at for e in state.events] == [e.at for e in CN_DE]
    assert state.replaced_by == store.Related(new.public_token, "JD0146000088")
    assert await store.version(_reader(app), "no-such-token") is None
    assert await store.page_state(_reader(app), "no-such-token") is None


async def test_reshipment_of_another_seller_is_not_linked(
    client: Client, app: web.Application, clock: FakeClock
) -> None:
    mine = await make_account(app, "Mine", clock)
    theirs = await make_account(app, "Theirs", clock)
    original = await seed(app, clock, mine.seller_id, Seed(events=CN_DE))
    stranger = await seed(app, clock, theirs.seller_id, Seed(number="ZZ0000000001", order="X-1"))
    async with app[keys.SESSIONMAKER]() as session:
        row = (await session.exec(select(Shipment).where(Shipment.id == stranger.id))).one()
        row.replaces_id = original.id
        session.add(row)
        await session.commit()
    first = await store.page_state(_reader(app), original.public_token)
    second = await store.page_state(_reader(app), stranger.public_token)
    assert first is not None and second is not None
    assert first.replaced_by is None
    assert second.replaces is None
    body = await (await client.get(f"/api/public/track/{original.public_token}")).json()
    assert body["replaced_by"] is None


async def test_stale_entry_is_kept_when_nothing_changed(client: Client, app: web.Application, clock: FakeClock) -> None:
    account = await make_account(app, "Stale Shop", clock)
    s = await seed(app, clock, account.seller_id, Seed(events=CN_DE))
    path = f"/t/{s.public_token}"
    first = await client.get(path, headers={"Accept-Language": "en"})
    entry = app[tracking.PAGES].get((s.public_token, "en", "html"))
    assert entry is not None
    clock.advance(seconds=tracking.DEFAULT_TTL + 1)
    again = await client.get(path, headers={"Accept-Language": "en"})
    assert again.headers["ETag"] == first.headers["ETag"]
    # the same entry, re-validated in place: no second rendering
    assert app[tracking.PAGES].get((s.public_token, "en", "html")) is entry
    assert entry.fresh_until > clock() + timedelta(seconds=tracking.DEFAULT_TTL - 1)
    assert await again.read() == await first.read()
