"""Remote write bodies for the tests: real ``prometheus.WriteRequest`` messages, snappy-compressed
(block format) as Prometheus sends them."""

from __future__ import annotations

import struct

import cramjam
from prometheus_client.parser import text_string_to_metric_families

from operations.telemetry.prompb import WriteRequest
from operations.telemetry.remote_write import STALE_NAN_BITS

STALE_NAN = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]
HEADERS = {
    "HTTP_CONTENT_ENCODING": "snappy",
    "HTTP_X_PROMETHEUS_REMOTE_WRITE_VERSION": "0.1.0",
}
CONTENT_TYPE = "application/x-protobuf"

#: (labels including __name__, [(value, timestamp in ms), ...]) per series.
Series = tuple[dict[str, str], list[tuple[float, int]]]


def write_request(series: list[Series]) -> bytes:
    """The serialized WriteRequest, uncompressed; labels sorted by name as Prometheus sends them."""
    request = WriteRequest()
    for labels, samples in series:
        timeseries = request.timeseries.add()
        for name in sorted(labels):
            timeseries.labels.add(name=name, value=labels[name])
        for value, timestamp in samples:
            timeseries.samples.add(value=value, timestamp=timestamp)
    return request.SerializeToString()


def snappy(data: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(data))


def from_exposition(text: str, timestamp_ms: int, **extra_labels: str) -> list[Series]:
    """A scrape as a Prometheus server would remote-write it: every series stamped with the
    scrape time, with the server's target labels (``job``, ``instance``) added."""
    labels = {"job": "dcgm-exporter", "instance": "10.0.0.7:9400", **extra_labels}
    return [
        (
            {**labels, **sample.labels, "__name__": _exposed_name(text, family, sample)},
            [(sample.value, timestamp_ms)],
        )
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def _exposed_name(text: str, family, sample) -> str:
    """The name as the text exposes it: prometheus_client's parser adds ``_total`` to counters'
    samples that lack it, Prometheus does not."""
    if sample.name != family.name and f"\n{sample.name}{{" not in text:
        return family.name
    return sample.name


def remote_write(actor, tenant_slug: str, body: bytes, *, content_type=CONTENT_TYPE, **headers):
    actor.client.raise_request_exception = False  # a server error must show as its 500
    return actor.client.generic(
        "POST",
        f"/api/v1/tenants/{tenant_slug}/telemetry/remote-write",
        body,
        content_type=content_type,
        **{**HEADERS, **headers},
    )
