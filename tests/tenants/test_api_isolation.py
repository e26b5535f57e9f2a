"""Isolation proofs for every tenant-scoped route of the tenants app."""

from __future__ import annotations

import itertools

from tenants import services
from tenants.audit import audit_record
from tenants.models import (
    ApiToken,
    AuditAction,
    AuditEvent,
    Membership,
    MspRole,
    OnboardingStep,
    ServicePlan,
    StaffAssignment,
    TenantRole,
)
from tenants.scoping import tenant_scope
from tests.factories import make_member, make_staff
from tests.isolation import TenantIsolationTests, TenantSingletonIsolationTests

_numbers = itertools.count(1)


class TestMembersIsolation(TenantIsolationTests):
    resource = "members"
    model = Membership
    update_payload = {"role": TenantRole.VIEWER}

    def make_object(self, tenant):
        return make_member(tenant, TenantRole.MEMBER).membership

    def create_payload(self, tenant):
        return {"username": f"new-{tenant.slug}-{next(_numbers)}", "role": TenantRole.MEMBER}


class TestStaffIsolation(TenantIsolationTests):
    resource = "staff"
    model = StaffAssignment
    actor_fixture = "engineer_a"
    # Only msp_admin assigns and unassigns staff, and msp_admin sees every tenant; an
    # engineer's write is refused (403) before any object is looked up, so nothing leaks.
    can_update = can_create = can_delete = False

    def make_object(self, tenant):
        return make_staff(tenant, role=MspRole.ANALYST).staff_assignments.get()

    def test_engineer_cannot_assign_staff(self, caller, tenant_a):
        other = make_staff(role=MspRole.ENGINEER)
        response = caller.client.post(self.url(tenant_a.slug), {"username": other.username})
        assert response.status_code == 403
        assert not StaffAssignment.objects.filter(user=other).exists()


class TestOnboardingIsolation(TenantIsolationTests):
    resource = "onboarding"
    model = OnboardingStep
    can_update = can_delete = can_create = False
    detail_actions = ("complete", "reopen")

    def make_object(self, tenant):
        with tenant_scope(tenant.id):
            return OnboardingStep.objects.create(
                tenant=tenant, key=f"step-{next(_numbers)}", title="A step"
            )


class TestTokensIsolation(TenantIsolationTests):
    resource = "tokens"
    model = ApiToken
    # Only a signed-in person creates tokens; the reads and revoke behave the same either way.
    actor_fixture = "admin_a_signed_in"
    can_update = can_delete = False
    detail_actions = ("revoke",)

    def make_object(self, tenant):
        user = make_member(tenant, TenantRole.ADMIN)
        token, _plaintext = services.token_issue(user=user, name="ci", scopes=["read"])
        return token

    def create_payload(self, tenant):
        return {"name": f"token {next(_numbers)}", "scopes": ["read"]}


class TestAuditIsolation(TenantIsolationTests):
    resource = "audit"
    model = AuditEvent
    can_update = can_delete = can_create = False
    csv_list = True
    csv_actor_fixture = "engineer_a"  # the audit log's CSV is for MSP staff

    def make_object(self, tenant):
        return audit_record(tenant=tenant, action=AuditAction.UPDATE, instance=tenant)


class TestPlanIsolation(TenantSingletonIsolationTests):
    resource = "plan"
    actor_fixture = "engineer_a"
    update_payload = {"tier": "enterprise"}

    def state_of(self, tenant):
        return ServicePlan.objects.filter(tenant=tenant).values().get()
