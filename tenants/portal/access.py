"""The one gate every tenant page of the portal goes through.

``portal_tenant_view`` resolves the tenant from the URL with the same selector as the API,
answers 404 alike for missing and foreign tenants, refuses writes the role may not make (MSP
staff write only on pages that ask for ``staff_write``), and runs the view, template
rendering included, inside the tenant scope (and, for writes, one transaction).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

from tenants.models import MspRole, Tenant, TenantRole, TenantStatus
from tenants.scoping import tenant_scope
from tenants.selectors import TenantAccess, tenant_access_for, tenant_switch_choices_for

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# The capabilities a portal page may ask of MSP staff (their other writes go to the console):
# ``staff_write`` is staff only; ``answer`` is shared by clients who write and by staff acting
# on their behalf.
STAFF_PORTAL_CAPABILITIES = ("staff_write", "answer", "own_settings")


@dataclass(frozen=True)
class PortalTenant:
    """The tenant a portal page is about, and what the signed-in user may do there."""

    access: TenantAccess
    write_capability: str | None = None
    # Other tenants a staff member can switch to (empty for client users).
    switchable: tuple[Tenant, ...] = field(default=())

    @property
    def tenant(self) -> Tenant:
        return self.access.tenant

    @property
    def is_staff(self) -> bool:
        return self.access.is_staff

    def stream_scope(self):
        """The page's tenant scope again, for a body read after the view returns (a CSV)."""
        return tenant_scope(self.tenant.id)

    @property
    def role_label(self) -> str:
        labels = dict(MspRole.choices) | dict(TenantRole.choices)
        return labels.get(self.access.role, self.access.role)

    @property
    def client_read_only(self) -> bool:
        """A client in a suspended tenant: everything is visible, nothing can change."""
        return not self.is_staff and self.tenant.status == TenantStatus.SUSPENDED

    @property
    def can_edit(self) -> bool:
        """Whether this page shows and accepts its write forms for this user.

        MSP staff write through the portal only where a page asks for ``staff_write`` (the
        incident workflow, which engineers work from) or ``answer`` (the readiness
        questionnaire, answered on the client's behalf); elsewhere they change tenants in the
        MSP console or the API. Clients never pass ``staff_write``.
        """
        if self.write_capability is None:
            return False
        if self.is_staff and self.write_capability not in STAFF_PORTAL_CAPABILITIES:
            return False
        return self.access.allows(self.write_capability)

    def denial_reason(self) -> str:
        if self.is_staff and self.write_capability in STAFF_PORTAL_CAPABILITIES:
            return "Your MSP role reads only; an engineer or an MSP admin can do this."
        if self.is_staff:
            return (
                "MSP staff see client portals read-only. Make changes in the MSP console "
                "or through the API."
            )
        if self.client_read_only:
            return "This tenant is suspended, so its portal is read-only."
        if self.write_capability is None:
            return "Nothing on this page can be changed."
        return "Your role in this tenant cannot make this change; ask a tenant admin."


def portal_context(page: PortalTenant, *, section: str, **extra) -> dict:
    """The context every tenant page template gets (the layout reads it)."""
    return {
        "portal": page,
        "tenant": page.tenant,
        "section": section,
        **extra,
    }


def render_portal(
    request: HttpRequest,
    page: PortalTenant,
    template: str,
    *,
    section: str,
    status: int = 200,
    **extra,
) -> HttpResponse:
    return render(
        request,
        template,
        portal_context(page, section=section, **extra),
        status=status,
    )


def tenant_not_found(request: HttpRequest) -> HttpResponse:
    """One answer for a tenant (or object) that is missing and one the user may not see."""
    return render(request, "portal/not_found.html", status=404)


def tenant_forbidden(request: HttpRequest, page: PortalTenant) -> HttpResponse:
    return render_portal(
        request,
        page,
        "portal/forbidden.html",
        section="",
        status=403,
        reason=page.denial_reason(),
    )


def portal_tenant_view(
    *, write_capability: str | None = None, edit_only: bool = False
) -> Callable[[Callable], Callable]:
    """Decorate a portal view of ``/portal/<slug>/...``; the view gets ``(request, page, ...)``.

    ``write_capability``: what POST (and other unsafe methods) need, e.g. ``"manage"``; None
    means the page accepts no writes at all. ``edit_only``: the page is a write form, so even
    GET needs the write permission.
    """

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, slug: str, **kwargs) -> HttpResponse:
            access = tenant_access_for(user=request.user, slug=slug)
            if access is None:
                response = tenant_not_found(request)
            else:
                page = PortalTenant(
                    access=access,
                    write_capability=write_capability,
                    switchable=tenant_switch_choices_for(request.user),
                )
                writing = request.method not in SAFE_METHODS
                if (writing or edit_only) and not page.can_edit:
                    response = tenant_forbidden(request, page)
                else:
                    with ExitStack() as stack:
                        if writing:
                            stack.enter_context(transaction.atomic())
                        # The view renders its template inside the scope, so lazy querysets
                        # of tenant-owned models evaluate where the manager allows them.
                        stack.enter_context(tenant_scope(access.tenant.id))
                        response = view(request, page, **kwargs)
            add_never_cache_headers(response)
            return response

        guarded = login_required(wrapper)
        # Lets a test prove that every tenant route of the portal passes through this gate.
        guarded.portal_tenant_view = True
        return guarded

    return decorate
