"""protocol.parse_json and the strict integer type: what Python's json accepts but the protocol refuses."""

from __future__ import annotations

import sys

import pytest

from roomd import protocol


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * 1000, "deeper"),
        ("[" * 100_000, "deeper"),
        ("[" * 33 + "]" * 33, "deeper"),  # parses, but deeper than any protocol message
        ('{"a":' * 40 + "1" + "}" * 40, "deeper"),
        ('{"id":NaN}', "NaN"),
        ('{"id":-Infinity}', "Infinity"),
        ("[1e400]", "finite"),
        (r'"\ud800"', "surrogate"),
        (r'{"\udc00":1}', "surrogate"),
        (r'"\ude00\ud83d"', "surrogate"),
        ("{", "not valid JSON"),
        (b"\xff", "UTF-8"),
        (b'"\xed\xa0\x80"', "UTF-8"),  # an encoded surrogate is not UTF-8 either
    ],
)
def test_refused(text: str | bytes, reason: str) -> None:
    with pytest.raises(protocol.InvalidJson) as refused:
        protocol.parse_json(text)
    assert reason in str(refused.value)
    assert len(str(refused.value)) < 120


def _nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("[" * 32 + "]" * 32, _nested(32)),
        (r'"\ud83d\ude00"', "\U0001f600"),
        ('{"a":[1,2.5,"x"]}', {"a": [1, 2.5, "x"]}),
        (b'{"n":"caf\xc3\xa9"}', {"n": "café"}),
        ('"' + "[" * 5000 + '"', "[" * 5000),  # brackets inside a string are not nesting
    ],
)
def test_accepted(text: str | bytes, value: object) -> None:
    assert protocol.parse_json(text) == value


def test_depth_is_refused_whatever_the_recursion_limit() -> None:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        with pytest.raises(protocol.InvalidJson):
            protocol.parse_json("[" * 150 + "]" * 150)
    finally:
        sys.setrecursionlimit(limit)


def test_integers_exclude_floats_and_booleans() -> None:
    v = protocol.validator("http/create-room.request.json")
    assert protocol.first_error(v, {"displayName": "A", "maxUsers": 2}) is None
    for bad in (2.0, 2.5, True):
        problem = protocol.first_error(v, {"displayName": "A", "maxUsers": bad})
        assert problem is not None and "integer" in problem
