from __future__ import annotations

from contextlib import ExitStack

from tenants.audit import actor_for_user, audit_actor
from tenants.scoping import tenant_scope
from tenants.selectors import tenant_ids_visible_to


def _source_for(path: str) -> str:
    if path.startswith("/admin/"):
        return "admin"
    if path.startswith("/portal/"):
        return "portal"
    return "api"


class AuditContextMiddleware:
    """Sets the audit actor for the request: the session user, source and address."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        actor = actor_for_user(
            getattr(request, "user", None),
            source=_source_for(request.path),
            address=request.META.get("REMOTE_ADDR"),
        )
        with audit_actor(actor):
            return self.get_response(request)


class StaffAdminScopeMiddleware:
    """In the admin, MSP staff work within the tenants they may see (all, for msp_admin).

    The scope feeds the fail-closed managers and, on PostgreSQL, row-level security; the admin
    classes additionally filter tenant-bound rows to the same set.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        with ExitStack() as stack:
            if request.path.startswith("/admin/") and user is not None and user.is_authenticated:
                tenant_ids = tenant_ids_visible_to(user)
                if tenant_ids:
                    stack.enter_context(tenant_scope(*tenant_ids))
            return self.get_response(request)
