"""Every check has a passing and a failing fixture, and maps to controls that exist."""

from __future__ import annotations

import pytest

from operations.compliance.checks import all_checks, approved_countries, get_check
from operations.compliance.models import Control, Finding
from operations.compliance.services import compliance_run_for_tenant
from tenants import services as tenant_services
from tenants.scoping import tenant_scope
from tests.compliance.builders import CASES, good_dataset, good_deployment, good_system, high_system

pytestmark = pytest.mark.django_db


def finding_for(tenant, code: str, subject_type: str, subject) -> Finding:
    with tenant_scope(tenant.id):
        return Finding.objects.get(
            check_code=code, subject_type=subject_type, subject_id=subject.pk
        )


def test_there_are_at_least_fifteen_checks_and_each_has_both_fixtures():
    codes = {check.code for check in all_checks()}
    assert len(codes) >= 15
    assert codes == set(CASES)


def test_every_check_maps_only_to_controls_of_the_loaded_frameworks():
    known = {f"{fw}:{code}" for fw, code in Control.objects.values_list("framework__code", "code")}
    for check in all_checks():
        assert check.controls, check.code
        assert set(check.controls) <= known, check.code
    # Every framework is covered by some check.
    covered = {reference.split(":")[0] for check in all_checks() for reference in check.controls}
    assert covered == {"eu-ai-act", "iso-42001", "nist-ai-rmf"}


@pytest.mark.parametrize("code", sorted(CASES))
def test_check_passes_its_passing_fixture_and_fails_its_failing_one(code, tenant_a, tenant_b):
    make_pass, make_fail = CASES[code]
    passing_type, passing = make_pass(tenant_a)
    failing_type, failing = make_fail(tenant_a)
    # Tenant B's failing twin is never judged in tenant A's scan.
    make_fail(tenant_b)
    summary = compliance_run_for_tenant(tenant=tenant_a)
    check = get_check(code)
    assert passing_type == failing_type == check.subject_type
    good = finding_for(tenant_a, code, passing_type, passing)
    bad = finding_for(tenant_a, code, failing_type, failing)
    assert (good.status, bad.status) == ("pass", "fail"), (good.detail, bad.detail)
    assert bad.detail
    assert bad.severity == check.severity
    assert summary["failed"] >= 1
    with tenant_scope(tenant_b.id):
        assert not Finding.objects.exists()


def test_a_subject_outside_a_checks_scope_is_counted_not_stored(tenant_a):
    minimal = good_system(tenant_a)
    summary = compliance_run_for_tenant(tenant=tenant_a)
    assert summary["not_applicable"] > 0
    with tenant_scope(tenant_a.id):
        assert not Finding.objects.filter(
            check_code="ai_system.fundamental_rights_assessment", subject_id=minimal.pk
        ).exists()
        assert not Finding.objects.filter(status="not_applicable").exists()


def test_a_subject_that_leaves_a_checks_scope_keeps_its_finding_as_not_applicable(
    tenant_a, tenant_b
):
    from operations.inventory import services as inventory

    high = high_system(tenant_a, technical_documentation_url="")
    deployment = good_deployment(tenant_a, monitoring_enabled=False)
    dataset = good_dataset(tenant_a, personal_data=True, residency_country="US")
    personal_in_b = good_dataset(tenant_b, personal_data=True, residency_country="US")
    tenant_b = tenant_services.tenant_update(tenant=tenant_b, data_residency="UK")
    compliance_run_for_tenant(tenant=tenant_a)
    compliance_run_for_tenant(tenant=tenant_b)
    assert (
        finding_for(tenant_a, "ai_system.technical_documentation", "ai_system", high).status
        == "fail"
    )

    with tenant_scope(tenant_a.id):
        inventory.ai_system_update(tenant=tenant_a, ai_system=high, risk_tier="minimal")
        inventory.deployment_update(tenant=tenant_a, deployment=deployment, environment="staging")
        inventory.dataset_update(tenant=tenant_a, dataset=dataset, personal_data=False)
    tenant_b = tenant_services.tenant_update(tenant=tenant_b, data_residency="")
    compliance_run_for_tenant(tenant=tenant_a)
    compliance_run_for_tenant(tenant=tenant_b)
    cases = [
        (tenant_a, "ai_system.technical_documentation", "ai_system", high, "Not high"),
        (tenant_a, "deployment.monitoring", "deployment", deployment, "Not a production"),
        (tenant_a, "dataset.personal_data_residency", "dataset", dataset, "no personal data"),
        (tenant_b, "dataset.personal_data_residency", "dataset", personal_in_b, "no data resid"),
    ]
    for tenant, code, subject_type, subject, reason in cases:
        finding = finding_for(tenant, code, subject_type, subject)
        assert finding.status == "not_applicable", code
        assert reason.lower() in finding.detail.lower(), finding.detail
        assert finding.resolved_at is not None  # it was failing


@pytest.mark.parametrize(
    ("residency", "expected"),
    [
        ("", None),
        ("EU", "DE FR IE"),
        ("DE,FR", "DE FR"),
        ("UK", "GB"),
        ("eea; ch", "NO CH DE"),
    ],
)
def test_approved_countries(residency, expected):
    countries = approved_countries(residency)
    if expected is None:
        assert countries is None
    else:
        assert set(expected.split()) <= countries
        assert "US" not in countries
