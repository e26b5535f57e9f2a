"""Prometheus remote write 1.0: a ``prometheus.WriteRequest`` turned into dcgm-exporter series.

A Prometheus server, vmagent or an OpenTelemetry Collector that scrapes dcgm-exporters pushes
what it scraped; the decoded series go through ``prometheus.telemetry_ingest_series``, so they
map to compute resources and are stored exactly as a text scrape is (all or nothing).

- The metric name is the ``__name__`` label. Families outside ``metrics.DCGM_FIELDS`` are
  ignored and named in the result, as on the text route; a series without ``__name__`` or with
  a label repeated refuses the request.
- Timestamps are milliseconds since the epoch; several samples of one series (a sender that
  fell behind) are several times.
- A Prometheus staleness marker (the NaN ``0x7ff0000000000002`` written when a series
  disappears from its target) is skipped and counted: it says "no value", not a bad value. Any
  other NaN or infinity refuses the request, as on the text route.
- At most ``MAX_SERIES`` samples of accepted families per request.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils import timezone
from google.protobuf.message import DecodeError

from operations.telemetry.metrics import DCGM_FIELDS
from operations.telemetry.prometheus import (
    MAX_SERIES,
    PrometheusResult,
    SeriesValue,
    telemetry_ingest_series,
)
from operations.telemetry.prompb import WriteRequest

#: Prometheus' staleness marker (``model/value.StaleNaN``), a NaN with its own payload.
STALE_NAN_BITS = 0x7FF0000000000002
_STALE_NAN_BYTES = struct.pack("<Q", STALE_NAN_BITS)


def is_stale_marker(value: float) -> bool:
    return math.isnan(value) and struct.pack("<d", value) == _STALE_NAN_BYTES


@dataclass
class DecodedWrite:
    series: list[SeriesValue]
    ignored: set[str]
    stale_markers: int


@dataclass
class RemoteWriteResult:
    ingest: PrometheusResult
    stale_markers: int


def _labels_of(index: int, timeseries) -> tuple[str, dict[str, str]]:
    """The metric name and the other labels of the ``index``-th series."""
    pairs = timeseries.labels
    labels = {label.name: label.value for label in pairs}
    if len(labels) != len(pairs):
        names = [label.name for label in pairs]
        repeated = next(name for name in names if names.count(name) > 1)
        raise ValidationError({f"timeseries.{index}.labels": [f"Label '{repeated}' is repeated."]})
    name = labels.pop("__name__", "")
    if not name:
        raise ValidationError(
            {f"timeseries.{index}.labels": ["No __name__ label (the metric name)."]}
        )
    return name, labels


def decode_write_request(data: bytes) -> DecodedWrite:
    """The accepted families' samples of a decompressed ``WriteRequest`` as series values
    (timestamps in seconds), the ignored families and the number of staleness markers skipped.

    Raises ``ValidationError`` for bytes that are not a ``WriteRequest``, a series without a
    name or with a repeated label, and for more than ``MAX_SERIES`` accepted samples.
    """
    try:
        request = WriteRequest.FromString(data)
    except DecodeError as exc:
        raise ValidationError(
            {"body": [f"Not a valid prometheus.WriteRequest (remote write 1.0): {exc}"[:500]]}
        ) from exc
    series: list[SeriesValue] = []
    ignored: set[str] = set()
    stale = kept = 0
    for index, timeseries in enumerate(request.timeseries):
        name, labels = _labels_of(index, timeseries)
        if name not in DCGM_FIELDS:
            ignored.add(name)
            continue
        for sample in timeseries.samples:
            if is_stale_marker(sample.value):
                stale += 1
                continue
            kept += 1
            if kept <= MAX_SERIES:  # past the limit only count, to say how many came
                series.append((name, labels, sample.value, sample.timestamp / 1000))
    if kept > MAX_SERIES:
        raise ValidationError(
            {"body": [f"At most {MAX_SERIES} samples of accepted metrics; got {kept}."]}
        )
    return DecodedWrite(series=series, ignored=ignored, stale_markers=stale)


def telemetry_ingest_remote_write(
    *, tenant, data: bytes, now: dt.datetime | None = None
) -> RemoteWriteResult:
    """Decode a remote write request, map its dcgm-exporter series to the tenant's compute
    resources and store them idempotently, all or nothing."""
    decoded = decode_write_request(data)
    now = now or timezone.now()
    result = telemetry_ingest_series(
        tenant=tenant,
        series=decoded.series,
        # Every remote-written sample has its own timestamp: the default is never used.
        default_ts=now.replace(microsecond=0),
        ignored=decoded.ignored,
        now=now,
    )
    return RemoteWriteResult(ingest=result, stale_markers=decoded.stale_markers)
