"""The demo: last month's report for every active tenant (from a finished run), a draft
review when asked, nothing for other tenants, and nothing twice."""

from __future__ import annotations

import pytest

from operations.jobs.models import JobRun, JobStatus
from operations.reports.demo import seed_reports
from operations.reports.models import Report
from tenants.scoping import tenant_scope
from tests.jobs.conftest import activate

pytestmark = pytest.mark.django_db


def test_active_tenants_get_last_months_report_once(tenant_a, tenant_b):
    tenant_a = activate(tenant_a)
    assert seed_reports(tenant_a, with_review=True) == 3
    assert seed_reports(tenant_b) == 0  # still a prospect
    assert seed_reports(tenant_a, with_review=True) == 0
    with tenant_scope(tenant_a.id):
        kinds = sorted(Report.objects.values_list("kind", "status"))
        runs = list(JobRun.objects.values_list("kind", "status"))
    assert kinds == [
        ("evidence_pack", "published"),
        ("monthly", "published"),
        ("quarterly", "draft"),
    ]
    assert sorted(runs) == [
        ("compliance_evidence_pack", JobStatus.SUCCEEDED),
        ("monthly_service_report", JobStatus.SUCCEEDED),
        ("quarterly_review", JobStatus.SUCCEEDED),
    ]
    with tenant_scope(tenant_b.id):
        assert not Report.objects.exists()
