"""On PostgreSQL, row-level security is the second wall under the compliance tables: even a
query that skips the application's tenant filter sees only the scope's rows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from operations.compliance.models import ComplianceScan, Finding, Score, Waiver
from operations.compliance.services import compliance_run_for_tenant
from tenants.scoping import tenant_scope
from tests.compliance.builders import good_system
from tests.conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db]


def test_unscoped_queries_see_only_the_scopes_rows(tenant_a, tenant_b):
    for tenant in (tenant_a, tenant_b):
        good_system(tenant, business_owner="")
        compliance_run_for_tenant(tenant=tenant)
        with tenant_scope(tenant.id):
            Waiver.objects.create(
                tenant=tenant,
                check_code="ai_system.accountable_owner",
                reason="r",
                approved_by="a",
                expires_at=timezone.now() + dt.timedelta(days=1),
            )
    for model in (ComplianceScan, Finding, Score, Waiver):
        with tenant_scope(tenant_a.id):
            tenants = set(model.objects.unscoped().values_list("tenant_id", flat=True))
        assert tenants == {tenant_a.id}, model


def test_a_row_for_another_tenant_cannot_be_written_inside_a_scope(tenant_a, tenant_b):
    from django.db import DatabaseError

    with pytest.raises(DatabaseError), tenant_scope(tenant_a.id):
        Waiver.objects.create(
            tenant=tenant_b,
            check_code="ai_system.accountable_owner",
            reason="r",
            approved_by="a",
            expires_at=timezone.now() + dt.timedelta(days=1),
        )
