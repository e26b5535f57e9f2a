"""Every compliance route under a tenant proves the boundary (the generic harness), and the
catalogue routes answer any authenticated caller the same MSP-wide data."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from operations.compliance.models import ComplianceScan, Finding, Framework, Score, Waiver
from tenants.scoping import tenant_scope
from tests.compliance.builders import good_system
from tests.isolation import TenantIsolationTests

OWNER = "ai_system.accountable_owner"


class CompliancePrefixed(TenantIsolationTests):
    resource = "compliance"  # the first segment, as the meta-test counts routes
    route: str

    def url(self, tenant_slug: str, pk=None, action: str | None = None) -> str:
        url = f"/api/v1/tenants/{tenant_slug}/compliance/{self.route}/"
        if pk is not None:
            url += f"{pk}/"
        if action:
            url += f"{action}/"
        return url


class TestFindingIsolation(CompliancePrefixed):
    route = "findings"
    model = Finding
    can_update = can_delete = can_create = False
    csv_list = True

    def make_object(self, tenant):
        system = good_system(tenant, business_owner="")
        with tenant_scope(tenant.id):
            return Finding.objects.create(
                tenant=tenant,
                check_code=OWNER,
                severity="medium",
                subject_type="ai_system",
                subject_id=system.pk,
                subject_label=system.name,
                status="fail",
                detail="No business owner is named.",
            )


class TestWaiverIsolation(CompliancePrefixed):
    route = "waivers"
    model = Waiver
    update_payload = {"reason": "Changed by someone else"}

    def make_object(self, tenant):
        with tenant_scope(tenant.id):
            return Waiver.objects.create(
                tenant=tenant,
                check_code=OWNER,
                reason="Owner being recruited.",
                approved_by="CISO",
                expires_at=timezone.now() + dt.timedelta(days=30),
            )

    def create_payload(self, tenant) -> dict:
        return {
            "check": OWNER,
            "reason": "Accepted until the reorganisation.",
            "approved_by": "CISO",
            "expires_at": (timezone.now() + dt.timedelta(days=30)).isoformat(),
        }


class TestScoreIsolation(CompliancePrefixed):
    route = "scores"
    model = Score
    can_update = can_delete = can_create = False

    def make_object(self, tenant):
        with tenant_scope(tenant.id):
            scan = ComplianceScan.objects.create(tenant=tenant, finished_at=timezone.now())
            return Score.objects.create(
                tenant=tenant,
                scan=scan,
                framework=Framework.objects.get(code="eu-ai-act"),
                score=50,
                controls_total=16,
                controls_assessed=2,
                controls_passed=1,
                controls_failed=1,
            )

    def test_latest_never_shows_foreign_scores(self, caller, objects, tenant_a):
        own, foreign = objects
        response = caller.client.get(self.url(tenant_a.slug) + "latest/")
        assert response.status_code == 200
        assert [row["id"] for row in response.json()] == [own.pk]
