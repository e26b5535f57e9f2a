"""Each detector fires on a fixture that has its condition and stays quiet on one that does not;
the fixtures are real samples, ingested and rolled up by the telemetry services."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from operations.inventory import services as inventory
from operations.inventory.models import ComputeKind, Stage
from operations.optimisation.detectors import least_squares
from operations.optimisation.models import RecommendationKind, SubjectType
from tenants.scoping import tenant_scope
from tests.inventory.estate import (
    make_ai_system,
    make_cluster,
    make_compute,
    make_deployment,
    make_gpu_node,
)
from tests.optimisation.helpers import by_kind, feed, feed_gpu, scan, this_hour, today

pytestmark = pytest.mark.django_db


# --- Idle GPUs ----------------------------------------------------------------------------------


def test_idle_gpu_fires_with_saving_from_hourly_cost(tenant_a):
    idle = make_gpu_node(tenant_a, hostname="a-idle", hourly_cost="8.5000")
    busy = make_gpu_node(tenant_a, hostname="a-busy")
    feed_gpu(tenant_a, idle, utilisation=lambda hour: 2 + hour.hour % 3)
    feed_gpu(tenant_a, busy, utilisation=60)

    scan(tenant_a)

    [rec] = by_kind(tenant_a, RecommendationKind.IDLE_GPU)
    assert (rec.subject_type, rec.subject_id, rec.subject_key) == (
        SubjectType.COMPUTE,
        idle.pk,
        f"compute:{idle.pk}",
    )
    assert rec.estimated_monthly_saving == Decimal("6205.00")  # 8.5 × 730
    assert rec.evidence["utilisation_mean"] == pytest.approx(3.0, abs=0.05)
    assert rec.evidence["utilisation_peak_hour"] == 4.0
    assert rec.evidence["thresholds"]["idle_utilisation"] == 5.0
    assert rec.evidence["window"]["hours"] == 72
    assert rec.status == "open"


def test_idle_gpu_stays_quiet_on_a_busy_hour_or_too_little_data(tenant_a):
    spiky = make_gpu_node(tenant_a, hostname="a-spiky")
    recent = make_gpu_node(tenant_a, hostname="a-recent")
    spike = this_hour() - dt.timedelta(hours=5)
    feed_gpu(tenant_a, spiky, utilisation=lambda hour: 40 if hour == spike else 1)
    feed_gpu(tenant_a, recent, hours=20, utilisation=1)

    summary = scan(tenant_a)

    assert by_kind(tenant_a, RecommendationKind.IDLE_GPU) == []
    assert summary["found"] == 0


def test_idle_threshold_is_a_per_run_parameter(tenant_a):
    node = make_gpu_node(tenant_a, hostname="a-low")
    feed_gpu(tenant_a, node, utilisation=8)
    scan(tenant_a)
    assert by_kind(tenant_a, RecommendationKind.IDLE_GPU) == []
    scan(tenant_a, idle_utilisation=10)
    assert len(by_kind(tenant_a, RecommendationKind.IDLE_GPU)) == 1


def test_settings_give_the_defaults(tenant_a, settings):
    from operations.optimisation.services import optimisation_run_for_tenant

    node = make_gpu_node(tenant_a, hostname="a-low")
    feed_gpu(tenant_a, node, utilisation=8)
    settings.OPTIMISATION_IDLE_UTILISATION = 10
    with tenant_scope(tenant_a.id):
        summary = optimisation_run_for_tenant(tenant=tenant_a)
    assert summary["found_by_kind"] == {"idle_gpu": 1}
    [rec] = by_kind(tenant_a, RecommendationKind.IDLE_GPU)
    assert rec.evidence["thresholds"]["idle_utilisation"] == 10


# --- Right-sizing -------------------------------------------------------------------------------


def test_right_size_fires_on_low_utilisation_and_memory(tenant_a):
    node = make_gpu_node(
        tenant_a, hostname="a-oversized", gpu_count=4, gpu_uuids=[], hourly_cost="10.0000"
    )
    feed_gpu(tenant_a, node, utilisation=20, memory_pct=20)

    scan(tenant_a)

    [rec] = by_kind(tenant_a, RecommendationKind.RIGHT_SIZE)
    # The peak (20 %) fits ceil(4 × 20 / 80) = 1 GPU: three quarters of the cost go.
    assert rec.evidence["gpus_needed"] == 1
    assert rec.evidence["fraction_saved"] == 0.75
    assert rec.estimated_monthly_saving == Decimal("5475.00")  # 10 × 730 × 0.75
    assert by_kind(tenant_a, RecommendationKind.IDLE_GPU) == []


def test_right_size_stays_quiet_when_memory_is_used(tenant_a):
    node = make_gpu_node(tenant_a, hostname="a-memory-bound", gpu_count=4, gpu_uuids=[])
    feed_gpu(tenant_a, node, utilisation=20, memory_pct=70)
    scan(tenant_a)
    assert by_kind(tenant_a, RecommendationKind.RIGHT_SIZE) == []


# --- Capacity forecast --------------------------------------------------------------------------


def _cluster_with_nodes(tenant, name: str, count: int = 2):
    cluster = make_cluster(tenant, hostname=name)
    nodes = [
        make_gpu_node(tenant, cluster=cluster, hostname=f"{name}-{i}", gpu_uuids=[])
        for i in range(count)
    ]
    return cluster, nodes


def test_capacity_forecast_fires_for_a_cluster_already_saturated(tenant_a):
    cluster, nodes = _cluster_with_nodes(tenant_a, "a-hot")
    for node in nodes:
        feed_gpu(tenant_a, node, hours=72, utilisation=96)

    scan(tenant_a)

    recs = {rec.subject_key: rec for rec in by_kind(tenant_a, RecommendationKind.CAPACITY_FORECAST)}
    hot = recs[f"compute:{cluster.pk}"]
    assert hot.evidence["basis"] == "at_threshold"
    assert hot.evidence["days_until_saturation"] == 0
    assert hot.evidence["latest_peak"] == 96.0
    assert hot.estimated_monthly_saving == 0
    assert "tenant" in recs  # all the tenant's GPUs are in that cluster


def test_capacity_forecast_follows_the_trend_of_daily_peaks(tenant_a):
    cluster, nodes = _cluster_with_nodes(tenant_a, "a-growing")
    start = today() - dt.timedelta(days=10)

    def rising(hour):  # +2 points a day: 40 % ten days ago, 60 % today
        return 40 + 2 * (hour - start).days

    for node in nodes:
        feed(tenant_a, f"compute:{node.hostname}", "gpu_utilization", start, this_hour(), rising)

    scan(tenant_a)

    rec = next(
        r
        for r in by_kind(tenant_a, RecommendationKind.CAPACITY_FORECAST)
        if r.subject_id == cluster.pk
    )
    assert rec.evidence["basis"] == "trend"
    assert rec.evidence["trend"]["slope_per_day"] == pytest.approx(2.0, abs=0.01)
    assert rec.evidence["trend"]["level_today"] == pytest.approx(60.0, abs=0.1)
    assert rec.evidence["days_until_saturation"] == 15  # (90 − 60) / 2


def test_capacity_forecast_stays_quiet_on_a_flat_load(tenant_a):
    _cluster, nodes = _cluster_with_nodes(tenant_a, "a-flat")
    start = today() - dt.timedelta(days=10)
    for node in nodes:
        feed(tenant_a, f"compute:{node.hostname}", "gpu_utilization", start, this_hour(), 50)
    scan(tenant_a)
    assert by_kind(tenant_a, RecommendationKind.CAPACITY_FORECAST) == []


def test_least_squares_on_known_points():
    slope, intercept, r2 = least_squares([(0, 1.0), (1, 3.0), (2, 5.0)])
    assert (slope, intercept, r2) == (2.0, 1.0, 1.0)


# --- Cost anomaly -------------------------------------------------------------------------------


def _spend(tenant, *, days: int, usual: float, yesterday: float, high_days: int = 1, ramp=0.0):
    """Hourly cost: ``usual``, then ``yesterday`` (+ ``ramp`` a day) for the last ``high_days``."""
    node = make_compute(tenant, hostname=f"{tenant.slug}-cpu-cost", kind=ComputeKind.CPU_NODE)
    start = today() - dt.timedelta(days=days)
    high_from = today() - dt.timedelta(days=high_days)

    def cost(hour):
        if hour < high_from:
            return usual
        return yesterday + ramp * ((hour - high_from) // dt.timedelta(days=1))

    feed(tenant, f"compute:{node.hostname}", "cost_per_hour", start, today(), cost)
    return node


def test_a_one_day_spike_is_an_anomaly_with_no_monthly_saving_projected(tenant_a):
    node = _spend(tenant_a, days=10, usual=10, yesterday=30)

    scan(tenant_a)

    [rec] = by_kind(tenant_a, RecommendationKind.COST_ANOMALY)
    assert rec.subject_key == "tenant"
    assert rec.evidence["spend"] == 720.0
    assert rec.evidence["median"] == 240.0
    assert rec.evidence["direction"] == "above"
    assert rec.evidence["history_days"] == 9
    assert rec.evidence["top_contributors"][0]["resource"] == f"compute:{node.hostname}"
    # One day × 30 would be 14,600: a CFO would not accept it, so nothing is projected.
    assert (rec.evidence["days_above"], rec.evidence["one_off_excess"]) == (1, 480.0)
    assert rec.estimated_monthly_saving == Decimal("0.00")
    assert "spike of 1 day" in rec.evidence["saving_basis"]


def test_a_sustained_excess_projects_its_least_daily_excess_over_a_month(tenant_a):
    # 20, 22, 24 an hour for the last three days against 10 before.
    _spend(tenant_a, days=12, usual=10, yesterday=20, high_days=3, ramp=2)

    scan(tenant_a)

    [rec] = by_kind(tenant_a, RecommendationKind.COST_ANOMALY)
    assert rec.evidence["days_above"] == 3
    assert rec.evidence["median"] == 240.0
    # The least excess of the three days: (20 − 10) × 24 h = 240 a day, × 730 h / 24.
    assert rec.evidence["daily_excess"] == 240.0
    assert rec.estimated_monthly_saving == Decimal("7300.00")


def test_cost_anomaly_stays_quiet_inside_the_band_or_without_history(tenant_a, tenant_b):
    _spend(tenant_a, days=10, usual=10, yesterday=11)
    _spend(tenant_b, days=5, usual=10, yesterday=30)
    scan(tenant_a)
    scan(tenant_b)
    assert by_kind(tenant_a, RecommendationKind.COST_ANOMALY) == []
    assert by_kind(tenant_b, RecommendationKind.COST_ANOMALY) == []


# --- Retired capacity ---------------------------------------------------------------------------


def test_retired_system_holding_a_deployment_fires_with_its_share_of_the_compute(tenant_a):
    node = make_gpu_node(tenant_a, hostname="a-shared", hourly_cost="8.5000")
    retired = make_ai_system(tenant_a, name="Old bot", stage=Stage.PRODUCTION)
    make_deployment(tenant_a, ai_system=retired, compute=node, name="old-bot-prod")
    make_deployment(tenant_a, compute=node, name="new-bot-prod")
    with tenant_scope(tenant_a.id):
        inventory.ai_system_transition(tenant=tenant_a, ai_system=retired, stage=Stage.RETIRED)

    scan(tenant_a)

    [rec] = by_kind(tenant_a, RecommendationKind.RETIRED_CAPACITY)
    assert (rec.subject_type, rec.subject_id) == (SubjectType.AI_SYSTEM, retired.pk)
    assert rec.evidence["deployments"] == [
        {
            "deployment": "old-bot-prod",
            "compute": "a-shared",
            "hourly_cost": "8.5000",
            "share_of_compute": 0.5,
        }
    ]
    assert rec.estimated_monthly_saving == Decimal("3102.50")  # half of 8.5 × 730


def test_retired_compute_still_billing_fires(tenant_a):
    node = make_compute(
        tenant_a, hostname="a-old-node", kind=ComputeKind.CPU_NODE, hourly_cost="2.0000"
    )
    feed(
        tenant_a,
        f"compute:{node.hostname}",
        "cost_per_hour",
        today() - dt.timedelta(days=2),
        today(),
        2.0,
    )
    with tenant_scope(tenant_a.id):
        inventory.compute_update(tenant=tenant_a, compute=node, status="retired")

    scan(tenant_a)

    [rec] = by_kind(tenant_a, RecommendationKind.RETIRED_CAPACITY)
    assert (rec.subject_type, rec.subject_id) == (SubjectType.COMPUTE, node.pk)
    assert rec.evidence["spend_in_window"] == 96.0
    assert rec.estimated_monthly_saving == Decimal("1460.00")


def test_retired_capacity_stays_quiet_without_deployments_or_spend(tenant_a):
    make_ai_system(tenant_a, name="Gone", stage=Stage.PROPOSED)
    gone = make_ai_system(tenant_a, name="Gone for good", stage=Stage.PROPOSED)
    with tenant_scope(tenant_a.id):
        inventory.ai_system_transition(tenant=tenant_a, ai_system=gone, stage=Stage.RETIRED)
    make_deployment(tenant_a, name="pilot-prod")  # a live system's deployment
    make_compute(tenant_a, hostname="a-parked", status="retired", hourly_cost="3.0000")
    scan(tenant_a)
    assert by_kind(tenant_a, RecommendationKind.RETIRED_CAPACITY) == []


# --- Set-based ----------------------------------------------------------------------------------


BOOKKEEPING = ("SELECT set_config", "SELECT pg_advisory_xact_lock")


def test_a_scan_costs_the_same_queries_for_one_node_or_twelve(tenant_a):
    """The detectors read in a fixed number of queries, whatever the size of the estate."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cluster = make_cluster(tenant_a, hostname="a-pool")

    def busy_node(i):
        node = make_gpu_node(tenant_a, cluster=cluster, hostname=f"a-busy-{i}", gpu_uuids=[])
        feed_gpu(tenant_a, node, hours=24, utilisation=50, memory_pct=60)

    counts, made = [], 0
    for size in (1, 12):
        while made < size:
            busy_node(made)
            made += 1
        with CaptureQueriesContext(connection) as captured:
            assert scan(tenant_a)["found"] == 0
        # Reads only: savepoints, the scope's setting and the scan's lock are bookkeeping.
        reads = [
            q["sql"]
            for q in captured.captured_queries
            if q["sql"].startswith("SELECT") and not q["sql"].startswith(BOOKKEEPING)
        ]
        counts.append(len(reads))
    # Compute, deployments, node window figures, pool hours, daily spend, existing rows.
    assert counts == [6, 6]


def test_savings_are_in_the_tenants_billing_currency(tenant_a):
    from tests.inventory.estate import make_cloud_account

    account = make_cloud_account(tenant_a, currency="EUR")
    cloud = make_gpu_node(tenant_a, hostname="a-cloud-idle", cloud_account=account)
    on_prem = make_gpu_node(tenant_a, hostname="a-dc-idle")
    feed_gpu(tenant_a, cloud, utilisation=1)
    feed_gpu(tenant_a, on_prem, utilisation=1)
    scan(tenant_a)
    assert {rec.currency for rec in by_kind(tenant_a, RecommendationKind.IDLE_GPU)} == {"EUR"}
