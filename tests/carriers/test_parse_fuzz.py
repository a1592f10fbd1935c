"""Every adapter's `parse` either returns results or raises `BadResponse`, whatever the body.

Bodies start from the public samples in `carrier-samples/<carrier>/` and are mutated
(deleted keys, swapped types, nulls, huge numbers, wrong nesting), cut short, or replaced by
random bytes. Adapters whose module has not landed yet are skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carriers import ADAPTERS, BadResponse, TrackResult, get_adapter

SHARED = Path(os.environ.get("TRACKER_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared"))
SAMPLES = SHARED / "carrier-samples"

#: adapter code -> sample folder
FOLDERS: dict[str, str] = {
    "17track": "17track",
    "dhl": "dhl",
    "ups": "ups",
    "fedex": "fedex",
    "usps": "usps",
    "sf_express": "sf_express",
    "yanwen": "yanwen",
}

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CODES = sorted(ADAPTERS)


def _adapter(code: str) -> Any:
    pytest.importorskip(ADAPTERS[code].partition(":")[0])
    return get_adapter(code)


def _samples(code: str) -> list[bytes]:
    folder = SAMPLES / FOLDERS[code]
    bodies = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not bodies:
        pytest.skip(f"no samples for {code} under {folder}")
    return [p.read_bytes() for p in bodies]


def _check(adapter: Any, body: bytes) -> None:
    try:
        results = adapter.parse(body)
    except BadResponse:
        return
    assert isinstance(results, list)
    assert all(isinstance(r, TrackResult) for r in results)


# --- mutation ---------------------------------------------------------------------------------

Path_ = tuple[str | int, ...]


def _paths(value: Any, prefix: Path_ = ()) -> list[Path_]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out.extend(_paths(child, (*prefix, i)))
    return out


def _get(doc: Any, path: Path_) -> Any:
    for step in path:
        doc = doc[step]
    return doc


REPLACEMENTS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**30, -1, 0, 1e308, -1e308, 2**63, 1.5]),
    st.text(max_size=20),
    st.sampled_from(["", "null", "2026-13-45T99:99:99", "9999-12-31T23:59:59+14:00", "Z", "+8", "-"]),
    st.just([]),
    st.just({}),
    st.lists(st.integers(), max_size=3),
)


def _mutate(doc: Any, data: st.DataObject) -> Any:
    paths = _paths(doc)
    path = data.draw(st.sampled_from(paths))
    op = data.draw(st.sampled_from(["delete", "replace", "wrap", "unwrap", "stringify"]))
    if not path:
        return [doc] if op == "wrap" else data.draw(REPLACEMENTS)
    parent = _get(doc, path[:-1])
    key = path[-1]
    current = parent[key]
    if op == "delete":
        del parent[key]
    elif op == "replace":
        parent[key] = data.draw(REPLACEMENTS)
    elif op == "wrap":
        parent[key] = [current] if data.draw(st.booleans()) else {"value": current}
    elif op == "unwrap" and isinstance(current, list | dict) and current:
        parent[key] = next(iter(current.values())) if isinstance(current, dict) else current[0]
    else:
        parent[key] = json.dumps(current)
    return doc


@pytest.mark.parametrize("code", CODES)
def test_mutated_json(code: str) -> None:
    adapter = _adapter(code)
    docs = [json.loads(body) for body in _samples(code)]

    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        doc = json.loads(json.dumps(data.draw(st.sampled_from(docs))))
        for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
            doc = _mutate(doc, data)
        _check(adapter, json.dumps(doc).encode())

    run()


@pytest.mark.parametrize("code", CODES)
def test_truncated_bodies(code: str) -> None:
    adapter = _adapter(code)
    bodies = _samples(code)

    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        body = data.draw(st.sampled_from(bodies))
        cut = data.draw(st.integers(min_value=0, max_value=max(0, len(body) - 1)))
        _check(adapter, body[:cut])

    run()


@pytest.mark.parametrize("code", CODES)
def test_random_bytes(code: str) -> None:
    adapter = _adapter(code)

    @FUZZ
    @given(body=st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode)))
    def run(body: bytes) -> None:
        _check(adapter, body)

    run()


@pytest.mark.parametrize("code", CODES)
def test_samples_themselves(code: str) -> None:
    adapter = _adapter(code)
    for body in _samples(code):
        _check(adapter, body)
