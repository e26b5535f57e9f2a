"""GET telemetry/series: raw and rolled-up points, the auto step, validation, query budget."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from operations.telemetry import selectors, services
from tenants.models import TenantRole
from tenants.scoping import tenant_scope
from tests.conftest import Actor
from tests.factories import make_member, make_token
from tests.telemetry.helpers import iso, url

pytestmark = pytest.mark.django_db

NODE = "compute:acme-gpu-sat-01"


@pytest.fixture
def hour():
    return (timezone.now() - dt.timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)


def ingest(tenant, points, *, resource=NODE, metric="gpu_utilization"):
    samples = [
        {"resource": resource, "metric": metric, "ts": iso(moment), "value": value}
        for moment, value in points
    ]
    with tenant_scope(tenant.id):
        services.telemetry_ingest_batch(tenant=tenant, samples=samples)
        services.telemetry_rollup_pending(tenant=tenant)


def series(actor, tenant, **params):
    params = {"resource": NODE, "metric": "gpu_utilization", **params}
    return actor.client.get(url(tenant, "series"), params)


def test_raw_points_in_order_with_an_exclusive_end(admin_a, tenant_a, estate, hour):
    points = [(hour + dt.timedelta(minutes=m), float(m)) for m in (30, 0, 10, 20)]
    ingest(tenant_a, points)
    response = series(
        admin_a,
        tenant_a,
        **{"from": iso(hour), "to": iso(hour + dt.timedelta(minutes=30)), "step": "raw"},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["resource"] == {
        "kind": "compute",
        "id": estate["node"].pk,
        "name": "acme-gpu-sat-01",
    }
    assert body["metric"] == {"name": "gpu_utilization", "unit": "%"}
    assert body["step"] == "raw"
    assert body["points"] == [
        {"ts": iso(hour + dt.timedelta(minutes=m)), "value": float(m)} for m in (0, 10, 20)
    ]


def test_by_id_and_for_a_deployment(admin_a, tenant_a, estate, hour):
    ingest(
        tenant_a,
        [(hour, 87.5)],
        resource="deployment:fraud-scoring-prod",
        metric="inference_latency_p95_ms",
    )
    response = admin_a.client.get(
        url(tenant_a, "series"),
        {"deployment_id": estate["deployment"].pk, "metric": "inference_latency_p95_ms"},
    )
    assert response.status_code == 200, response.content
    assert response.json()["points"] == [{"ts": iso(hour), "value": 87.5}]


def test_hourly_rollups_with_the_first_hour_whole(admin_a, tenant_a, estate, hour):
    ingest(tenant_a, [(hour + dt.timedelta(minutes=m), v) for m, v in ((5, 10), (50, 30), (70, 7))])
    response = series(
        admin_a,
        tenant_a,
        **{"from": iso(hour + dt.timedelta(minutes=30)), "step": "1h"},
    )
    assert response.status_code == 200, response.content
    assert response.json()["points"] == [
        {"ts": iso(hour), "min": 10.0, "max": 30.0, "avg": 20.0, "count": 2},
        {"ts": iso(hour + dt.timedelta(hours=1)), "min": 7.0, "max": 7.0, "avg": 7.0, "count": 1},
    ]


def test_daily_points_weigh_each_hour_by_its_count(admin_a, tenant_a, estate):
    day = (timezone.now() - dt.timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    ingest(
        tenant_a,
        [
            (day + dt.timedelta(hours=1), 10),
            (day + dt.timedelta(hours=1, minutes=10), 20),
            (day + dt.timedelta(hours=1, minutes=20), 30),
            (day + dt.timedelta(hours=5), 90),
            (day + dt.timedelta(days=1, hours=2), 50),
        ],
    )
    response = series(
        admin_a, tenant_a, **{"from": iso(day + dt.timedelta(hours=12)), "step": "1d"}
    )
    assert response.status_code == 200, response.content
    assert response.json()["points"] == [
        {"ts": iso(day), "min": 10.0, "max": 90.0, "avg": 37.5, "count": 4},
        {"ts": iso(day + dt.timedelta(days=1)), "min": 50.0, "max": 50.0, "avg": 50.0, "count": 1},
    ]


@pytest.mark.parametrize(
    ("span", "step"),
    [(dt.timedelta(hours=6), "raw"), (dt.timedelta(days=7), "1h"), (dt.timedelta(days=90), "1d")],
)
def test_auto_picks_the_step_by_range(admin_a, tenant_a, estate, span, step):
    end = timezone.now()
    response = series(admin_a, tenant_a, **{"from": iso(end - span), "to": iso(end)})
    assert response.status_code == 200, response.content
    assert response.json()["step"] == step


def test_the_default_range_is_the_last_day_raw(admin_a, tenant_a, estate, hour):
    ingest(tenant_a, [(hour, 1.0), (hour - dt.timedelta(days=2), 2.0)])
    body = series(admin_a, tenant_a).json()
    assert body["step"] == "raw"
    assert [point["value"] for point in body["points"]] == [1.0]


def test_too_many_raw_points(admin_a, tenant_a, estate, hour, monkeypatch):
    monkeypatch.setattr(selectors, "MAX_RAW_POINTS", 2)
    ingest(tenant_a, [(hour + dt.timedelta(minutes=m), 1.0) for m in range(3)])
    start = iso(hour)
    explicit = series(admin_a, tenant_a, **{"from": start, "step": "raw"})
    assert explicit.status_code == 400
    assert list(explicit.json()["error"]["fields"]) == ["step"]
    automatic = series(admin_a, tenant_a, **{"from": start})
    assert automatic.status_code == 200
    assert automatic.json()["step"] == "1h"
    assert automatic.json()["points"][0]["count"] == 3


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"metric": None}, "metric", "This field is required."),
        ({"metric": "gpu_utilisation"}, "metric", '"gpu_utilisation" is not a valid choice.'),
        ({"resource": None}, "resource", "Name the resource once"),
        ({"compute_id": 1}, "resource", "Name the resource once"),
        ({"resource": "rack:7"}, "resource", "Expected 'compute:<hostname>'"),
        ({"resource": "compute:nope"}, "resource", "Unknown compute resource 'nope'."),
        ({"step": "5m"}, "step", '"5m" is not a valid choice.'),
        ({"from": "2026-11-25T10:00:00Z", "to": "2026-11-25T09:00:00Z"}, "to", "Must be after"),
        ({"from": "last tuesday"}, "from", "Datetime has wrong format"),
        ({"metirc": "x"}, "metirc", "Unknown field."),
        ({"metric": "error_rate"}, "metric", "does not apply to compute resources"),
    ],
)
def test_bad_queries_name_the_field(admin_a, tenant_a, estate, params, field, message):
    query = {"resource": NODE, "metric": "gpu_utilization", **params}
    query = {key: value for key, value in query.items() if value is not None}
    response = admin_a.client.get(url(tenant_a, "series"), query)
    assert response.status_code == 400, response.content
    fields = response.json()["error"]["fields"]
    assert message in fields[field][0]


def test_an_unknown_id_is_a_400(admin_a, tenant_a, estate):
    response = admin_a.client.get(
        url(tenant_a, "series"), {"compute_id": 987654, "metric": "gpu_utilization"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "compute_id": ["Unknown compute resource id 987654."]
    }


@pytest.mark.parametrize("step", ["raw", "1h", "1d"])
def test_the_query_count_does_not_grow_with_the_points(admin_a, tenant_a, estate, step):
    start = (timezone.now() - dt.timedelta(days=10)).replace(minute=0, second=0, microsecond=0)

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = series(admin_a, tenant_a, **{"from": iso(start), "step": step})
        assert response.status_code == 200, response.content
        return len(queries)

    ingest(tenant_a, [(start + dt.timedelta(hours=1), 1.0)])
    series(admin_a, tenant_a)  # the token's last-used time is written once a minute
    few = count_queries()
    ingest(
        tenant_a, [(start + dt.timedelta(hours=h, minutes=7), float(h % 100)) for h in range(200)]
    )
    assert len(series(admin_a, tenant_a, **{"from": iso(start), "step": step}).json()["points"]) > 8
    assert count_queries() == few


def test_reading_needs_the_read_scope(tenant_a, estate):
    user = make_member(tenant_a, TenantRole.VIEWER)
    reader = Actor(user, make_token(user, scopes=("read",)))
    assert series(reader, tenant_a).status_code == 200
    ingest_only = Actor(user, make_token(user, scopes=("ingest",)))
    response = series(ingest_only, tenant_a)
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "This API token lacks the 'read' scope."


def test_the_metric_catalogue(admin_a, tenant_a):
    response = admin_a.client.get(url(tenant_a, "metrics"))
    assert response.status_code == 200
    by_name = {metric["name"]: metric for metric in response.json()}
    assert by_name["gpu_utilization"]["dcgm_fields"] == ["DCGM_FI_DEV_GPU_UTIL"]
    assert by_name["gpu_utilization"]["resources"] == ["compute", "gpu"]
    assert by_name["cost_per_hour"]["resources"] == ["compute", "deployment"]
    assert by_name["inference_latency_p95_ms"]["unit"] == "ms"


def test_re_sent_and_overlapping_batches_show_each_sample_once(admin_a, tenant_a, estate, hour):
    # Batches through the HTTP endpoint: the first, then one overlapping it in time (two stored
    # samples with other values, three new ones in between and after), then both again.
    first = [(hour + dt.timedelta(minutes=m), float(m)) for m in (0, 20, 40)]
    second = [(hour + dt.timedelta(minutes=m), m + 0.5) for m in (10, 20, 30, 40, 50)]

    def post(points):
        samples = [
            {"resource": NODE, "metric": "gpu_utilization", "ts": iso(ts), "value": value}
            for ts, value in points
        ]
        response = admin_a.client.post(
            url(tenant_a, "samples"), {"samples": samples}, format="json"
        )
        assert response.status_code == 200, response.content
        return response.json()["inserted"]

    assert [post(first), post(second), post(first), post(second)] == [3, 3, 0, 0]
    with tenant_scope(tenant_a.id):
        services.telemetry_rollup_pending(tenant=tenant_a)
    window = {"from": iso(hour), "to": iso(hour + dt.timedelta(hours=1))}
    raw = series(admin_a, tenant_a, step="raw", **window).json()["points"]
    expected = [0.0, 10.5, 20.0, 30.5, 40.0, 50.5]
    assert [point["value"] for point in raw] == expected
    assert [point["ts"] for point in raw] == [
        iso(hour + dt.timedelta(minutes=m)) for m in range(0, 60, 10)
    ]
    hourly = series(admin_a, tenant_a, step="1h", **window).json()["points"]
    assert [(p["count"], p["min"], p["max"]) for p in hourly] == [(6, 0.0, 50.5)]
    assert hourly[0]["avg"] == pytest.approx(sum(expected) / 6)
