"""Demo compliance data: finished scans with findings (pass and fail), score history, one
waiver, the prohibited-practice incident; idempotent."""

from __future__ import annotations

import pytest

from operations.compliance.demo import seed_compliance
from operations.compliance.models import Finding, Score, Waiver
from operations.incidents.models import Incident
from operations.inventory.demo import seed_inventory
from operations.jobs.models import JobLog, JobStatus
from tenants.scoping import tenant_scope

pytestmark = pytest.mark.django_db


def state(tenant) -> dict:
    with tenant_scope(tenant.id):
        return {
            "findings": Finding.objects.count(),
            "scores": Score.objects.count(),
            "waivers": Waiver.objects.count(),
            "incidents": Incident.objects.filter(category="compliance").count(),
            "logs": JobLog.objects.count(),
        }


@pytest.mark.parametrize("profile", ["finance", "health", "logistics"])
def test_seed_compliance_is_idempotent_and_shows_a_mix(tenant_a, profile):
    seed_inventory(tenant_a, profile=profile)
    runs = seed_compliance(tenant_a)
    first = state(tenant_a)
    assert [run.status for run in runs] == [JobStatus.SUCCEEDED] * 2
    assert all(run.result["checks"] >= 15 for run in runs)
    with tenant_scope(tenant_a.id):
        statuses = set(Finding.objects.values_list("status", flat=True))
        waiver = Waiver.objects.get()
        assert Finding.objects.filter(
            check_code=waiver.check_code, subject_id=waiver.subject_id, status="fail"
        ).exists()
    assert {"pass", "fail"} <= statuses
    assert runs[1].result["not_applicable"] > 0
    assert first["scores"] == 6  # three frameworks, two scans: a history
    assert runs[1].result["waived"] >= 1
    again = seed_compliance(tenant_a)
    assert [run.pk for run in again] == [run.pk for run in runs]
    assert state(tenant_a) == first


def test_the_finance_estate_opens_its_prohibited_practice_incident(tenant_a):
    seed_inventory(tenant_a, profile="finance")
    seed_compliance(tenant_a)
    with tenant_scope(tenant_a.id):
        incident = Incident.objects.get(category="compliance")
    assert "Employee emotion recognition" in incident.title


def test_a_first_scan_only_has_one_run_no_waiver_and_open_findings(tenant_a):
    seed_inventory(tenant_a, profile="finance", scope="pilot")
    runs = seed_compliance(tenant_a, scans=1, waiver=False)
    assert len(runs) == 1
    with tenant_scope(tenant_a.id):
        assert not Waiver.objects.exists()
        assert Finding.objects.filter(status="fail").exists()
    assert seed_compliance(tenant_a, scans=1, waiver=False) == runs


def latest_score(tenant, framework: str) -> float:
    with tenant_scope(tenant.id):
        row = Score.objects.filter(framework__code=framework).latest("computed_at")
    return float(row.score)


def test_a_well_kept_estate_scores_far_above_the_full_one(tenant_a, tenant_b):
    seed_inventory(tenant_a, profile="health", scope="kept")
    seed_inventory(tenant_b, profile="health")
    seed_compliance(tenant_a)
    seed_compliance(tenant_b)
    kept, full = latest_score(tenant_a, "iso-42001"), latest_score(tenant_b, "iso-42001")
    assert kept >= 80
    assert kept - full >= 40
    with tenant_scope(tenant_a.id):
        # Nothing prohibited: no compliance incident.
        assert not Incident.objects.filter(category="compliance").exists()
