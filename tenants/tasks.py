"""The base for tenant-scoped Celery tasks.

Tasks take a ``tenant_id`` keyword and other ids, never model instances (the JSON serializer
refuses them anyway). The base re-fetches nothing on the caller's behalf: it checks the tenant
still exists, then runs the task inside that tenant's scope with a job actor for the audit log.
"""

from __future__ import annotations

import logging

from celery import Task

from tenants.audit import AUTOMATIC_LABEL, AuditActor, audit_actor
from tenants.models import Tenant
from tenants.scoping import tenant_scope

logger = logging.getLogger(__name__)


class TenantScopedTask(Task):
    """Use as ``@shared_task(base=TenantScopedTask)``; call with ``tenant_id=<int>``."""

    def __call__(self, *args, tenant_id: int, **kwargs):
        if not isinstance(tenant_id, int):
            raise TypeError(f"{self.name}: tenant_id must be an int, got {type(tenant_id)!r}")
        if not Tenant.objects.filter(pk=tenant_id).exists():
            # Gone since it was enqueued: nothing to do, nothing to retry.
            logger.info("%s: tenant %s no longer exists; skipping", self.name, tenant_id)
            return None
        actor = AuditActor(label=AUTOMATIC_LABEL, source="job")
        with audit_actor(actor), tenant_scope(tenant_id):
            return super().__call__(*args, tenant_id=tenant_id, **kwargs)
