"""The JSON ingest body read by orjson gives what the API's own reader gives: the same document,
or the same refusal with the same message."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import exceptions

from msp.api.parsers import MAX_JSON_DEPTH, json_document
from operations.telemetry.api.parsers import json_samples_document


def _read(reader, body: bytes):
    try:
        return "ok", _nan_safe(reader(body))
    except exceptions.ParseError as exc:
        return "refused", str(exc.detail)


def _nan_safe(value):
    # NaN is not equal to itself: compare it as a marker.
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {key: _nan_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_nan_safe(item) for item in value]
    return value


def _reference(body: bytes):
    return json_document(body, finite_only=False)


BODIES = [
    b'{"samples": [{"resource": "compute:a", "metric": "gpu_utilization", '
    b'"ts": "2026-11-25T10:00:00Z", "value": 93.5}]}',
    b'{"samples": [{"compute_id": 12, "metric": "m", "ts": 1795600800, "value": 2810}]}',
    b'{"samples": [{"value": NaN}, {"value": Infinity}, {"value": -Infinity}]}',
    b'{"samples": [{"value": 1e400}]}',
    b'{"samples": [{"value": 9223372036854775807}]}',
    b'{"samples": [{"value": 9223372036854775808}]}',
    b'{"samples": [{"value": 18446744073709551616}]}',
    b'{"samples": [{"value": -9223372036854775809}]}',
    b'{"samples": ["\\ud800"]}',
    b'{"samples": ["\\ud83d\\ude00"]}',
    b'{"samples": [], "samples": [1]}',
    b'{"samples": [1, 2,]}',
    b'{"samples": ',
    b"\xff\xfe",
    b"",
    b"[]",
    b'"text"',
    b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
    b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH,
    b'{"samples": [' + b",".join([b'{"a": [1, {"b": [2]}]}'] * 100) + b"]}",
]


@pytest.mark.parametrize("body", BODIES)
def test_the_same_document_or_the_same_refusal(body):
    assert _read(json_samples_document, body) == _read(_reference, body)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(deadline=None)  # examples: the profile (tests/conftest.py)
@given(_JSON)
def test_generated_documents_read_alike(document):
    body = json.dumps({"samples": document}).encode()
    assert _read(json_samples_document, body) == _read(_reference, body)
