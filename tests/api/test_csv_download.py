"""The CSV kernel: cells a spreadsheet would run are defused, values are written plainly, and
a stream crosses its chunk boundaries without losing or repeating a row."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from msp.api import csv_download
from msp.api.csv_download import CsvColumn, csv_cell, csv_rows


@pytest.mark.parametrize(
    "text",
    [
        '=HYPERLINK("http://x")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A2)",
        "\tindent",
        "\rreturn",
    ],
)
def test_text_that_starts_like_a_formula_gets_a_leading_apostrophe(text):
    assert csv_cell(text) == "'" + text


def test_other_values_are_written_plainly():
    assert csv_cell("GPU node down") == "GPU node down"
    assert csv_cell("a=b") == "a=b"  # only the first character matters
    assert csv_cell(None) == ""
    assert csv_cell(True) == "yes"
    assert csv_cell(False) == "no"
    assert csv_cell(-12) == "-12"  # a number is ours, never a formula
    assert csv_cell(Decimal("-3.50")) == "-3.50"
    offset = dt.timezone(dt.timedelta(hours=2))
    assert csv_cell(dt.datetime(2026, 3, 1, 12, 0, tzinfo=offset)) == "2026-03-01 10:00:00"
    assert csv_cell(dt.date(2026, 3, 1)) == "2026-03-01"


def test_a_stream_crosses_its_chunks_whole(monkeypatch):
    monkeypatch.setattr(csv_download, "CSV_CHUNK_ROWS", 3)
    rows = [{"n": n, "text": f"=row {n}"} for n in range(7)]
    columns = [CsvColumn("n", lambda r: r["n"]), CsvColumn("text", lambda r: r["text"])]
    chunks = list(csv_rows(columns=columns, rows=rows))
    assert len(chunks) == 3  # the header with two full chunks of rows, then the rest
    parsed = list(csv.reader(io.StringIO("".join(chunks))))
    assert parsed == [["n", "text"]] + [[str(n), f"'=row {n}"] for n in range(7)]
