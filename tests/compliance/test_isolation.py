"""Every compliance route under a tenant proves the boundary (the generic harness), and the
catalogue routes answer any authenticated caller the same MSP-wide data."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

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


class TestEvidencePackIsolation:
    """``…/compliance/evidence-pack``: another tenant's pack is the same 404 as a missing
    tenant's, and a pack holds nothing of another tenant (files included)."""

    url = "/api/v1/tenants/{slug}/compliance/evidence-pack"
    query = {"framework": "eu-ai-act", "from": "2026-01-01", "to": "2026-12-31"}

    def test_foreign_pack_is_the_same_404_as_a_missing_tenant(self, admin_a, tenant_b):
        foreign = admin_a.client.get(self.url.format(slug=tenant_b.slug), self.query)
        missing = admin_a.client.get(self.url.format(slug="no-such-tenant"), self.query)
        assert foreign.status_code == missing.status_code == 404
        assert foreign.content == missing.content

    def test_the_pack_holds_nothing_of_another_tenant(self, admin_a, tenant_a, tenant_b):
        own = TestFindingIsolation().make_object(tenant_a)
        foreign = TestFindingIsolation().make_object(tenant_b)
        with tenant_scope(tenant_b.id):
            Finding.objects.filter(pk=foreign.pk).update(subject_label="Borealis only")
        today = timezone.localdate()
        query = {**self.query, "from": str(today - dt.timedelta(days=7)), "to": str(today)}
        response = admin_a.client.get(self.url.format(slug=tenant_a.slug), query)
        assert response.status_code == 200
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            files = {name: archive.read(name).decode() for name in archive.namelist()}
        assert str(own.pk) in files["findings.csv"]
        assert not any("Borealis" in text or "borealis" in text for text in files.values())
