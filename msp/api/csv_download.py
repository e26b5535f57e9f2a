"""CSV downloads: every matching row of a list, streamed, with spreadsheet formulas defused.

A list view takes ``CsvListMixin`` and declares ``csv_columns``; ``?format=csv`` or
``Accept: text/csv`` then answers the filtered, searched and ordered list as one CSV of all
pages, read in chunks while it is sent. The one rule: every text cell goes through
``csv_cell``. Portal pages stream the same way through ``csv_streaming_response``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from rest_framework.renderers import BaseRenderer, JSONRenderer

#: What a spreadsheet may run as a formula when a cell starts with it (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Rows read from the database, and written to the client, per chunk.
CSV_CHUNK_ROWS = 1000


class CsvColumn:
    """One column: its header and how to read the cell from a row."""

    __slots__ = ("header", "read")

    def __init__(self, header: str, read: str | Callable[[Any], Any]):
        self.header = header
        self.read = read if callable(read) else _attribute_path(read)


def _attribute_path(path: str) -> Callable[[Any], Any]:
    names = path.split(".")

    def read(row):
        value = row
        for name in names:
            value = getattr(value, name, None) if value is not None else None
        return value

    return read


def csv_cell(value) -> str:
    """``value`` as a CSV cell: times in UTC without offset, booleans as yes/no, and text that
    a spreadsheet would run as a formula behind a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float, Decimal)):
        return str(value)  # a number is written by us, never a formula
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_rows(
    *,
    columns: Sequence[CsvColumn],
    rows: Iterable,
    scope: Callable[[], AbstractContextManager] = nullcontext,
) -> Iterator[str]:
    """The header, then the rows in chunks of ``CSV_CHUNK_ROWS``, as CSV text.

    ``scope`` is entered around the reading: a streamed body is read after the view has
    returned, outside the request's tenant scope and transaction.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([column.header for column in columns])
    with scope():
        if isinstance(rows, QuerySet):
            rows = rows.iterator(chunk_size=CSV_CHUNK_ROWS)
        for written, row in enumerate(rows, start=1):
            writer.writerow([csv_cell(column.read(row)) for column in columns])
            if written % CSV_CHUNK_ROWS == 0:
                yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def csv_streaming_response(
    *,
    filename: str,
    columns: Sequence[CsvColumn],
    rows: Iterable,
    scope: Callable[[], AbstractContextManager] = nullcontext,
) -> StreamingHttpResponse:
    """A ``text/csv`` attachment streamed from ``rows`` (see ``csv_rows``)."""
    response = StreamingHttpResponse(
        csv_rows(columns=columns, rows=rows, scope=scope), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class CSVRenderer(BaseRenderer):
    """Lets content negotiation pick CSV (``?format=csv``, ``Accept: text/csv``) on the actions
    of a ``CsvListMixin``. Their CSV is streamed by the view; errors are answered in JSON (the
    exception handler switches the renderer), so nothing else reaches this renderer."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data, "application/json", renderer_context)


def is_csv_renderer(renderer) -> bool:
    return isinstance(renderer, CSVRenderer)


class CsvListMixin:
    """``list`` answers CSV of every matching row when asked (see the module docstring).

    The host view declares ``csv_columns`` and ``csv_filename()``, and provides
    ``stream_scope()`` (the API bases do: the tenant's scope, or none for MSP-wide rows).
    """

    csv_columns: Sequence[CsvColumn]
    csv_actions: frozenset[str] = frozenset({"list"})

    def get_renderers(self):
        renderers = super().get_renderers()
        if getattr(self, "action", None) in self.csv_actions:
            renderers.append(CSVRenderer())
        return renderers

    def csv_filename(self) -> str:
        raise NotImplementedError

    def wants_csv(self, request) -> bool:
        return is_csv_renderer(getattr(request, "accepted_renderer", None))

    def list(self, request, *args, **kwargs):
        if self.wants_csv(request):
            return self.csv_response(self.filter_queryset(self.get_queryset()))
        return super().list(request, *args, **kwargs)

    def csv_response(self, rows: Iterable) -> StreamingHttpResponse:
        return csv_streaming_response(
            filename=self.csv_filename(),
            columns=self.csv_columns,
            rows=rows,
            scope=self.stream_scope,
        )
