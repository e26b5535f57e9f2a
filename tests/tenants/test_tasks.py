import pytest
from celery import shared_task
from kombu.exceptions import EncodeError

from tenants import services
from tenants.audit import current_actor
from tenants.models import AuditEvent, OnboardingStep
from tenants.scoping import active_scope
from tenants.tasks import TenantScopedTask

pytestmark = pytest.mark.django_db


@shared_task(base=TenantScopedTask, name="tests.complete_first_step")
def complete_first_step(*, tenant_id: int) -> dict:
    step = OnboardingStep.objects.order_by("position").first()
    services.onboarding_step_set_done(tenant=step.tenant, step=step, done=True)
    return {
        "scope": sorted(active_scope().tenant_ids),
        "visible_tenants": sorted(set(OnboardingStep.objects.values_list("tenant_id", flat=True))),
        "actor": current_actor().label,
    }


@pytest.fixture
def onboarding_tenants(tenant_a, tenant_b):
    for tenant in (tenant_a, tenant_b):
        services.tenant_transition(tenant=tenant, to_status="onboarding")
    return tenant_a, tenant_b


def test_a_task_sees_and_writes_only_its_tenant(onboarding_tenants):
    tenant_a, tenant_b = onboarding_tenants
    result = complete_first_step.apply(kwargs={"tenant_id": tenant_a.id}).get()
    assert result == {
        "scope": [tenant_a.id],
        "visible_tenants": [tenant_a.id],
        "actor": "Groundwork (automatic)",
    }
    assert active_scope() is None
    done = AuditEvent.objects.filter(object_type="tenants.OnboardingStep").get()
    assert (done.tenant_id, done.source) == (tenant_a.id, "job")
    assert len(services.onboarding_missing_steps(tenant=tenant_b)) == 5  # B untouched


def test_a_vanished_tenant_is_skipped_quietly(db):
    assert complete_first_step.apply(kwargs={"tenant_id": 999999}).get() is None


def test_tasks_take_ids_not_instances(onboarding_tenants):
    tenant_a, _ = onboarding_tenants
    with pytest.raises(TypeError, match="tenant_id must be an int"):
        complete_first_step.apply(kwargs={"tenant_id": tenant_a}, throw=True).get()
    with pytest.raises(EncodeError):
        complete_first_step.delay(tenant_id=tenant_a)
