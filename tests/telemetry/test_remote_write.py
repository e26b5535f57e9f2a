"""POST telemetry/remote-write: Prometheus remote write 1.0 (snappy-compressed WriteRequest)."""

from __future__ import annotations

import math
import struct
from collections import defaultdict

import pytest

from operations.telemetry import remote_write as rw
from operations.telemetry.metrics import ResourceKind
from tenants.models import TenantRole
from tests.conftest import Actor
from tests.factories import make_member, make_token
from tests.inventory.estate import make_gpu_node
from tests.telemetry.helpers import minutes_ago, stored
from tests.telemetry.remote_write_payloads import (
    STALE_NAN,
    from_exposition,
    remote_write,
    snappy,
    write_request,
)
from tests.telemetry.test_prometheus import IDLE_UUIDS, IGNORED, SAT_UUIDS, SCRAPE, push

pytestmark = pytest.mark.django_db

SAT = {"Hostname": "acme-gpu-sat-01", "gpu": "0", "UUID": SAT_UUIDS[0]}


@pytest.fixture
def hosts(tenant_a, tenant_b):
    """The two hosts of the dcgm-exporter fixture in A; B has a host of the same name and GPUs."""
    sat = make_gpu_node(tenant_a, hostname="acme-gpu-sat-01", gpu_count=4, gpu_uuids=SAT_UUIDS)
    idle = make_gpu_node(tenant_a, hostname="acme-gpu-idle-01", gpu_uuids=IDLE_UUIDS)
    make_gpu_node(tenant_b, hostname="acme-gpu-sat-01", gpu_count=4, gpu_uuids=SAT_UUIDS)
    return sat, idle


def ms(moment) -> int:
    return int(moment.timestamp() * 1000)


def by_time(tenant) -> dict:
    """ts → {(kind, resource id, metric): value} of the stored samples."""
    rows = defaultdict(dict)
    for kind, resource_id, metric, ts, value in stored(tenant):
        rows[ts][(kind, resource_id, metric)] = value
    return dict(rows)


def temp(value: float, *samples_ms: int, **labels: str):
    return ({**SAT, **labels, "__name__": "DCGM_FI_DEV_GPU_TEMP"}, [(value, t) for t in samples_ms])


def error_fields(response) -> dict:
    return response.json()["error"].get("fields", {})


def test_a_remote_written_scrape_is_stored_as_the_same_scrape_as_text(admin_a, tenant_a, hosts):
    as_text, as_remote_write = minutes_ago(10), minutes_ago(5)
    text = push(admin_a, tenant_a, SCRAPE, query=f"?ts={as_text.timestamp():.0f}")
    assert text.status_code == 200

    body = snappy(write_request(from_exposition(SCRAPE, ms(as_remote_write))))
    response = remote_write(admin_a, tenant_a.slug, body)

    assert response.status_code == 204, response.content
    assert response.content == b""
    stored_at = by_time(tenant_a)
    assert set(stored_at) == {as_text, as_remote_write}
    assert stored_at[as_remote_write] == stored_at[as_text]  # same resources, metrics, values
    received = len(stored_at[as_text])
    assert response["X-Groundwork-Received"] == response["X-Groundwork-Inserted"] == str(received)
    assert response["X-Groundwork-Duplicates"] == "0"
    assert response["X-Groundwork-Stale-Markers"] == "0"
    assert response["X-Groundwork-Ignored-Families"] == ",".join(IGNORED)


def test_a_resent_batch_is_counted_as_duplicates(admin_a, tenant_a, hosts):
    body = snappy(write_request(from_exposition(SCRAPE, ms(minutes_ago(3)))))
    first = remote_write(admin_a, tenant_a.slug, body)
    again = remote_write(admin_a, tenant_a.slug, body)
    assert first.status_code == again.status_code == 204
    assert again["X-Groundwork-Inserted"] == "0"
    assert again["X-Groundwork-Duplicates"] == first["X-Groundwork-Inserted"]


def node_samples(tenant) -> list[tuple]:
    """The stored samples of the nodes' series (each GPU's own series left out)."""
    return [row for row in stored(tenant) if row[0] == ResourceKind.COMPUTE]


def test_samples_of_one_series_at_several_times_are_several_samples(admin_a, tenant_a, hosts):
    sat, _idle = hosts
    times = [minutes_ago(3), minutes_ago(2), minutes_ago(1)]
    body = snappy(write_request([temp(60, ms(times[0])), temp(65, ms(times[1]), ms(times[2]))]))
    assert remote_write(admin_a, tenant_a.slug, body).status_code == 204
    assert [(row[1], row[3], row[4]) for row in node_samples(tenant_a)] == [
        (sat.pk, times[0], 60.0),
        (sat.pk, times[1], 65.0),
        (sat.pk, times[2], 65.0),
    ]


def test_timestamps_are_milliseconds(admin_a, tenant_a, hosts):
    moment = minutes_ago(4)
    body = snappy(write_request([temp(50, ms(moment) + 250)]))
    assert remote_write(admin_a, tenant_a.slug, body).status_code == 204
    (ts,) = by_time(tenant_a)
    assert ts.replace(microsecond=0) == moment
    assert ts.microsecond in (0, 250_000)  # kept to the millisecond, or to the second


def test_staleness_markers_are_skipped_not_refused(admin_a, tenant_a, hosts):
    moment = minutes_ago(2)
    body = snappy(
        write_request(
            [
                temp(STALE_NAN, ms(moment) - 15_000),
                temp(70, ms(moment)),
                temp(STALE_NAN, ms(moment), gpu="1"),
            ]
        )
    )
    response = remote_write(admin_a, tenant_a.slug, body)
    assert response.status_code == 204, response.content
    assert response["X-Groundwork-Stale-Markers"] == "2"
    assert [(row[3], row[4]) for row in node_samples(tenant_a)] == [(moment, 70.0)]


def test_only_a_stale_marker_stores_nothing(admin_a, tenant_a, hosts):
    body = snappy(write_request([temp(STALE_NAN, ms(minutes_ago(1)))]))
    response = remote_write(admin_a, tenant_a.slug, body)
    assert response.status_code == 204
    assert (response["X-Groundwork-Received"], response["X-Groundwork-Stale-Markers"]) == ("0", "1")
    assert stored(tenant_a) == []


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_any_other_nan_or_infinity_refuses_the_batch(admin_a, tenant_a, hosts, value):
    moment = ms(minutes_ago(1))
    body = snappy(write_request([temp(70, moment, gpu="1"), temp(value, moment)]))
    response = remote_write(admin_a, tenant_a.slug, body)
    assert response.status_code == 400
    assert list(error_fields(response).values()) == [
        ["Expected a finite number (not NaN or infinity)."]
    ]
    assert stored(tenant_a) == []


def test_one_unknown_host_refuses_the_whole_batch(admin_a, tenant_a, hosts):
    moment = ms(minutes_ago(1))
    unknown = {"Hostname": "nobody", "UUID": "GPU-00000000-0000-0000-0000-000000000000"}
    body = snappy(write_request([temp(70, moment), temp(71, moment, **unknown)]))
    response = remote_write(admin_a, tenant_a.slug, body)
    assert response.status_code == 400
    (key,) = error_fields(response)
    assert key.startswith("DCGM_FI_DEV_GPU_TEMP{")
    assert 'Hostname="nobody"' in key
    assert stored(tenant_a) == []


def test_a_timestamp_outside_the_window_refuses_the_batch(admin_a, tenant_a, hosts):
    body = snappy(write_request([temp(70, ms(minutes_ago(1))), temp(70, 0)]))  # 1970
    response = remote_write(admin_a, tenant_a.slug, body)
    assert response.status_code == 400
    assert stored(tenant_a) == []


def test_a_series_found_by_its_gpu_uuid(admin_a, tenant_a, hosts):
    _sat, idle = hosts
    labels = {"UUID": IDLE_UUIDS[1], "gpu": "1", "__name__": "DCGM_FI_DEV_GPU_TEMP"}
    body = snappy(write_request([(labels, [(41, ms(minutes_ago(1)))])]))
    assert remote_write(admin_a, tenant_a.slug, body).status_code == 204
    assert {row[1] for row in node_samples(tenant_a)} == {idle.pk}


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2), encoded by hand."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_bytes_encoded_by_hand_from_prompb_decode_and_unknown_fields_are_skipped(
    admin_a, tenant_a, hosts
):
    """Field numbers from Prometheus' prompb, written without our descriptor: Label name=1
    value=2; Sample value=1 (double) timestamp=2 (int64 ms); TimeSeries labels=1 samples=2
    exemplars=3; WriteRequest timeseries=1 metadata=3."""
    sat, _idle = hosts
    moment = minutes_ago(1)

    def label(name: str, value: str) -> bytes:
        return _field(1, _field(1, name.encode()) + _field(2, value.encode()))

    sample = b"\x09" + struct.pack("<d", 42.0) + b"\x10" + _varint(ms(moment))
    exemplar = _field(3, _field(1, _field(1, b"trace_id") + _field(2, b"abc")))
    series = (
        label("__name__", "DCGM_FI_DEV_GPU_TEMP")
        + label("Hostname", "acme-gpu-sat-01")
        + _field(2, sample)
        + exemplar
    )
    metadata = _field(3, b"\x08\x01" + _field(2, b"DCGM_FI_DEV_GPU_TEMP"))
    body = snappy(_field(1, series) + metadata)

    response = remote_write(admin_a, tenant_a.slug, body)
    assert response.status_code == 204, response.content
    assert [(row[1], row[3], row[4]) for row in node_samples(tenant_a)] == [(sat.pk, moment, 42.0)]


def test_an_empty_write_request_stores_nothing(admin_a, tenant_a):
    response = remote_write(admin_a, tenant_a.slug, snappy(write_request([])))
    assert response.status_code == 204
    assert response["X-Groundwork-Received"] == "0"


def test_ignored_families_do_not_count_and_are_named(admin_a, tenant_a, hosts):
    moment = ms(minutes_ago(1))
    other = [({"__name__": f"node_metric_{i}", "instance": "x"}, [(1, moment)]) for i in range(60)]
    body = snappy(write_request([*other, temp(70, moment)]))
    response = remote_write(admin_a, tenant_a.slug, body)
    assert response.status_code == 204
    named = response["X-Groundwork-Ignored-Families"].split(",")
    assert len(named) == 51
    assert named[-1] == "+10 more"
    assert named[0] == "node_metric_0"


def test_an_ignored_family_with_any_name_is_a_safe_header(admin_a, tenant_a, hosts):
    labels = {"__name__": "évil\r\nSet-Cookie: x=1", "instance": "x"}
    response = remote_write(
        admin_a, tenant_a.slug, snappy(write_request([(labels, [(1, ms(minutes_ago(1)))])]))
    )
    assert response.status_code == 204
    assert response["X-Groundwork-Ignored-Families"] == "%C3%A9vil%0D%0ASet-Cookie:%20x%3D1"


def test_more_than_max_series_samples_refuses_the_batch(admin_a, tenant_a, hosts, monkeypatch):
    monkeypatch.setattr(rw, "MAX_SERIES", 3)
    moment = ms(minutes_ago(1))
    noise = [({"__name__": "DCGM_FI_DEV_SM_CLOCK", **SAT}, [(1, moment)] * 10)]
    accepted = [temp(70, moment - 2000, moment - 1000, moment), temp(STALE_NAN, moment, gpu="1")]
    assert (
        remote_write(admin_a, tenant_a.slug, snappy(write_request([*noise, *accepted]))).status_code
        == 204
    )  # ignored families and stale markers do not count
    response = remote_write(
        admin_a, tenant_a.slug, snappy(write_request([*accepted, temp(71, moment, gpu="2")]))
    )
    assert response.status_code == 400
    assert error_fields(response) == {"body": ["At most 3 samples of accepted metrics; got 4."]}


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"Hostname": "acme-gpu-sat-01"}, "No __name__ label (the metric name)."),
        ({"__name__": "", "Hostname": "acme-gpu-sat-01"}, "No __name__ label (the metric name)."),
    ],
)
def test_a_series_without_a_name_refuses_the_batch(admin_a, tenant_a, hosts, labels, message):
    body = snappy(write_request([temp(70, ms(minutes_ago(1))), (labels, [(1, 1)])]))
    response = remote_write(admin_a, tenant_a.slug, body)
    assert response.status_code == 400
    assert error_fields(response) == {"timeseries.1.labels": [message]}
    assert stored(tenant_a) == []


def test_a_repeated_label_refuses_the_batch(admin_a, tenant_a, hosts):
    from operations.telemetry.prompb import WriteRequest

    request = WriteRequest()
    series = request.timeseries.add()
    for name, value in [("__name__", "DCGM_FI_DEV_GPU_TEMP"), ("Hostname", "a"), ("Hostname", "b")]:
        series.labels.add(name=name, value=value)
    series.samples.add(value=1, timestamp=ms(minutes_ago(1)))
    response = remote_write(admin_a, tenant_a.slug, snappy(request.SerializeToString()))
    assert response.status_code == 400
    assert error_fields(response) == {"timeseries.0.labels": ["Label 'Hostname' is repeated."]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "The body is empty"),
        (b"\xff\xff\xff\xff\xff\xff", "not snappy-compressed"),
        (b"\x05abc", "not valid snappy"),
        (snappy(b"\x0a\x05\x0a\x03\x0a\x01\xff"), "String field had bad UTF-8"),
        (snappy(b"\x0a\xff\xff\xff\xff\x0f"), "Not a valid prometheus.WriteRequest"),
        (snappy(b"not a protobuf at all"), "Not a valid prometheus.WriteRequest"),
        (snappy(b"\x0a" * 20000), "Not a valid prometheus.WriteRequest"),
    ],
)
def test_bytes_that_are_not_a_write_request_are_a_clear_400(admin_a, tenant_a, body, message):
    response = remote_write(admin_a, tenant_a.slug, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert message in error["message"] + str(error.get("fields", {}))


@pytest.mark.parametrize(
    ("content_type", "headers", "message"),
    [
        ("text/plain", {}, "Send Content-Type: application/x-protobuf"),
        ("application/json", {}, "Send Content-Type: application/x-protobuf"),
        (
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            {},
            "Only remote write 1.0",
        ),
        ("application/x-protobuf", {"HTTP_CONTENT_ENCODING": "gzip"}, "Content-Encoding: snappy"),
        ("application/x-protobuf", {"HTTP_CONTENT_ENCODING": ""}, "Content-Encoding: snappy"),
    ],
)
def test_another_content_type_or_encoding_is_a_415(
    admin_a, tenant_a, content_type, headers, message
):
    body = snappy(write_request([]))
    response = remote_write(admin_a, tenant_a.slug, body, content_type=content_type, **headers)
    assert response.status_code == 415
    assert message in response.json()["error"]["message"]


def test_the_v1_proto_parameter_is_accepted(admin_a, tenant_a):
    response = remote_write(
        admin_a,
        tenant_a.slug,
        snappy(write_request([])),
        content_type="application/x-protobuf;proto=prometheus.WriteRequest",
    )
    assert response.status_code == 204


def test_a_declared_length_over_the_limit_is_refused_before_decompressing(admin_a, tenant_a):
    # A 6-byte body declaring 4 GiB once decompressed: refused on its header alone.
    response = remote_write(admin_a, tenant_a.slug, b"\xff\xff\xff\xff\x0f\x00")
    assert response.status_code == 413
    assert "4294967295 bytes" in response.json()["error"]["message"]


def test_a_snappy_bomb_is_a_413(admin_a, tenant_a, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    bomb = snappy(b"\x00" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1))
    assert len(bomb) < 100_000
    response = remote_write(admin_a, tenant_a.slug, bomb)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_compressed_body_over_the_limit_is_a_413(admin_a, tenant_a, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
    moment = ms(minutes_ago(1))
    body = snappy(write_request([temp(70, moment, Hostname=f"h{i}") for i in range(30)]))
    assert len(body) > 200
    assert remote_write(admin_a, tenant_a.slug, body).status_code == 413


def test_a_length_that_lies_is_refused(admin_a, tenant_a):
    data = write_request([({"__name__": "up"}, [(1, 1)])])
    honest, declared = snappy(data), len(data)
    lying = bytes([declared + 5]) + honest[1:]  # one-byte varint header, five bytes too many
    assert declared + 5 < 128
    response = remote_write(admin_a, tenant_a.slug, lying)
    assert response.status_code == 400
    assert "not valid snappy" in response.json()["error"]["message"]


def test_a_token_without_the_ingest_scope_is_refused(tenant_a, hosts):
    user = make_member(tenant_a, TenantRole.ADMIN, username="acme-no-ingest")
    reader = Actor(user, make_token(user, scopes=("read", "write")))
    body = snappy(write_request([temp(70, ms(minutes_ago(1)))]))
    assert remote_write(reader, tenant_a.slug, body).status_code == 403
    assert stored(tenant_a) == []


def test_no_credentials_is_a_401(tenant_a, hosts):
    from rest_framework.test import APIClient

    anonymous = type("Anonymous", (), {"client": APIClient()})()
    body = snappy(write_request([temp(70, ms(minutes_ago(1)))]))
    assert remote_write(anonymous, tenant_a.slug, body).status_code == 401


def test_a_get_is_a_405_in_the_error_format(admin_a, tenant_a):
    response = admin_a.client.get(f"/api/v1/tenants/{tenant_a.slug}/telemetry/remote-write")
    assert response.status_code == 405
    assert response.json()["error"]["status"] == 405


def test_the_stale_marker_is_told_from_other_nans():
    assert rw.is_stale_marker(STALE_NAN)
    assert not rw.is_stale_marker(math.nan)
    assert not rw.is_stale_marker(struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000001))[0])
    assert not rw.is_stale_marker(0.0)
