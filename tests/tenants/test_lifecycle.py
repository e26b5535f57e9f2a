"""Lifecycle hooks: other contexts follow a tenant's status through hooks they register."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from operations.jobs.services import job_schedules_sync_for_tenant
from tenants import lifecycle, services
from tenants.models import Tenant, TenantStatus
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def hooks(monkeypatch):
    """The registry as the apps left it, restored after the test."""
    registered = list(lifecycle.tenant_transition_hooks())
    monkeypatch.setattr(lifecycle, "_transition_hooks", registered)
    return registered


def test_the_jobs_app_registers_its_schedules_hook_when_it_is_ready():
    assert job_schedules_sync_for_tenant in lifecycle.tenant_transition_hooks()


def test_a_transition_calls_each_hook_once_with_the_saved_status(hooks):
    seen = []

    def record(*, tenant):
        seen.append((tenant.pk, Tenant.objects.get(pk=tenant.pk).status))

    lifecycle.on_tenant_transition(record)
    lifecycle.on_tenant_transition(record)  # registering again changes nothing
    tenant = TenantFactory()

    services.tenant_transition(tenant=tenant, to_status=TenantStatus.ONBOARDING)

    assert seen == [(tenant.pk, TenantStatus.ONBOARDING)]


def test_a_hook_that_raises_rolls_the_transition_back(hooks):
    def refuse(*, tenant):
        raise ValidationError("not now")

    lifecycle.on_tenant_transition(refuse)
    tenant = TenantFactory()
    assert tenant.status == TenantStatus.PROSPECT

    with pytest.raises(ValidationError):
        services.tenant_transition(tenant=tenant, to_status=TenantStatus.ONBOARDING)

    assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.PROSPECT
