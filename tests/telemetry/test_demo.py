"""Demo telemetry: visible patterns on the demo estate, rolled up, and safe to run again."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Avg, Max, Sum
from django.db.models.functions import TruncDay
from django.utils import timezone

from operations.inventory.demo import seed_inventory
from operations.inventory.models import ComputeResource, Deployment, GpuDevice
from operations.telemetry.demo import DEMO_DAYS, DETAIL_DAYS, SPEND_JUMP_DAYS, seed_telemetry
from operations.telemetry.models import TelemetryRollup, TelemetrySample
from tenants.models import Tenant
from tenants.scoping import tenant_scope
from tests.conftest import shared_rows
from tests.factories import TenantFactory
from tests.telemetry.helpers import code

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(second=0, microsecond=0)


def mean_utilization(tenant, hostname: str) -> float:
    with tenant_scope(tenant.id):
        node = ComputeResource.objects.get(hostname=hostname)
        return TelemetryRollup.objects.filter(
            resource_kind=1, resource_id=node.pk, metric=code("gpu_utilization")
        ).aggregate(mean=Avg("avg_value"))["mean"]


# --- The demo's history: ten days, the older ones hourly ----------------------------------------


def node_id(tenant, hostname: str) -> int:
    with tenant_scope(tenant.id):
        return ComputeResource.objects.get(hostname=hostname).pk


def daily_utilisation(tenant, hostname: str) -> list[float]:
    with tenant_scope(tenant.id):
        rows = (
            TelemetryRollup.objects.filter(
                resource_kind=1,
                resource_id=node_id(tenant, hostname),
                metric=code("gpu_utilization"),
            )
            .annotate(day=TruncDay("bucket", tzinfo=dt.UTC))
            .values("day")
            .annotate(mean=Avg("avg_value"))
            .order_by("day")
        )
        return [row["mean"] for row in rows]


def daily_spend(tenant, **resource) -> dict[dt.date, float]:
    with tenant_scope(tenant.id):
        rows = (
            TelemetryRollup.objects.filter(metric=code("cost_per_hour"), **resource)
            .annotate(day=TruncDay("bucket", tzinfo=dt.UTC))
            .values("day")
            .annotate(spend=Sum("avg_value"))
        )
        return {row["day"].date(): row["spend"] for row in rows}


@pytest.fixture(scope="class")
def ten_days(django_db_setup, django_db_blocker) -> tuple[int, int, dict]:
    """The demo's ten days for tenant A (with the spend jump), made once for the class: each
    test starts from them and undoes only its own changes. (A's id, B's id, the seed's result.)"""

    def make():
        tenant_a = TenantFactory(name="Acme Analytics", slug="acme")
        tenant_b = TenantFactory(name="Borealis Bank", slug="borealis")
        seed_inventory(tenant_a, profile="finance")
        seed_inventory(tenant_b, profile="logistics")
        result = seed_telemetry(tenant_a, days=DEMO_DAYS, spend_jump=True, now=NOW)
        return tenant_a.pk, tenant_b.pk, result

    yield from shared_rows(django_db_blocker, make)


class TestTenDays:
    @pytest.fixture
    def history(self, ten_days, db) -> dict:
        return ten_days[2]

    @pytest.fixture
    def tenant_a(self, ten_days, db):
        return Tenant.objects.get(pk=ten_days[0])

    @pytest.fixture
    def tenant_b(self, ten_days, db):
        return Tenant.objects.get(pk=ten_days[1])

    def test_older_days_are_hourly_and_every_hour_has_data(self, history, tenant_a):
        assert history["inserted"] == history["samples"]
        idle = {"resource_kind": 1, "resource_id": node_id(tenant_a, "acme-gpu-idle-01")}
        # The seed's last step: the last whole 5 minutes before now.
        end = NOW - dt.timedelta(minutes=NOW.minute % 5)
        detail_from = end - dt.timedelta(days=DETAIL_DAYS)
        with tenant_scope(tenant_a.id):
            series = TelemetrySample.objects.filter(metric=code("gpu_utilization"), **idle)
            older = list(series.filter(ts__lt=detail_from).values_list("ts", flat=True))
            recent = series.filter(ts__gte=detail_from).count()
            buckets = list(
                TelemetryRollup.objects.filter(metric=code("gpu_utilization"), **idle)
                .order_by("bucket")
                .values_list("bucket", flat=True)
            )
        assert {(ts.minute, ts.second) for ts in older} == {(0, 0)}
        assert (DEMO_DAYS - DETAIL_DAYS) * 24 - 1 <= len(older) <= (DEMO_DAYS - DETAIL_DAYS) * 24
        assert recent == DETAIL_DAYS * 24 * 12 + 1  # every 5 minutes, up to now
        # Every hour of the ten days has its rollup, up to the current one; each rolled up once
        # (the chunks never split an hour).
        hour = dt.timedelta(hours=1)
        assert all(
            later - earlier == hour for earlier, later in zip(buckets, buckets[1:], strict=False)
        )
        assert buckets[-1] == NOW.replace(minute=0)
        assert buckets[0] - (NOW - dt.timedelta(days=DEMO_DAYS)) < hour
        assert history["hours"] == len(buckets)

    def test_the_hot_nodes_climb_to_saturation_and_the_others_keep_their_level(
        self, history, tenant_a
    ):
        hot = daily_utilisation(tenant_a, "acme-gpu-hot-01")
        # Whole days (not the partial first and last): a steady climb of about 2 points a day.
        whole = hot[1:-1]
        rises = [later - earlier for earlier, later in zip(whole, whole[1:], strict=False)]
        assert all(1 < rise < 3 for rise in rises), rises
        assert hot[-1] > 92
        assert whole[0] < 82
        with tenant_scope(tenant_a.id):
            last_quarter = TelemetrySample.objects.filter(
                resource_kind=1,
                resource_id=node_id(tenant_a, "acme-gpu-hot-01"),
                metric=code("gpu_utilization"),
                ts__gte=NOW - dt.timedelta(hours=8),
            ).aggregate(low=Avg("value"))["low"]
        assert last_quarter == pytest.approx(97, abs=1.5)
        idle = daily_utilisation(tenant_a, "acme-gpu-idle-01")
        assert max(idle) < 3
        # Whole days only: a partial first or last day holds more or less of the busy hours.
        main = daily_utilisation(tenant_a, "acme-gpu-main-01")[1:-1]
        assert max(main) - min(main) < 5  # diurnal, no trend

    def test_the_spend_jump_lands_on_one_deployment_for_the_last_whole_days(
        self, history, tenant_a
    ):
        today = NOW.astimezone(dt.UTC).date()
        jump_day = today - dt.timedelta(days=SPEND_JUMP_DAYS)
        with tenant_scope(tenant_a.id):
            production = list(
                Deployment.objects.filter(environment="production").order_by("name")[:2]
            )
        spiking, scaling = production
        scaled = daily_spend(tenant_a, resource_kind=2, resource_id=scaling.pk)
        calm = daily_spend(tenant_a, resource_kind=2, resource_id=spiking.pk)
        before = [
            spend
            for day, spend in scaled.items()
            if today - dt.timedelta(days=DEMO_DAYS) < day < jump_day
        ]
        assert len(before) == DEMO_DAYS - 1 - SPEND_JUMP_DAYS  # whole days before the jump
        assert max(before) == pytest.approx(min(before))  # the same every whole day
        high_days = [jump_day + dt.timedelta(days=n) for n in range(SPEND_JUMP_DAYS)]
        assert all(scaled[day] > 10 * before[0] for day in high_days)
        assert all(calm[day] == pytest.approx(before[0]) for day in high_days)
        # The tenant's whole spend: each of the jump's whole days about 30 % above any before.
        total = daily_spend(tenant_a)
        usual = total[jump_day - dt.timedelta(days=1)]
        assert all(
            total[day] == pytest.approx(usual)
            for day in total
            if today - dt.timedelta(days=DEMO_DAYS) < day < jump_day
        )
        assert all(total[day] == pytest.approx(1.3 * usual, rel=0.05) for day in high_days)

    def test_without_the_jump_every_whole_day_costs_the_same(self, history, tenant_b):
        seed_telemetry(tenant_b, days=DEMO_DAYS, now=NOW)
        today = NOW.astimezone(dt.UTC).date()
        total = daily_spend(tenant_b)
        whole = [
            spend
            for day, spend in total.items()
            if today - dt.timedelta(days=DEMO_DAYS) < day < today
        ]
        assert len(whole) == DEMO_DAYS - 1
        assert max(whole) == pytest.approx(min(whole))

    def test_the_ten_days_seed_is_idempotent(self, history, tenant_a):
        again = seed_telemetry(tenant_a, days=DEMO_DAYS, spend_jump=True, now=NOW)
        assert again["inserted"] == 0
        assert again["samples"] == history["samples"]
        # An hour on: only the new hour's samples. The detail boundary moved an hour too, but the
        # hourly samples it now asks for where there were 5-minute ones are all there already.
        later = seed_telemetry(
            tenant_a, days=DEMO_DAYS, spend_jump=True, now=NOW + dt.timedelta(hours=1)
        )
        with tenant_scope(tenant_a.id):
            new = TelemetrySample.objects.filter(ts__gt=NOW).count()
        assert later["inserted"] == new > 0
        # An hour of ten days, and an hour of the GPUs' own series (six hours of them).
        assert new < history["inserted"] / 25


# --- Profiles of the tenants' stories: calm, and stopped ----------------------------------------


def test_calm_telemetry_has_no_idle_or_saturated_node_and_no_spike(tenant_a):
    seed_inventory(tenant_a, profile="finance")
    seed_telemetry(tenant_a, days=1, calm=True, now=NOW)
    assert 20 < mean_utilization(tenant_a, "acme-gpu-idle-01") < 80
    assert 20 < mean_utilization(tenant_a, "acme-gpu-hot-01") < 80
    with tenant_scope(tenant_a.id):
        peak = TelemetrySample.objects.filter(
            resource_kind=2, metric=code("inference_latency_p95_ms")
        ).aggregate(peak=Max("value"))["peak"]
    # The diurnal curve peaks near 140 ms; the spike would be seven times that.
    assert peak < 200


def test_a_stopped_feed_ends_days_ago_and_a_later_run_adds_nothing(tenant_a, tenant_b):
    seed_inventory(tenant_a, profile="finance")
    first = seed_telemetry(tenant_a, days=1, quiet_days=4, now=NOW)
    with tenant_scope(tenant_a.id):
        last = TelemetrySample.objects.aggregate(last=Max("ts"))["last"]
    assert first["inserted"] > 0
    assert NOW - dt.timedelta(days=4, minutes=10) < last <= NOW - dt.timedelta(days=4)

    again = seed_telemetry(tenant_a, days=1, quiet_days=4, now=NOW + dt.timedelta(hours=6))

    assert again["samples"] == again["inserted"] == 0
    with tenant_scope(tenant_a.id):
        assert TelemetrySample.objects.aggregate(last=Max("ts"))["last"] == last


# --- Per-GPU series: one idle GPU on a busy node, one GPU with XID errors ----------------------


def gpu_samples(tenant, hostname: str, metric: str) -> dict[int, dict[dt.datetime, float]]:
    """{GPU index: {ts: value}} of one node's GPUs' own series."""
    with tenant_scope(tenant.id):
        gpus = dict(GpuDevice.objects.filter(compute__hostname=hostname).values_list("pk", "index"))
        rows = TelemetrySample.objects.filter(
            resource_kind=3, resource_id__in=gpus, metric=code(metric)
        ).values_list("resource_id", "ts", "value")
        series: dict[int, dict[dt.datetime, float]] = {}
        for gpu_id, ts, value in rows:
            series.setdefault(gpus[gpu_id], {})[ts] = value
        return series


def node_samples(tenant, hostname: str, metric: str) -> dict[dt.datetime, float]:
    with tenant_scope(tenant.id):
        return dict(
            TelemetrySample.objects.filter(
                resource_kind=1, resource_id=node_id(tenant, hostname), metric=code(metric)
            ).values_list("ts", "value")
        )


# --- One day of the demo, seeded once for the class ---------------------------------------------


@pytest.fixture(scope="class")
def one_day(django_db_setup, django_db_blocker) -> tuple[int, int, dict]:
    """A day of the demo's telemetry for tenant A, made once for the class: each test starts from
    it and undoes only its own changes. (A's id, B's id, the seed's result.)"""

    def make():
        tenant_a = TenantFactory(name="Acme Analytics", slug="acme")
        tenant_b = TenantFactory(name="Borealis Bank", slug="borealis")
        seed_inventory(tenant_a, profile="finance")
        seed_inventory(tenant_b, profile="logistics")
        return tenant_a.pk, tenant_b.pk, seed_telemetry(tenant_a, days=1, now=NOW)

    yield from shared_rows(django_db_blocker, make)


class TestOneDay:
    @pytest.fixture
    def seeded(self, one_day, db) -> dict:
        return one_day[2]

    @pytest.fixture
    def tenant_a(self, one_day, db):
        return Tenant.objects.get(pk=one_day[0])

    @pytest.fixture
    def tenant_b(self, one_day, db):
        return Tenant.objects.get(pk=one_day[1])

    def test_the_patterns_show_in_the_rollups(self, seeded, tenant_a):
        assert seeded["inserted"] == seeded["samples"] > 0
        assert seeded["hours"] >= 24
        assert mean_utilization(tenant_a, "acme-gpu-idle-01") == pytest.approx(2, abs=1)
        assert mean_utilization(tenant_a, "acme-gpu-hot-01") == pytest.approx(97, abs=2)
        assert 20 < mean_utilization(tenant_a, "acme-gpu-main-01") < 80

    def test_one_production_deployment_has_a_latency_spike(self, seeded, tenant_a):
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

    def test_compute_in_maintenance_reports_nothing(self, seeded, tenant_a):
        with tenant_scope(tenant_a.id):
            node = ComputeResource.objects.get(hostname="acme-gpu-main-03")
            assert not TelemetrySample.objects.filter(resource_kind=1, resource_id=node.pk).exists()

    def test_running_it_again_adds_only_the_time_that_passed(self, seeded, tenant_a, tenant_b):
        again = seed_telemetry(tenant_a, days=1, now=NOW)
        assert again["inserted"] == 0
        assert again["samples"] == seeded["samples"]
        later = seed_telemetry(tenant_a, days=1, now=NOW + dt.timedelta(minutes=10))
        # Ten minutes of a day, and a quarter-hour of the GPUs' own series (six hours of them).
        assert 0 < later["inserted"] < seeded["inserted"] / 40
        with tenant_scope(tenant_a.id):
            assert later["inserted"] == TelemetrySample.objects.filter(ts__gt=NOW).count()
        with tenant_scope(tenant_b.id):
            assert not TelemetrySample.objects.exists()

    def test_each_gpu_has_its_series_consistent_with_its_node(self, seeded, tenant_a):
        with tenant_scope(tenant_a.id):
            assert GpuDevice.objects.filter(compute__hostname="acme-gpu-hot-01").count() == 8
        util = gpu_samples(tenant_a, "acme-gpu-main-01", "gpu_utilization")
        assert sorted(util) == list(range(8))
        # The last GPU idles on a node whose others carry the load.
        assert max(util[7].values()) < 3
        node = node_samples(tenant_a, "acme-gpu-main-01", "gpu_utilization")
        for ts in util[0]:
            gpus = [util[index][ts] for index in range(8)]
            assert node[ts] == pytest.approx(sum(gpus) / 8, abs=0.01)
            assert min(gpus[:7]) > gpus[7]
        memory = gpu_samples(tenant_a, "acme-gpu-main-01", "gpu_memory_used_mib")
        node_memory = node_samples(tenant_a, "acme-gpu-main-01", "gpu_memory_used_mib")
        ts = max(memory[0])
        assert node_memory[ts] == pytest.approx(sum(memory[i][ts] for i in range(8)))
        # GPU 3 of gpu-hot-02 reports XID 79 in the last hours; its node's max shows it.
        xid = gpu_samples(tenant_a, "acme-gpu-hot-02", "gpu_xid_errors")
        assert set(xid[3].values()) == {0.0, 79.0}
        assert all(set(xid[index].values()) == {0.0} for index in xid if index != 3)
        node_xid = node_samples(tenant_a, "acme-gpu-hot-02", "gpu_xid_errors")
        assert {node_xid[ts] for ts, value in xid[3].items() if value} == {79.0}
        assert node_xid[max(node_xid)] == 79.0
