"""Demo optimisation data: the demo estate's patterns become recommendations with savings, a
capacity trend and a cost anomaly, a live schedule keeps the worker busy, and the seed is
idempotent."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from operations.inventory.demo import seed_inventory
from operations.inventory.models import Deployment
from operations.jobs.models import JobSchedule
from operations.optimisation.conf import default_thresholds
from operations.optimisation.demo import LIVE_SCHEDULE_KEY, seed_optimisation
from operations.optimisation.models import Recommendation
from operations.telemetry.demo import DEMO_DAYS, seed_telemetry
from tenants.models import Tenant
from tenants.scoping import tenant_scope
from tests.conftest import shared_rows
from tests.factories import TenantFactory
from tests.jobs.conftest import activate

pytestmark = pytest.mark.django_db

YESTERDAY = (timezone.now() - dt.timedelta(days=1)).astimezone(dt.UTC)
#: Just after midnight UTC (today not yet a day of the trend) and in the afternoon (it is).
INSTANTS = {
    "after-midnight": YESTERDAY.replace(hour=0, minute=10, second=0, microsecond=0),
    "afternoon": YESTERDAY.replace(hour=13, minute=40, second=0, microsecond=0),
}


def rows(tenant) -> dict[tuple[str, str], Recommendation]:
    with tenant_scope(tenant.id):
        return {(r.kind, r.subject_label): r for r in Recommendation.objects.all()}


def test_without_the_spend_jump_there_is_no_cost_anomaly(tenant_b):
    now = INSTANTS["afternoon"]
    seed_inventory(tenant_b, profile="logistics")
    seed_telemetry(tenant_b, days=DEMO_DAYS, now=now)
    seed_optimisation(tenant_b, now=now)
    kinds = {kind for kind, _label in rows(tenant_b)}
    assert "capacity_forecast" in kinds
    assert "cost_anomaly" not in kinds


@pytest.fixture(scope="class", params=list(INSTANTS))
def now(request) -> dt.datetime:
    return INSTANTS[request.param]


@pytest.fixture(scope="class")
def demo_at(now, django_db_setup, django_db_blocker) -> tuple[int, int]:
    """Ten days of the demo for tenant A (activated, with the spend jump and its
    recommendations) and one for B, made once per instant for the class: each test starts from
    them and undoes only its own changes. (A's id, B's id.)"""

    def make():
        tenant_a = TenantFactory(name="Acme Analytics", slug="acme")
        tenant_b = TenantFactory(name="Borealis Bank", slug="borealis")
        tenant_a = activate(tenant_a)
        seed_inventory(tenant_a, profile="finance")
        seed_inventory(tenant_b, profile="logistics")
        seed_telemetry(tenant_a, days=DEMO_DAYS, spend_jump=True, now=now)
        seed_telemetry(tenant_b, days=1, now=now)
        seed_optimisation(tenant_a, now=now)
        return tenant_a.pk, tenant_b.pk

    yield from shared_rows(django_db_blocker, make)


class TestSeeded:
    @pytest.fixture
    def seeded(self, demo_at, db):
        return Tenant.objects.get(pk=demo_at[0])

    @pytest.fixture
    def tenant_b(self, demo_at, db):
        return Tenant.objects.get(pk=demo_at[1])

    def test_the_demo_shows_idle_capacity_and_retired_recommendations(self, seeded, tenant_b):
        found = rows(seeded)
        idle = found[("idle_gpu", "acme-gpu-idle-01")]
        assert idle.estimated_monthly_saving == Decimal("5343.60")  # 7.32 × 730
        assert idle.status == "open"
        retired = found[("retired_capacity", "Legacy chatbot")]
        assert retired.estimated_monthly_saving == Decimal("13578.00")  # 18.60 × 730
        assert retired.status == "accepted"  # the demo shows the lifecycle
        # No busy node is called idle; the other tenant has nothing yet.
        assert [label for kind, label in found if kind == "idle_gpu"] == ["acme-gpu-idle-01"]
        assert rows(tenant_b) == {}

    def test_the_hot_cluster_climbed_to_saturation_and_the_tenant_follows_in_days(self, seeded):
        thresholds = default_thresholds()
        found = rows(seeded)
        hot = found[("capacity_forecast", "acme-gpu-hot")].evidence
        assert hot["days_until_saturation"] == 0  # it peaks above 90 % already...
        peaks = [point["peak"] for point in hot["daily"]]
        assert len(peaks) >= thresholds.forecast_min_days
        assert peaks == sorted(peaks)  # ...after climbing day after day
        assert peaks[0] < thresholds.saturation - 5
        # The tenant's GPUs as a whole (the hot cluster with the diurnal and idle nodes): a
        # forecast on the trend of daily peaks, a number of days away.
        whole = found[("capacity_forecast", "all GPUs")].evidence
        assert whole["basis"] == "trend"
        assert whole["latest_peak"] < thresholds.saturation
        assert whole["trend"]["slope_per_day"] >= thresholds.forecast_min_slope
        assert 0 < whole["days_until_saturation"] <= 10

    def test_the_spend_jump_is_a_cost_anomaly_led_by_the_scaled_out_deployment(self, seeded, now):
        thresholds = default_thresholds()
        anomaly = rows(seeded)[("cost_anomaly", "whole tenant")]
        evidence = anomaly.evidence
        assert evidence["day"] == (now.date() - dt.timedelta(days=1)).isoformat()
        assert evidence["direction"] == "above"
        assert evidence["history_days"] >= thresholds.anomaly_min_days
        assert evidence["spend"] > evidence["band"][1]
        assert evidence["spend"] == pytest.approx(1.3 * evidence["median"], rel=0.05)
        assert evidence["days_above"] >= 3  # sustained: a monthly saving is projected
        with tenant_scope(seeded.id):
            scaled = Deployment.objects.filter(environment="production").order_by("name")[1]
        assert evidence["top_contributors"][0]["resource"] == f"deployment:{scaled.name}"
        assert anomaly.estimated_monthly_saving > 0
        assert anomaly.status == "open"

    def test_the_seed_is_idempotent_and_schedules_live_scans(self, seeded, now):
        before = {key: (r.pk, r.status) for key, r in rows(seeded).items()}
        summary = seed_optimisation(seeded, now=now)
        assert summary["created"] == 0
        assert {key: (r.pk, r.status) for key, r in rows(seeded).items()} == before
        with tenant_scope(seeded.id):
            schedules = list(JobSchedule.objects.filter(kind="optimisation_scan"))
        # The nightly scan comes with activation; the demo adds one every 30 minutes, once.
        assert sorted(s.key for s in schedules) == [LIVE_SCHEDULE_KEY, "nightly:optimisation_scan"]
        assert all(s.periodic_task.enabled for s in schedules)
