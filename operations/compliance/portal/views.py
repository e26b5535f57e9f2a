"""The client's view of its compliance posture. Read-only (work in progress)."""

from __future__ import annotations

from django.views.decorators.http import require_GET

from tenants.portal.access import PortalTenant, portal_tenant_view, render_portal


@portal_tenant_view()
@require_GET
def compliance_overview(request, page: PortalTenant):
    return render_portal(request, page, "compliance/overview.html", section="compliance")
