"""Events recorded through the hooks other contexts offer: tenants (it imports no context) and
the job engine (which imports no context of its users)."""

from __future__ import annotations

from operations.events.services import event_record
from tenants.models import Tenant
from tenants.scoping import tenant_scope


def tenant_status_changed(*, tenant) -> None:
    with tenant_scope(tenant.id):
        event_record(
            tenant=tenant,
            topic="tenant.status_changed",
            payload={"slug": tenant.slug, "name": tenant.name, "status": tenant.status},
        )


def token_created(*, token) -> None:
    creator = token.created_by or token.user
    with tenant_scope(token.tenant_id):
        event_record(
            tenant=token.tenant,
            topic="token.created",
            payload={
                "id": token.pk,
                "name": token.name,
                "prefix": token.prefix,
                "scopes": list(token.scopes),
                "expires_at": token.expires_at,
                "created_by": creator.get_username() if creator else None,
            },
        )


def job_failed(*, run) -> None:
    """``job.failed`` for a tenant's run that failed after its last attempt (the engine calls
    this in the transaction that stores the failure)."""
    with tenant_scope(run.tenant_id):
        event_record(
            tenant=Tenant(pk=run.tenant_id),
            topic="job.failed",
            payload={
                "id": run.pk,
                "kind": run.kind,
                "status": run.status,
                "attempts": run.attempts,
                "error": run.error or "",
                "finished_at": run.finished_at,
            },
        )
