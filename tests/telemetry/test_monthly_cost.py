"""Each resource's month-to-date cost, kept by the rollup job: always what summing the month's
cost rollups gives, one month per row, read by the fleet's spend column without the rollups."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from operations.telemetry import selectors, services, tasks
from operations.telemetry.metrics import ResourceKind
from operations.telemetry.models import TelemetryMonthlyCost, TelemetryPolicy, TelemetryRollup
from tenants.scoping import tenant_scope
from tests.factories import TenantFactory
from tests.inventory.estate import make_cloud_account, make_deployment, make_gpu_node
from tests.telemetry.helpers import code, iso

pytestmark = pytest.mark.django_db

COST = "cost_per_hour"


def month_of(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def cost_samples(resource: str, hour: dt.datetime, *values: float) -> list[dict]:
    """One sample of ``cost_per_hour`` a minute apart from the start of ``hour``."""
    return [
        {
            "resource": resource,
            "metric": COST,
            "ts": iso(hour + dt.timedelta(minutes=minute)),
            "value": value,
        }
        for minute, value in enumerate(values)
    ]


def ingest_and_roll(tenant, samples) -> dict:
    with tenant_scope(tenant.id):
        services.telemetry_ingest_batch(tenant=tenant, samples=samples)
    return tasks.rollup_tenant.apply(kwargs={"tenant_id": tenant.id}).get()


def stored(tenant) -> dict[tuple[int, int, dt.date], tuple[float, int]]:
    """{(kind, resource id, month): (cost, hours)} as the rollup job keeps it."""
    with tenant_scope(tenant.id):
        return {
            (row.resource_kind, row.resource_id, row.month): (row.cost, row.hours)
            for row in TelemetryMonthlyCost.objects.all()
        }


def computed(tenant) -> dict[tuple[int, int, dt.date], tuple[float, int]]:
    """The same figures summed afresh from every cost rollup, month by month."""
    totals: dict[tuple[int, int, dt.date], tuple[float, int]] = {}
    with tenant_scope(tenant.id):
        rollups = TelemetryRollup.objects.filter(metric=code(COST)).values_list(
            "resource_kind", "resource_id", "bucket", "avg_value"
        )
        for kind, resource_id, bucket, value in rollups:
            key = (kind, resource_id, month_of(bucket).date())
            cost, hours = totals.get(key, (0.0, 0))
            totals[key] = (cost + value, hours + 1)
    return totals


def assert_stored_is_computed(tenant) -> None:
    kept, fresh = stored(tenant), computed(tenant)
    assert kept.keys() == fresh.keys()
    for key, (cost, hours) in fresh.items():
        assert kept[key] == (pytest.approx(cost), hours)


@pytest.fixture
def hours_this_month():
    """Three whole UTC hours of this month before the current one (of last month's end in the
    first hours of a month: the figures are per month either way)."""
    current = timezone.now().replace(minute=0, second=0, microsecond=0)
    return [current - dt.timedelta(hours=back) for back in (3, 2, 1)]


def test_the_stored_month_cost_is_the_sum_of_the_month_s_cost_rollups(
    tenant_a, tenant_b, hours_this_month
):
    node = make_gpu_node(tenant_a, hostname="acme-gpu-01")
    other = make_gpu_node(tenant_a, hostname="acme-gpu-02")
    deployment = make_deployment(tenant_a, name="acme-chat")
    make_gpu_node(tenant_b, hostname="borealis-gpu-01")
    first, second, third = hours_this_month
    ingest_and_roll(
        tenant_a,
        cost_samples("compute:acme-gpu-01", first, 10, 20)  # the hour's mean: 15
        + cost_samples("compute:acme-gpu-01", second, 30)
        + cost_samples("compute:acme-gpu-02", second, 4.5)
        + cost_samples("deployment:acme-chat", third, 2)
        # Not a cost: left out.
        + [
            {
                "resource": "compute:acme-gpu-01",
                "metric": "gpu_utilization",
                "ts": iso(third),
                "value": 99,
            }
        ],
    )
    month = month_of(second).date()
    kept = stored(tenant_a)
    node_months: dict[dt.date, tuple[float, int]] = {}
    for hour, mean in ((first, 15.0), (second, 30.0)):
        cost, hours = node_months.get(month_of(hour).date(), (0.0, 0))
        node_months[month_of(hour).date()] = (cost + mean, hours + 1)
    for node_month, (cost, hours) in node_months.items():
        assert kept[(ResourceKind.COMPUTE, node.pk, node_month)] == (pytest.approx(cost), hours)
    assert kept[(ResourceKind.COMPUTE, other.pk, month)] == (pytest.approx(4.5), 1)
    assert kept[(ResourceKind.DEPLOYMENT, deployment.pk, month_of(third).date())] == (
        pytest.approx(2.0),
        1,
    )
    assert_stored_is_computed(tenant_a)
    # Another tenant's scope sees none of it.
    assert stored(tenant_b) == {}


def test_late_data_re_rolled_updates_the_month(tenant_a, hours_this_month):
    make_gpu_node(tenant_a, hostname="acme-gpu-01")
    first, second, _third = hours_this_month
    ingest_and_roll(tenant_a, cost_samples("compute:acme-gpu-01", first, 10))
    ingest_and_roll(tenant_a, cost_samples("compute:acme-gpu-01", second, 20))
    assert_stored_is_computed(tenant_a)
    # A late sample changes an hour already rolled up (its mean 10 → 40) and the month with it.
    late = [
        {
            "resource": "compute:acme-gpu-01",
            "metric": COST,
            "ts": iso(first + dt.timedelta(minutes=30)),
            "value": 70,
        }
    ]
    before = sum(cost for cost, _hours in stored(tenant_a).values())
    ingest_and_roll(tenant_a, late)
    after = sum(cost for cost, _hours in stored(tenant_a).values())
    assert after == pytest.approx(before + 30)
    assert_stored_is_computed(tenant_a)


def test_a_rollup_window_across_a_month_end_keeps_each_month_apart(tenant_a):
    make_gpu_node(tenant_a, hostname="acme-gpu-01")
    now = timezone.now()
    month_end = (
        month_of(now)
        if now - month_of(now) > dt.timedelta(hours=2)
        else month_of(month_of(now) - dt.timedelta(days=1))
    )
    with tenant_scope(tenant_a.id):
        # Raw samples of the previous month's last hour are still within the retention.
        TelemetryPolicy.objects.create(tenant=tenant_a, raw_retention_days=60)
        services.telemetry_ingest_batch(
            tenant=tenant_a,
            samples=cost_samples("compute:acme-gpu-01", month_end - dt.timedelta(hours=1), 7)
            + cost_samples("compute:acme-gpu-01", month_end, 11),
        )
        TelemetryMonthlyCost.objects.all().delete()  # the window alone must rebuild them
        services.telemetry_rollup_window(
            tenant=tenant_a,
            start=month_end - dt.timedelta(hours=1),
            end=month_end + dt.timedelta(hours=1),
        )
    costs = {month: cost for (_kind, _id, month), (cost, _hours) in stored(tenant_a).items()}
    previous = month_of(month_end - dt.timedelta(hours=1)).date()
    assert costs == {previous: pytest.approx(7.0), month_end.date(): pytest.approx(11.0)}
    assert_stored_is_computed(tenant_a)


def test_retention_drops_the_months_whose_rollups_are_gone(tenant_a):
    node = make_gpu_node(tenant_a, hostname="acme-gpu-01")
    now = timezone.now()
    this_month = month_of(now).date()
    long_ago = month_of(now - dt.timedelta(days=500)).date()
    with tenant_scope(tenant_a.id):
        for month in (long_ago, this_month):
            TelemetryMonthlyCost.objects.create(
                tenant=tenant_a,
                resource_kind=ResourceKind.COMPUTE,
                resource_id=node.pk,
                month=month,
                cost=1.0,
                hours=1,
                computed_at=now,
            )
        services.telemetry_retention_enforce(tenant=tenant_a)
    assert [month for (_k, _id, month) in stored(tenant_a)] == [this_month]


def _spend_tenant(*, budget: int = 1000):
    """A tenant with a billed node (cost 10 an hour for two hours) and an unbilled one (cost 5)."""
    tenant = TenantFactory()
    account = make_cloud_account(tenant, monthly_budget=budget)
    billed = make_gpu_node(tenant, hostname=f"billed-{tenant.pk}", cloud_account=account)
    make_gpu_node(tenant, hostname=f"own-{tenant.pk}")
    current = timezone.now().replace(minute=0, second=0, microsecond=0)
    samples = []
    for back in (2, 1):
        hour = current - dt.timedelta(hours=back)
        samples += cost_samples(f"compute:billed-{tenant.pk}", hour, 10)
        samples += cost_samples(f"compute:own-{tenant.pk}", hour, 5)
    ingest_and_roll(tenant, samples)
    return tenant, billed


def _spend_from_rollups(tenant, billed) -> float:
    """Live: the month's cost rollups of the billed node."""
    month = month_of(timezone.now())
    with tenant_scope(tenant.id):
        return TelemetryRollup.objects.filter(
            resource_kind=ResourceKind.COMPUTE,
            resource_id=billed.pk,
            metric=code(COST),
            bucket__gte=month,
        ).aggregate(total=Sum("avg_value"))["total"]


def test_the_fleet_spend_column_is_the_stored_cost_of_billed_compute():
    tenant, billed = _spend_tenant()
    with tenant_scope(tenant.id):
        cell = selectors.fleet_spend_this_month([tenant.pk])[tenant.pk]
    # Hours of last month (in a month's first hours) count in last month's spend, not this one.
    assert cell.value == pytest.approx(_spend_from_rollups(tenant, billed) or 0.0)
    assert "of 1,000" in cell.detail


def test_the_fleet_spend_column_reads_no_hourly_rollup_and_a_fixed_number_of_queries():
    few = [_spend_tenant() for _ in range(1)]
    many = few + [_spend_tenant() for _ in range(6)]
    counts = []
    for fleet in (few, many):
        ids = [tenant.pk for tenant, _billed in fleet]
        with tenant_scope(*ids), CaptureQueriesContext(connection) as queries:
            cells = selectors.fleet_spend_this_month(ids)
        assert set(cells) == set(ids)
        counts.append(len(queries))
        assert not [q["sql"] for q in queries.captured_queries if "telemetry_rollup" in q["sql"]]
    assert counts[0] == counts[1]


def test_spend_in_two_currencies_is_weighed_against_each_currency_s_budget():
    tenant = TenantFactory()
    dollars = make_cloud_account(tenant, monthly_budget=1_000_000, currency="USD")
    euros = make_cloud_account(tenant, monthly_budget=1, currency="EUR")
    make_gpu_node(tenant, hostname=f"us-{tenant.pk}", cloud_account=dollars)
    make_gpu_node(tenant, hostname=f"eu-{tenant.pk}", cloud_account=euros)
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
    ingest_and_roll(
        tenant,
        cost_samples(f"compute:us-{tenant.pk}", hour, 30)
        + cost_samples(f"compute:eu-{tenant.pk}", hour, 5),
    )
    with tenant_scope(tenant.id):
        cell = selectors.fleet_spend_this_month([tenant.pk], now=hour + dt.timedelta(minutes=30))[
            tenant.pk
        ]
    assert cell.text == "5\u00a0EUR · 30\u00a0USD"
    assert cell.detail.startswith("of 1\u00a0EUR · 1,000,000\u00a0USD · ")
    # The euro account alone is far over its budget: summed with the dollars it would look fine.
    assert (cell.tone, cell.attention) == ("bad", 10)


def test_the_migration_fills_the_months_from_the_rollups_already_stored(tenant_a, tenant_b):
    import importlib

    from django.apps import apps

    from tenants.models import Tenant

    migration = importlib.import_module(
        "operations.telemetry.migrations.0006_monthly_cost_per_resource"
    )
    node = make_gpu_node(tenant_a, hostname="acme-gpu-01")
    other = make_gpu_node(tenant_b, hostname="borealis-gpu-01")
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    with tenant_scope(tenant_a.id, tenant_b.id):
        for tenant, resource, back, value in (
            (tenant_a, node, 1, 3.0),
            (tenant_a, node, 2, 4.0),
            (tenant_a, node, 40 * 24, 5.0),  # another month
            (tenant_b, other, 1, 7.0),
        ):
            TelemetryRollup.objects.create(
                tenant=tenant,
                resource_kind=ResourceKind.COMPUTE,
                resource_id=resource.pk,
                metric=code(COST),
                bucket=now - dt.timedelta(hours=back),
                min_value=value,
                max_value=value,
                avg_value=value,
                sample_count=1,
                computed_at=now,
            )
    ids = list(Tenant.objects.values_list("id", flat=True))
    # The real models stand in for the historical ones; their manager wants a scope. The
    # backfill reads only the editor's connection.
    with tenant_scope(*ids):
        migration.backfill(apps, SimpleNamespace(connection=connection))
    assert_stored_is_computed(tenant_a)
    assert_stored_is_computed(tenant_b)
    assert len(stored(tenant_a)) == 2


def test_the_fleet_total_of_spend_adds_up_each_currency_apart():
    tenants = []
    for currency, cost in (("USD", 30), ("EUR", 5), ("USD", 10)):
        tenant = TenantFactory()
        account = make_cloud_account(tenant, monthly_budget=1000, currency=currency)
        make_gpu_node(tenant, hostname=f"node-{tenant.pk}", cloud_account=account)
        hour = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
        ingest_and_roll(tenant, cost_samples(f"compute:node-{tenant.pk}", hour, cost))
        tenants.append(tenant.pk)
    with tenant_scope(*tenants):
        cells = selectors.fleet_spend_this_month(tenants, now=hour + dt.timedelta(minutes=30))
    total = selectors.fleet_spend_total(cells)
    assert total.text == "5\u00a0EUR · 40\u00a0USD"
    assert total.value is None  # no one figure in two currencies
