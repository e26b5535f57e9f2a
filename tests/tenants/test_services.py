import pytest
from django.contrib.auth import get_user_model

from tenants import services
from tenants.models import AuditEvent, MspRole, OnboardingStep
from tenants.owned import owned_object_create, owned_object_delete
from tenants.scoping import tenant_scope

pytestmark = pytest.mark.django_db


def test_completing_a_done_step_again_keeps_who_and_when(tenant_a, admin_a, admin_b):
    services.tenant_transition(tenant=tenant_a, to_status="onboarding")
    with tenant_scope(tenant_a.id):
        step = OnboardingStep.objects.first()
        services.onboarding_step_set_done(tenant=tenant_a, step=step, done=True, user=admin_a.user)
        first = (step.completed_at, step.completed_by_id)
        services.onboarding_step_set_done(tenant=tenant_a, step=step, done=True, user=admin_b.user)
        step.refresh_from_db()
    assert (step.completed_at, step.completed_by_id) == first


def test_completing_a_done_step_again_writes_no_audit_event(tenant_a, admin_a):
    services.tenant_transition(tenant=tenant_a, to_status="onboarding")
    with tenant_scope(tenant_a.id):
        step = OnboardingStep.objects.first()
        services.onboarding_step_set_done(tenant=tenant_a, step=step, done=True, user=admin_a.user)
        before = AuditEvent.objects.count()
        services.onboarding_step_set_done(tenant=tenant_a, step=step, done=True, user=admin_a.user)
    assert AuditEvent.objects.count() == before


def test_a_no_op_update_writes_no_audit_event(tenant_a):
    before = AuditEvent.objects.count()
    services.tenant_update(tenant=tenant_a, name=tenant_a.name)
    assert AuditEvent.objects.count() == before


def test_a_delete_event_keeps_the_deleted_values(tenant_a):
    with tenant_scope(tenant_a.id):
        step = owned_object_create(
            tenant=tenant_a, model=OnboardingStep, data={"key": "k", "title": "Kept title"}
        )
        owned_object_delete(tenant=tenant_a, instance=step)
    event = AuditEvent.objects.filter(action="delete").get()
    assert event.changes["title"] == ["Kept title", None]
    assert event.tenant == tenant_a


def test_createsuperuser_makes_an_msp_admin(db):
    user = get_user_model().objects.create_superuser("root2", "r@example.com", "x-long-pass-1")
    assert user.msp_role == MspRole.ADMIN
