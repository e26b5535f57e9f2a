"""Scans: re-runs update findings instead of duplicating them, resolutions, waivers, scores,
the prohibited-practice incident, and a constant number of queries per scan."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from operations.compliance import services
from operations.compliance.checks import all_checks
from operations.compliance.models import ComplianceScan, Finding, Framework, Score, Waiver
from operations.incidents.models import Incident, TimelineEntry
from operations.inventory import services as inventory_services
from tenants.models import AuditEvent
from tenants.scoping import tenant_scope
from tests.compliance.builders import good_dataset, good_deployment, good_system, high_system

pytestmark = pytest.mark.django_db

OWNER = "ai_system.accountable_owner"


def findings(tenant, **filters) -> list[Finding]:
    with tenant_scope(tenant.id):
        return list(Finding.objects.filter(**filters).order_by("check_code", "subject_id"))


def finding(tenant, code, subject, subject_type="ai_system") -> Finding:
    with tenant_scope(tenant.id):
        return Finding.objects.get(
            check_code=code, subject_type=subject_type, subject_id=subject.pk
        )


def update_system(tenant, system, **fields):
    with tenant_scope(tenant.id):
        return inventory_services.ai_system_update(tenant=tenant, ai_system=system, **fields)


def waive(tenant, *, check=OWNER, subject=None, expires_in=dt.timedelta(days=30), **extra):
    with tenant_scope(tenant.id):
        waiver = services.waiver_create(
            tenant=tenant,
            check_code=check,
            subject_type="ai_system" if subject is not None else "",
            subject_id=subject.pk if subject is not None else None,
            reason="Owner being recruited.",
            approved_by="CISO",
            expires_at=timezone.now() + dt.timedelta(days=1),
            **extra,
        )
        if expires_in != dt.timedelta(days=1):
            # Move the expiry directly: the service refuses a past expiry on purpose.
            Waiver.objects.filter(pk=waiver.pk).update(expires_at=timezone.now() + expires_in)
    return waiver


def test_a_rerun_updates_findings_instead_of_duplicating_them(tenant_a):
    system = good_system(tenant_a, business_owner="")
    good_deployment(tenant_a)
    first_at = timezone.now() - dt.timedelta(hours=2)
    first = services.compliance_run_for_tenant(tenant=tenant_a, now=first_at)
    count = len(findings(tenant_a))
    # Pass and fail are stored; subjects outside a check's scope are only counted.
    assert count == first["passed"] + first["failed"] + first["waived"]
    assert first["not_applicable"] > 0
    before = finding(tenant_a, OWNER, system)

    second = services.compliance_run_for_tenant(tenant=tenant_a)
    assert len(findings(tenant_a)) == count
    after = finding(tenant_a, OWNER, system)
    assert after.pk == before.pk
    assert after.first_seen == before.first_seen == first_at
    assert after.last_seen > before.last_seen
    assert after.failing_since == first_at  # still the same failure
    assert after.last_scan_id == second["scan"] != first["scan"]
    assert second["new_failures"] == 0
    with tenant_scope(tenant_a.id):
        assert ComplianceScan.objects.count() == 2


def test_a_failing_finding_that_passes_is_resolved_and_a_new_failure_clears_it(tenant_a):
    system = good_system(tenant_a, business_owner="")
    services.compliance_run_for_tenant(tenant=tenant_a)
    assert finding(tenant_a, OWNER, system).resolved_at is None

    update_system(tenant_a, system, business_owner="COO")
    summary = services.compliance_run_for_tenant(tenant=tenant_a)
    resolved = finding(tenant_a, OWNER, system)
    assert resolved.status == "pass"
    assert resolved.resolved_at is not None
    assert resolved.failing_since is None
    assert summary["resolved"] == 1

    services.compliance_run_for_tenant(tenant=tenant_a)  # still passing: resolved_at is kept
    assert finding(tenant_a, OWNER, system).resolved_at == resolved.resolved_at

    update_system(tenant_a, system, business_owner="")
    summary = services.compliance_run_for_tenant(tenant=tenant_a)
    again = finding(tenant_a, OWNER, system)
    assert (again.status, again.resolved_at) == ("fail", None)
    assert summary["new_failures"] == 1


def test_findings_of_a_deleted_subject_stop_applying(tenant_a):
    system = good_system(tenant_a, business_owner="")
    services.compliance_run_for_tenant(tenant=tenant_a)
    system_id = system.pk
    with tenant_scope(tenant_a.id):
        inventory_services.ai_system_delete(tenant=tenant_a, ai_system=system)
    summary = services.compliance_run_for_tenant(tenant=tenant_a)
    assert summary["resolved"] == 1
    (gone,) = findings(tenant_a, check_code=OWNER, subject_id=system_id)
    assert gone.status == "not_applicable"
    assert gone.resolved_at is not None
    assert "no longer" in gone.detail


def test_a_waiver_counts_a_failure_as_waived_until_it_expires(tenant_a):
    system = good_system(tenant_a, business_owner="")
    other = good_system(tenant_a, business_owner="")
    waive(tenant_a, subject=system)
    summary = services.compliance_run_for_tenant(tenant=tenant_a)
    assert summary["waived"] == 1  # only the named subject
    assert finding(tenant_a, OWNER, other).status == "fail"

    # A waiver for every subject of the check.
    waive(tenant_a)
    assert services.compliance_run_for_tenant(tenant=tenant_a)["waived"] == 2

    with tenant_scope(tenant_a.id):
        Waiver.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    expired = services.compliance_run_for_tenant(tenant=tenant_a)
    assert expired["waived"] == 0
    assert expired["failed"] >= 2


def test_waivers_are_validated_and_audited(tenant_a, tenant_b):
    system = good_system(tenant_a)
    foreign = good_system(tenant_b)
    bad = [
        ({"check_code": "no.such.check"}, "check"),
        ({"check_code": "ai_system.no_prohibited_practice"}, "check"),
        ({"subject_type": "dataset", "subject_id": system.pk}, "subject_type"),
        ({"subject_type": "ai_system", "subject_id": foreign.pk}, "subject_id"),
        ({"expires_at": timezone.now() - dt.timedelta(minutes=1)}, "expires_at"),
    ]
    base = {
        "check_code": OWNER,
        "subject_type": "ai_system",
        "subject_id": system.pk,
        "reason": "Accepted.",
        "approved_by": "CISO",
        "expires_at": timezone.now() + dt.timedelta(days=7),
    }
    with tenant_scope(tenant_a.id):
        for change, field in bad:
            with pytest.raises(ValidationError) as error:
                services.waiver_create(tenant=tenant_a, **{**base, **change})
            assert field in error.value.message_dict
        assert not Waiver.objects.exists()
        services.waiver_create(tenant=tenant_a, **base)
        assert AuditEvent.objects.filter(
            tenant=tenant_a, object_type="compliance.Waiver", action="create"
        ).exists()


def test_a_prohibited_practice_is_critical_and_opens_one_incident_not_one_per_run(tenant_a):
    system = good_system(tenant_a, risk_tier="prohibited", stage="pilot", name="Emotion cam")
    first = services.compliance_run_for_tenant(tenant=tenant_a)
    bad = finding(tenant_a, "ai_system.no_prohibited_practice", system)
    assert (bad.status, bad.severity) == ("fail", "critical")
    assert len(first["incidents_opened"]) == 1
    services.compliance_run_for_tenant(tenant=tenant_a)
    services.compliance_run_for_tenant(tenant=tenant_a)
    with tenant_scope(tenant_a.id):
        incidents = list(Incident.objects.all())
        assert len(incidents) == 1
        incident = incidents[0]
        assert (incident.category, incident.source, incident.severity) == (
            "compliance",
            "compliance_check",
            "SEV1",
        )
        assert "Emotion cam" in incident.title
        # The repeats did not even append to its timeline (one alert entry: the opening's).
        assert TimelineEntry.objects.filter(incident=incident, kind="alert").count() == 1


def test_scores_per_framework_with_history(tenant_a):
    system = high_system(tenant_a, technical_documentation_url="")
    services.compliance_run_for_tenant(tenant=tenant_a)
    update_system(tenant_a, system, technical_documentation_url="https://docs.example.com/x")
    services.compliance_run_for_tenant(tenant=tenant_a)
    with tenant_scope(tenant_a.id):
        scores = list(Score.objects.select_related("framework").order_by("computed_at", "id"))
    assert {s.framework.code for s in scores} == {"eu-ai-act", "iso-42001", "nist-ai-rmf"}
    assert len(scores) == 6  # three frameworks × two scans: the history
    eu = [s for s in scores if s.framework.code == "eu-ai-act"]
    assert "art-11" in eu[0].failed_controls
    assert "art-11" not in eu[1].failed_controls
    assert eu[1].score > eu[0].score
    for score in scores:
        assert score.controls_assessed == score.controls_passed + score.controls_failed
        assert score.controls_total == score.controls_assessed + score.controls_not_assessed
        assert score.score == (
            Decimal(100 * score.controls_passed) / score.controls_assessed
        ).quantize(Decimal("0.1"))
    # The pass rate: findings passing over findings judged, across the framework's checks.
    from operations.compliance.selectors import checks_for_framework

    with tenant_scope(tenant_a.id):
        judged = Finding.objects.filter(
            check_code__in=checks_for_framework("eu-ai-act"), status__in=["pass", "fail"]
        )
        passing = judged.filter(status="pass").count()
        assert eu[1].pass_rate == (Decimal(100 * passing) / judged.count()).quantize(Decimal("0.1"))
    assert eu[1].pass_rate > eu[0].pass_rate
    # EU AI Act Art. 4 (AI literacy) has no automated check: never assessed.
    assert eu[0].controls_total == Framework.objects.get(code="eu-ai-act").controls.count()


def test_a_waived_failure_does_not_fail_its_controls(tenant_a):
    system = good_system(tenant_a, business_owner="")
    services.compliance_run_for_tenant(tenant=tenant_a)
    waive(tenant_a, subject=system)
    services.compliance_run_for_tenant(tenant=tenant_a)
    with tenant_scope(tenant_a.id):
        first, second = Score.objects.filter(framework__code="iso-42001").order_by(
            "computed_at", "id"
        )
    assert "A.3.2" in first.failed_controls
    assert "A.3.2" not in second.failed_controls


def test_a_scan_runs_a_constant_number_of_queries_whatever_the_estate(tenant_a, tenant_b):
    def queries_of_a_scan(tenant) -> int:
        with CaptureQueriesContext(connection) as captured:
            services.compliance_run_for_tenant(tenant=tenant)
        upserts = [q for q in captured if q["sql"].startswith('INSERT INTO "compliance_finding"')]
        # The findings' events: one insert when something opened or resolved, none otherwise.
        events = [q for q in captured if q["sql"].startswith('INSERT INTO "events_outboxevent"')]
        assert len(events) <= 1
        if connection.vendor == "postgresql":
            assert len(upserts) <= 1  # SQLite splits a big insert to fit its parameter limit
        return len(captured) - len(upserts) - len(events)

    services._catalogue()  # the framework catalogue is cached per process
    good_deployment(tenant_a)
    good_dataset(tenant_a)
    for _ in range(6):
        good_deployment(tenant_b, monitoring_enabled=False)
        good_dataset(tenant_b, licence="")
        good_system(tenant_b, business_owner="")
    # A first scan (every finding new), then a re-run (nothing changed), then one with changes.
    assert queries_of_a_scan(tenant_a) == queries_of_a_scan(tenant_b)
    assert queries_of_a_scan(tenant_a) == queries_of_a_scan(tenant_b)
    good_system(tenant_a, purpose="")
    for _ in range(6):
        good_system(tenant_b, purpose="")
    assert queries_of_a_scan(tenant_a) == queries_of_a_scan(tenant_b)
    assert len(all_checks()) >= 15


def test_one_tenants_scan_never_touches_another_tenants_findings(tenant_a, tenant_b):
    good_system(tenant_b, business_owner="")
    services.compliance_run_for_tenant(tenant=tenant_b)
    before = [(f.pk, f.last_seen, f.status) for f in findings(tenant_b)]
    good_system(tenant_a)
    services.compliance_run_for_tenant(tenant=tenant_a)
    assert [(f.pk, f.last_seen, f.status) for f in findings(tenant_b)] == before
    with tenant_scope(tenant_a.id):
        own_subjects = set(Finding.objects.values_list("subject_id", flat=True))
    from operations.inventory.models import AISystem

    with tenant_scope(tenant_b.id):
        b_systems = set(AISystem.objects.values_list("id", flat=True))
    assert not own_subjects & b_systems
