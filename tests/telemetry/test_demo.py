"""Demo telemetry: visible patterns on the demo estate, rolled up, and safe to run again."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Avg, Max
from django.utils import timezone

from operations.inventory.demo import seed_inventory
from operations.inventory.models import ComputeResource, Deployment
from operations.telemetry.demo import seed_telemetry
from operations.telemetry.models import TelemetryRollup, TelemetrySample
from tenants.scoping import tenant_scope
from tests.telemetry.helpers import code

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(second=0, microsecond=0)


@pytest.fixture
def seeded(tenant_a, tenant_b):
    seed_inventory(tenant_a, profile="finance")
    seed_inventory(tenant_b, profile="logistics")
    return seed_telemetry(tenant_a, days=1, now=NOW)


def mean_utilization(tenant, hostname: str) -> float:
    with tenant_scope(tenant.id):
        node = ComputeResource.objects.get(hostname=hostname)
        return TelemetryRollup.objects.filter(
            resource_kind=1, resource_id=node.pk, metric=code("gpu_utilization")
        ).aggregate(mean=Avg("avg_value"))["mean"]


def test_the_patterns_show_in_the_rollups(seeded, tenant_a):
    assert seeded["inserted"] == seeded["samples"] > 0
    assert seeded["hours"] >= 24
    assert mean_utilization(tenant_a, "acme-gpu-idle-01") == pytest.approx(2, abs=1)
    assert mean_utilization(tenant_a, "acme-gpu-hot-01") == pytest.approx(97, abs=2)
    assert 20 < mean_utilization(tenant_a, "acme-gpu-main-01") < 80


def test_one_production_deployment_has_a_latency_spike(seeded, tenant_a):
    with tenant_scope(tenant_a.id):
        production = Deployment.objects.filter(environment="production").order_by("name")
        spiking, calm = production[0], production[1]
        latency = code("inference_latency_p95_ms")

        def peak(deployment):
            return TelemetrySample.objects.filter(
                resource_kind=2, resource_id=deployment.pk, metric=latency
            ).aggregate(peak=Max("value"))["peak"]

        assert peak(spiking) > 600
        assert peak(calm) < 200
        during = TelemetrySample.objects.filter(
            resource_kind=2,
            resource_id=spiking.pk,
            metric=latency,
            ts__gte=NOW - dt.timedelta(hours=7, minutes=30),
            ts__lt=NOW - dt.timedelta(hours=6, minutes=30),
        ).values_list("value", flat=True)
        assert min(during) > 500


def test_compute_in_maintenance_reports_nothing(seeded, tenant_a):
    with tenant_scope(tenant_a.id):
        node = ComputeResource.objects.get(hostname="acme-gpu-main-03")
        assert not TelemetrySample.objects.filter(resource_kind=1, resource_id=node.pk).exists()


def test_running_it_again_adds_only_the_time_that_passed(seeded, tenant_a, tenant_b):
    again = seed_telemetry(tenant_a, days=1, now=NOW)
    assert again["inserted"] == 0
    assert again["samples"] == seeded["samples"]
    later = seed_telemetry(tenant_a, days=1, now=NOW + dt.timedelta(minutes=10))
    assert 0 < later["inserted"] < seeded["inserted"] / 100
    with tenant_scope(tenant_b.id):
        assert not TelemetrySample.objects.exists()
