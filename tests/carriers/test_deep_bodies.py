"""A body nested deeper than Python's recursion limit is a `BadResponse` from every adapter."""

from __future__ import annotations

import pytest

from carriers import ADAPTERS, BadResponse, get_adapter

DEEP = [b"[" * 100_000, b'{"a": ' * 100_000, b'{"data": ' + b"[" * 100_000]


@pytest.mark.parametrize("code", sorted(ADAPTERS))
@pytest.mark.parametrize("body", DEEP, ids=["array", "object", "nested-in-envelope"])
def test_deep_nesting_is_a_bad_response(code: str, body: bytes) -> None:
    with pytest.raises(BadResponse):
        get_adapter(code).parse(body)
