"""telemetry_window_stats: per-resource statistics of one metric over a window (what alert rules
judge), on both stores; on PostgreSQL the block read agrees with the per-sample view."""

from __future__ import annotations

import datetime as dt

import pytest

from operations.inventory.models import ComputeResource
from operations.telemetry import services
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.selectors import WindowStats, telemetry_window_stats
from operations.telemetry.storage import SampleStore, sample_store
from tenants.scoping import tenant_scope
from tests.conftest import requires_postgres
from tests.telemetry.helpers import iso

pytestmark = pytest.mark.django_db

HOUR = dt.datetime(2026, 1, 14, 10, 0, tzinfo=dt.UTC)
GPU = METRICS_BY_NAME["gpu_utilization"]


def at(minutes: int) -> dt.datetime:
    return HOUR + dt.timedelta(minutes=minutes)


def feed(tenant, resource: str, values, *, start: int, metric: str = "gpu_utilization"):
    """One batch: ``values`` for ``resource`` every five minutes from ``at(start)``."""
    samples = [
        {"resource": resource, "metric": metric, "ts": iso(at(start + 5 * i)), "value": value}
        for i, value in enumerate(values)
    ]
    with tenant_scope(tenant.id):
        services.telemetry_ingest_batch(tenant=tenant, samples=samples, now=at(24 * 60))


def window_stats(tenant, start: int, end: int, **kwargs) -> list[WindowStats]:
    with tenant_scope(tenant.id):
        return telemetry_window_stats(
            tenant=tenant,
            kind=ResourceKind.COMPUTE,
            metric=GPU,
            start=at(start),
            end=at(end),
            **kwargs,
        )


@pytest.fixture
def fed(tenant_a, tenant_b, estate):
    """Two nodes of tenant A with GPU utilisation, in several batches across an hour boundary,
    plus samples the window must leave out: another metric, a deployment, another tenant."""
    feed(tenant_a, "compute:acme-gpu-sat-01", [91, 92, 93, 94], start=40)
    feed(tenant_a, "compute:acme-gpu-sat-01", [95, 96, 97], start=60)
    feed(tenant_a, "compute:acme-gpu-idle-01", [1, 2, 3, 4, 5], start=40)
    feed(tenant_a, "compute:acme-gpu-idle-01", [100] * 9, start=40, metric="gpu_power_watts")
    latency = "inference_latency_p95_ms"
    feed(tenant_a, "deployment:fraud-scoring-prod", [50] * 5, start=40, metric=latency)
    feed(tenant_b, "compute:borealis-gpu-01", [99] * 9, start=40)
    return estate


def test_statistics_per_resource_with_both_ends_of_the_window_included(tenant_a, fed):
    stats = window_stats(tenant_a, 45, 65)
    assert stats == [
        WindowStats(fed["node"].pk, 92.0, 96.0, 5, at(45), at(65)),
        WindowStats(fed["idle"].pk, 2.0, 5.0, 4, at(45), at(60)),
    ]
    assert [row.resource_id for row in stats] == sorted(row.resource_id for row in stats)


def test_resources_narrow_the_read_to_the_ids_of_a_query(tenant_a, fed):
    with tenant_scope(tenant_a.id):
        idle_only = ComputeResource.objects.filter(hostname__endswith="-idle-01").values("pk")
    assert window_stats(tenant_a, 45, 65, resources=idle_only) == [
        WindowStats(fed["idle"].pk, 2.0, 5.0, 4, at(45), at(60))
    ]


def test_an_empty_window_and_another_tenant_read_nothing_foreign(tenant_a, tenant_b, fed):
    assert window_stats(tenant_a, 120, 180) == []
    assert window_stats(tenant_b, 45, 65) == [
        WindowStats(fed["foreign"].pk, 99.0, 99.0, 5, at(45), at(65))
    ]


def test_one_query_whatever_the_resources(tenant_a, fed, django_assert_num_queries):
    with tenant_scope(tenant_a.id):
        nodes = ComputeResource.objects.filter(hostname__startswith="acme-").values("pk")
        with django_assert_num_queries(1):
            stats = telemetry_window_stats(
                tenant=tenant_a,
                kind=ResourceKind.COMPUTE,
                metric=GPU,
                start=at(45),
                end=at(65),
                resources=nodes,
            )
    assert len(stats) == 2


@requires_postgres
def test_the_block_read_agrees_with_the_per_sample_view(tenant_a, fed):
    assert sample_store().partitioned  # telemetry_window_stats reads the blocks
    for start, end in ((45, 65), (40, 100), (41, 59), (60, 60)):
        blocks = window_stats(tenant_a, start, end)
        with tenant_scope(tenant_a.id):
            view = SampleStore().window_stats(
                tenant_id=tenant_a.id,
                kind=ResourceKind.COMPUTE,
                metric=GPU.code,
                start=at(start),
                end=at(end),
            )
        assert blocks, (start, end)  # every window holds samples: not two empty lists
        assert [WindowStats(*row) for row in view] == blocks, (start, end)
