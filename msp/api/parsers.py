"""Request parsers: every body is read under one size limit, and hostile input is a 400.

Each parser reads at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes whatever the media type (past
it: 413). JSON is parsed by ``json_document``: nesting deeper than ``MAX_JSON_DEPTH``, numbers
that do not fit a float or a 64-bit integer (``1e400``) and lone UTF-16 surrogates
(``"\\ud800"``, which no UTF-8 response can echo) are refused before any view sees them. CSV
comes as a list of row dicts; an unreadable row (bad quoting, a field over the csv module's
limit) is a 400 naming it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re

from django.conf import settings
from rest_framework import exceptions, parsers

from msp.api.errors import PayloadTooLarge

#: Deeper JSON is refused: no API document needs more, and deep recursion kills workers.
MAX_JSON_DEPTH = 64
#: Used when DATA_UPLOAD_MAX_MEMORY_SIZE is None (no limit configured).
FALLBACK_BODY_LIMIT = 64 * 1024 * 1024
_INT_RANGE = (-(2**63), 2**63 - 1)
_CONTAINERS = (dict, list)
# Only a \uD800-\uDFFF escape can produce a surrogate: strict UTF-8 decoding refuses raw ones.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def body_limit() -> int:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE or FALLBACK_BODY_LIMIT


def read_limited(stream, parser_context: dict | None = None) -> bytes:
    """The whole body, or 413 past ``body_limit()`` (told by Content-Length before reading)."""
    limit = body_limit()
    request = (parser_context or {}).get("request")
    if request is not None:
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
    body = stream.read(limit + 1) if stream is not None else b""
    if len(body) > limit:
        raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
    return body


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise exceptions.ParseError(f"JSON parse error - number out of range: {text[:40]}")
    return value


def _bounded_int(text: str) -> int:
    value = int(text)
    if not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        raise exceptions.ParseError(f"JSON parse error - integer out of range: {text[:40]}")
    return value


def _refuse_constant(name: str):
    raise exceptions.ParseError(f"JSON parse error - {name} is not a JSON number.")


def _too_deep(document) -> bool:
    """Nesting past MAX_JSON_DEPTH, level by level (no recursion, only containers visited)."""
    level = [document] if isinstance(document, _CONTAINERS) else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            return True
        level = [
            value
            for container in level
            for value in (container.values() if isinstance(container, dict) else container)
            if isinstance(value, _CONTAINERS)
        ]
    return False


def _has_unencodable_text(document) -> bool:
    """A key or string UTF-8 cannot encode (a lone surrogate)."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def json_document(body: bytes, *, finite_only: bool = True):
    """Parse a JSON body, refusing what the module docstring lists with ``ParseError`` (400).

    ``finite_only=False`` lets ``NaN``, ``Infinity`` and overflowing floats through as floats,
    for a caller that refuses them itself with a message per value (telemetry ingest).
    """
    numbers = (
        {"parse_float": _finite_float, "parse_constant": _refuse_constant} if finite_only else {}
    )
    try:
        document = json.loads(body.decode("utf-8"), parse_int=_bounded_int, **numbers)
    except RecursionError as exc:
        raise exceptions.ParseError(
            f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels."
        ) from exc
    except ValueError as exc:  # includes UnicodeDecodeError and JSONDecodeError
        raise exceptions.ParseError(f"JSON parse error - {exc}") from exc
    # Cheap byte scans decide whether a walk can find anything at all.
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _too_deep(document):
        raise exceptions.ParseError(
            f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels."
        )
    if _SURROGATE_ESCAPE.search(body) and _has_unencodable_text(document):
        raise exceptions.ParseError(
            "JSON parse error - a string holds a lone UTF-16 surrogate (invalid Unicode)."
        )
    return document


class JSONParser(parsers.JSONParser):
    """``application/json`` under the body limit, through ``json_document``."""

    def parse(self, stream, media_type=None, parser_context=None):
        return json_document(read_limited(stream, parser_context))


class CSVParser(parsers.BaseParser):
    """``text/csv`` with a header row, under the body limit: a list of ``{column: cell}``.

    Cells past the header's columns are kept as a list under ``extra_cells`` (so a serializer
    can refuse them as an unknown field, with their row). Subclasses turn the rows into the
    view's document with ``document(rows)``.
    """

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            text = read_limited(stream, parser_context).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(f"CSV parse error - {exc}") from exc
        return self.document(csv_rows(text))

    def document(self, rows: list[dict]):
        return rows


def csv_rows(text: str) -> list[dict]:
    """Rows of a CSV text with a header row; ``ParseError`` naming the row it cannot read.

    Rows count from 0 after the header, as import errors do.
    """
    reader = csv.DictReader(io.StringIO(text), restkey="extra_cells", restval="")
    rows: list[dict] = []
    try:
        if not reader.fieldnames:
            raise exceptions.ParseError("CSV parse error - the CSV has no header row.")
        for row in reader:
            rows.append(row)
    except csv.Error as exc:
        where = f"row {len(rows)}" if reader.line_num > 1 else "the header row"
        raise exceptions.ParseError(
            f"CSV parse error in {where} (line {reader.line_num}) - {exc}"
        ) from exc
    return rows
