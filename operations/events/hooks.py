"""Events of the tenants context, recorded through the hooks it offers (it imports no context)."""

from __future__ import annotations

from operations.events.services import event_record
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
