"""The demo's telemetry seeded into VictoriaMetrics: the same patterns in the rollups (computed
from VictoriaMetrics) and in the raw reads, nothing in the database's sample table."""

from __future__ import annotations

import datetime as dt

import pytest

import tests.telemetry.test_demo as builtin_demo
from operations.inventory.demo import seed_inventory
from operations.inventory.models import ComputeResource, Deployment
from operations.telemetry.demo import seed_telemetry
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.models import TelemetrySample
from operations.telemetry.selectors import telemetry_reporting_since, telemetry_window_stats
from tenants.models import Tenant
from tenants.scoping import tenant_scope
from tests.conftest import shared_rows
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

NOW = builtin_demo.NOW


@pytest.fixture(scope="class")
def one_day(vm_for_the_class, django_db_setup, django_db_blocker) -> tuple[int, dict]:
    """A day of the demo's telemetry for tenant A in VictoriaMetrics (and B's estate without
    any), made once for the class: each test starts from it and undoes its own rows; its writes
    to VictoriaMetrics only re-send what is there. (A's id, the seed's result.)"""

    def make():
        tenant_a = TenantFactory(name="Acme Analytics", slug="acme")
        tenant_b = TenantFactory(name="Borealis Bank", slug="borealis")
        seed_inventory(tenant_a, profile="finance")
        seed_inventory(tenant_b, profile="logistics")
        return tenant_a.pk, seed_telemetry(tenant_a, days=1, now=NOW)

    yield from shared_rows(django_db_blocker, make)


class TestOneDay:
    @pytest.fixture
    def seeded(self, one_day, db) -> dict:
        return one_day[1]

    @pytest.fixture
    def tenant_a(self, one_day, db):
        return Tenant.objects.get(pk=one_day[0])

    def test_the_patterns_show_in_rollups_computed_from_victoria_metrics(self, seeded, tenant_a):
        assert seeded["inserted"] == seeded["samples"] > 0
        assert seeded["hours"] >= 24
        assert builtin_demo.mean_utilization(tenant_a, "acme-gpu-idle-01") == pytest.approx(
            2, abs=1
        )
        assert builtin_demo.mean_utilization(tenant_a, "acme-gpu-hot-01") == pytest.approx(
            97, abs=2
        )
        assert 20 < builtin_demo.mean_utilization(tenant_a, "acme-gpu-main-01") < 80
        with tenant_scope(tenant_a.id):
            assert not TelemetrySample.objects.exists()

    def test_the_latency_spike_and_the_silent_node_read_from_victoria_metrics(
        self, seeded, tenant_a
    ):
        with tenant_scope(tenant_a.id):
            production = Deployment.objects.filter(environment="production").order_by("name")
            spiking, calm = production[0], production[1]
            peaks = {
                row.resource_id: row.highest
                for row in telemetry_window_stats(
                    tenant=tenant_a,
                    kind=ResourceKind.DEPLOYMENT,
                    metric=METRICS_BY_NAME["inference_latency_p95_ms"],
                    start=NOW - dt.timedelta(days=1),
                    end=NOW,
                )
            }
            assert peaks[spiking.pk] > 600
            assert peaks[calm.pk] < 200
            reporting = telemetry_reporting_since(
                tenant=tenant_a, since=NOW - dt.timedelta(hours=2)
            )
            in_maintenance = ComputeResource.objects.get(hostname="acme-gpu-main-03")
            assert reporting["compute"]
            assert in_maintenance.pk not in reporting["compute"]

    def test_running_it_again_forwards_the_same_samples_and_stores_them_once(
        self, seeded, tenant_a
    ):
        again = seed_telemetry(tenant_a, days=1, now=NOW)
        # VictoriaMetrics cannot tell ingest which samples were new: all are forwarded ...
        assert again["inserted"] == again["samples"] == seeded["samples"]
        # ... and its deduplication keeps each once: the hour's sample counts are unchanged.
        assert builtin_demo.mean_utilization(tenant_a, "acme-gpu-idle-01") == pytest.approx(
            2, abs=1
        )
        with tenant_scope(tenant_a.id):
            node = ComputeResource.objects.get(hostname="acme-gpu-idle-01")
            (stats,) = telemetry_window_stats(
                tenant=tenant_a,
                kind=ResourceKind.COMPUTE,
                metric=METRICS_BY_NAME["gpu_utilization"],
                start=NOW - dt.timedelta(hours=1),
                end=NOW - dt.timedelta(minutes=1),
                resources=ComputeResource.objects.filter(pk=node.pk).values("pk"),
            )
        assert stats.samples == 12
