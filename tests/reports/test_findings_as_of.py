"""A past month's report lists the findings that were failing at the month's end, not today's."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from operations.compliance.models import Finding
from operations.compliance.selectors import findings_failing_at_by_severity
from tenants.scoping import tenant_scope

pytestmark = pytest.mark.django_db

MONTH_END = timezone.now().replace(microsecond=0) - dt.timedelta(days=20)
DAY = dt.timedelta(days=1)


def _finding(tenant, label, *, status, failing_since, resolved_at=None, subject_id=1):
    return Finding.objects.create(
        tenant=tenant,
        check_code="ai_system.accountable_owner",
        severity="high",
        subject_type="ai_system",
        subject_id=subject_id,
        subject_label=label,
        status=status,
        first_seen=MONTH_END - 40 * DAY,
        failing_since=failing_since,
        resolved_at=resolved_at,
    )


def test_the_findings_failing_at_a_past_moment(tenant_a, tenant_b):
    with tenant_scope(tenant_a.id):
        _finding(tenant_a, "still failing", status="fail", failing_since=MONTH_END - 5 * DAY)
        _finding(
            tenant_a,
            "fixed after the month",
            status="pass",
            failing_since=MONTH_END - 5 * DAY,
            resolved_at=MONTH_END + 3 * DAY,
            subject_id=2,
        )
        _finding(
            tenant_a,
            "failing since later",
            status="fail",
            failing_since=MONTH_END + DAY,
            subject_id=3,
        )
        _finding(
            tenant_a,
            "fixed within the month",
            status="pass",
            failing_since=MONTH_END - 9 * DAY,
            resolved_at=MONTH_END - 2 * DAY,
            subject_id=4,
        )
    with tenant_scope(tenant_b.id):
        _finding(tenant_b, "another tenant's", status="fail", failing_since=MONTH_END - 5 * DAY)

    with tenant_scope(tenant_a.id):
        labels = {
            f.subject_label
            for f in findings_failing_at_by_severity(tenant=tenant_a, at=MONTH_END, limit=10)
        }
    assert labels == {"still failing", "fixed after the month"}
