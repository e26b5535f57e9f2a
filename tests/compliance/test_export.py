"""``…/compliance/findings/?format=csv``: every finding the filters select, with the effective
status (a waived failure says ``waived``) and the controls it maps to."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from operations.compliance.models import Finding, Waiver
from tenants.scoping import tenant_scope

pytestmark = pytest.mark.django_db

URL = "/api/v1/tenants/acme/compliance/findings/"
OWNER = "ai_system.accountable_owner"


def make_finding(tenant, subject_id: int, status: str, label: str, check=OWNER) -> Finding:
    with tenant_scope(tenant.id):
        return Finding.objects.create(
            tenant=tenant,
            check_code=check,
            severity="medium",
            subject_type="ai_system",
            subject_id=subject_id,
            subject_label=label,
            status=status,
        )


def rows_of(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.getvalue().decode())))


def test_findings_csv_has_the_filters_and_the_effective_status(admin_a, tenant_a, tenant_b):
    failing = make_finding(tenant_a, 1, "fail", "=Chatbot")
    waived = make_finding(tenant_a, 2, "fail", "Scoring")
    make_finding(tenant_a, 3, "pass", "Search")
    make_finding(tenant_b, 1, "fail", "Borealis bot")
    with tenant_scope(tenant_a.id):
        Waiver.objects.create(
            tenant=tenant_a,
            check_code=OWNER,
            subject_type="ai_system",
            subject_id=2,
            reason="Owner being hired",
            approved_by="CISO",
            expires_at=timezone.now() + dt.timedelta(days=10),
        )

    response = admin_a.client.get(URL, {"format": "csv", "status": "fail", "page_size": 1})
    assert response.status_code == 200
    assert 'filename="acme-compliance-findings.csv"' in response["Content-Disposition"]
    rows = rows_of(response)
    assert [row["id"] for row in rows] == [str(failing.pk)]
    assert rows[0]["subject"] == "'=Chatbot"
    assert rows[0]["status"] == "fail"
    assert "eu-ai-act:" in rows[0]["controls"]

    waived_rows = rows_of(admin_a.client.get(URL, {"format": "csv", "status": "waived"}))
    assert [(row["id"], row["status"]) for row in waived_rows] == [(str(waived.pk), "waived")]
    assert len(rows_of(admin_a.client.get(URL, {"format": "csv"}))) == 3
