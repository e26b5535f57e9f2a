"""Demo optimisation data: the demo estate's patterns become recommendations with savings, a
live schedule keeps the worker busy, and the seed is idempotent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from operations.inventory.demo import seed_inventory
from operations.jobs.models import JobSchedule
from operations.optimisation.demo import LIVE_SCHEDULE_KEY, seed_optimisation
from operations.optimisation.models import Recommendation
from operations.telemetry.demo import seed_telemetry
from tenants.scoping import tenant_scope
from tests.jobs.conftest import activate

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(second=0, microsecond=0)


def rows(tenant) -> dict[tuple[str, str], Recommendation]:
    with tenant_scope(tenant.id):
        return {(r.kind, r.subject_label): r for r in Recommendation.objects.all()}


@pytest.fixture
def seeded(tenant_a, tenant_b):
    tenant_a = activate(tenant_a)
    seed_inventory(tenant_a, profile="finance")
    seed_inventory(tenant_b, profile="logistics")
    seed_telemetry(tenant_a, days=3, now=NOW)
    seed_telemetry(tenant_b, days=1, now=NOW)
    seed_optimisation(tenant_a, now=NOW)
    return tenant_a


def test_the_demo_shows_idle_capacity_and_retired_recommendations(seeded, tenant_b):
    found = rows(seeded)
    idle = found[("idle_gpu", "acme-gpu-idle-01")]
    assert idle.estimated_monthly_saving == Decimal("5343.60")  # 7.32 × 730
    assert idle.status == "open"
    hot = found[("capacity_forecast", "acme-gpu-hot")]
    assert hot.evidence["days_until_saturation"] == 0
    retired = found[("retired_capacity", "Legacy chatbot")]
    assert retired.estimated_monthly_saving == Decimal("13578.00")  # 18.60 × 730
    assert retired.status == "accepted"  # the demo shows the lifecycle
    # No busy node is called idle; the other tenant has nothing yet.
    assert [label for kind, label in found if kind == "idle_gpu"] == ["acme-gpu-idle-01"]
    assert rows(tenant_b) == {}


def test_the_seed_is_idempotent_and_schedules_live_scans(seeded):
    before = {key: (r.pk, r.status) for key, r in rows(seeded).items()}
    summary = seed_optimisation(seeded, now=NOW)
    assert summary["created"] == 0
    assert {key: (r.pk, r.status) for key, r in rows(seeded).items()} == before
    with tenant_scope(seeded.id):
        schedules = list(JobSchedule.objects.filter(kind="optimisation_scan"))
    # The nightly scan comes with activation; the demo adds one every 30 minutes, once.
    assert sorted(s.key for s in schedules) == [LIVE_SCHEDULE_KEY, "nightly:optimisation_scan"]
    assert all(s.periodic_task.enabled for s in schedules)
