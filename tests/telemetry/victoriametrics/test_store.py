"""The VictoriaMetrics store against a real victoria-metrics: labels set server-side, and every
read (raw series, window statistics, last sample times, reporting resources, hourly rollups)
answering what the built-in store answers for the same samples."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from operations.telemetry import selectors, services
from operations.telemetry.backends.victoriametrics import (
    VictoriaMetricsSampleStore,
    series_selector,
)
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.models import TelemetryRollup
from operations.telemetry.storage import sample_store
from tenants.scoping import tenant_scope
from tests.telemetry.helpers import iso, rollups

pytestmark = pytest.mark.django_db

GPU = METRICS_BY_NAME["gpu_utilization"]
POWER = METRICS_BY_NAME["gpu_power_watts"]
LATENCY = METRICS_BY_NAME["inference_latency_p95_ms"]


@pytest.fixture
def hour():
    return (timezone.now() - dt.timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)


def at(hour, minutes: float) -> dt.datetime:
    return hour + dt.timedelta(minutes=minutes)


def feed(tenant, resource: str, values, *, start: dt.datetime, metric: str = "gpu_utilization"):
    samples = [
        {
            "resource": resource,
            "metric": metric,
            "ts": iso(start + dt.timedelta(minutes=5 * i)),
            "value": v,
        }
        for i, v in enumerate(values)
    ]
    with tenant_scope(tenant.id):
        return services.telemetry_ingest_batch(tenant=tenant, samples=samples)


def feed_scenario(tenant_a, tenant_b, hour):
    """Samples of A across an hour boundary, in several batches (one re-sent), plus what A's
    reads must leave out: another metric, a deployment, tenant B's node."""
    feed(tenant_a, "compute:acme-gpu-sat-01", [91, 92, 93, 94], start=at(hour, 40))
    feed(tenant_a, "compute:acme-gpu-sat-01", [95, 96.5, 97], start=at(hour, 60))
    feed(tenant_a, "compute:acme-gpu-sat-01", [95, 96.5, 97], start=at(hour, 60))  # re-sent
    feed(tenant_a, "compute:acme-gpu-idle-01", [1, 2, 3, 4, 5], start=at(hour, 40))
    feed(tenant_a, "compute:acme-gpu-idle-01", [100] * 9, start=at(hour, 40), metric=POWER.name)
    feed(
        tenant_a, "deployment:fraud-scoring-prod", [50] * 5, start=at(hour, 40), metric=LATENCY.name
    )
    feed(tenant_b, "compute:borealis-gpu-01", [77] * 12, start=at(hour, 30))


def reads(tenant, estate, hour) -> dict:
    """Every read of the store interface, through the selectors, for tenant A."""
    node, idle, deployment = estate["node"].pk, estate["idle"].pk, estate["deployment"].pk
    with tenant_scope(tenant.id):
        services.telemetry_rollup_window(tenant=tenant, start=hour, end=at(hour, 120))
        node_ref = selectors.ResourceRef(ResourceKind.COMPUTE, node, "n")
        return {
            "raw": selectors.telemetry_series(
                tenant=tenant,
                resource=node_ref,
                metric=GPU,
                start=at(hour, 45),
                end=at(hour, 70),
                step="raw",
            ).points,
            "hourly": selectors.telemetry_series(
                tenant=tenant,
                resource=node_ref,
                metric=GPU,
                start=hour,
                end=at(hour, 120),
                step="1h",
            ).points,
            "window": selectors.telemetry_window_stats(
                tenant=tenant,
                kind=ResourceKind.COMPUTE,
                metric=GPU,
                start=at(hour, 45),
                end=at(hour, 65),
            ),
            "window_of_idle": selectors.telemetry_window_stats(
                tenant=tenant,
                kind=ResourceKind.COMPUTE,
                metric=GPU,
                start=at(hour, 0),
                end=at(hour, 120),
                resources=selectors.ComputeResource.objects.filter(pk=idle).values("pk"),
            ),
            "last": selectors.telemetry_last_sample_times(
                tenant=tenant,
                series=[
                    (ResourceKind.COMPUTE, node, GPU),
                    (ResourceKind.COMPUTE, idle, GPU),
                    (ResourceKind.COMPUTE, idle, POWER),
                    (ResourceKind.DEPLOYMENT, deployment, LATENCY),
                    (ResourceKind.COMPUTE, estate["foreign"].pk, GPU),
                ],
                since=at(hour, 50),
                until=at(hour, 65),
            ),
            "reporting": selectors.telemetry_reporting_since(tenant=tenant, since=at(hour, 55)),
            "reporting_late": selectors.telemetry_reporting_since(
                tenant=tenant, since=at(hour, 75)
            ),
            "rollups": [row[:3] + row[3:] for row in rollups(tenant)],
            "hourly_means": selectors.telemetry_hourly_means(
                tenant=tenant,
                resource_kind=ResourceKind.COMPUTE,
                resource_ids=[node, idle],
                metric=GPU,
                start=hour,
                end=at(hour, 120),
            ),
        }


def test_every_read_answers_as_the_builtin_store_does(
    tenant_a, tenant_b, estate, hour, settings, vm
):
    settings.TELEMETRY_BACKEND = "builtin"
    feed_scenario(tenant_a, tenant_b, hour)
    builtin = reads(tenant_a, estate, hour)
    with tenant_scope(tenant_a.id):
        TelemetryRollup.objects.all().delete()
    settings.TELEMETRY_BACKEND = "victoriametrics"
    assert isinstance(sample_store(), VictoriaMetricsSampleStore)
    feed_scenario(tenant_a, tenant_b, hour)
    victoria = reads(tenant_a, estate, hour)

    # The scenario gives every read something to answer.
    assert all(builtin[name] for name in ("raw", "window", "last", "rollups", "hourly"))
    for name in builtin:
        if name == "rollups":
            # computed_at and ids aside, the same rows (means to float precision).
            assert [row[:4] for row in victoria[name]] == [row[:4] for row in builtin[name]]
            for mine, theirs in zip(victoria[name], builtin[name], strict=True):
                assert mine[4:] == pytest.approx(theirs[4:])
        else:
            assert victoria[name] == builtin[name], name


def test_ingest_labels_every_series_server_side(tenant_a, estate, hour, vm, settings):
    result = feed(tenant_a, "compute:acme-gpu-sat-01", [10, 20], start=at(hour, 5))
    assert result.inserted == 2
    (series,) = vm.export(f'{{groundwork="{settings.TELEMETRY_INSTANCE}"}}')
    assert series["metric"] == {
        "__name__": "gpu_utilization",
        "tenant": str(tenant_a.id),
        "kind": "compute",
        "resource_id": str(estate["node"].pk),
        "groundwork": settings.TELEMETRY_INSTANCE,
    }
    assert series["values"] == [10, 20]
    # Nothing in the database's sample table: the samples live in VictoriaMetrics only.
    settings.TELEMETRY_BACKEND = "builtin"
    with tenant_scope(tenant_a.id):
        assert selectors.telemetry_reporting_since(tenant=tenant_a, since=hour)["compute"] == set()


def test_rollup_job_leaves_hours_marked_within_the_search_delay(
    tenant_a, estate, hour, settings, vm
):
    settings.TELEMETRY_SEARCH_DELAY_SECONDS = 3600
    feed(tenant_a, "compute:acme-gpu-sat-01", [10, 20], start=at(hour, 5))
    with tenant_scope(tenant_a.id):
        assert services.telemetry_rollup_pending(tenant=tenant_a) == {"hours": 0, "rollups": 0}
    settings.TELEMETRY_SEARCH_DELAY_SECONDS = 0
    with tenant_scope(tenant_a.id):
        assert services.telemetry_rollup_pending(tenant=tenant_a)["rollups"] == 1
    assert [row[4:] for row in rollups(tenant_a)] == [(10.0, 20.0, 15.0, 2)]


def test_selector_always_starts_with_the_exact_tenant_matcher(settings):
    settings.TELEMETRY_INSTANCE = ""
    assert series_selector(7, metrics=[GPU.code], kinds=[1], resource_ids=[3, 12]) == (
        '{tenant="7", __name__="gpu_utilization", kind="compute", resource_id=~"3|12"}'
    )
    assert series_selector(7).startswith('{tenant="7", __name__=~"gpu_utilization|')
