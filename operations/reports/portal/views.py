"""The tenant's reports in the portal: the list (published ones; MSP staff also see draft
reviews) and each version's downloads. Read-only: reports are asked for through the API or
the MSP console, and made by the job engine."""

from __future__ import annotations

from django.http import HttpResponse
from django.views.decorators.http import require_GET

from operations.reports.models import ReportFormat
from operations.reports.selectors import (
    ReportFileUnavailable,
    report_file_name,
    report_file_read,
    report_get,
    report_list,
)
from tenants.portal.access import PortalTenant, portal_tenant_view, render_portal, tenant_not_found

CONTENT_TYPES = {ReportFormat.PDF: "application/pdf", ReportFormat.HTML: "text/html"}


@portal_tenant_view()
@require_GET
def report_list_page(request, page: PortalTenant):
    reports = list(report_list(tenant=page.tenant, staff=page.is_staff)[:200])
    return render_portal(request, page, "reports/list.html", section="reports", reports=reports)


@portal_tenant_view()
@require_GET
def report_download(request, page: PortalTenant, pk: int, fmt: str):
    report = report_get(tenant=page.tenant, pk=pk, staff=page.is_staff)
    if report is None or fmt not in CONTENT_TYPES:
        return tenant_not_found(request)
    try:
        data = report_file_read(report=report, fmt=fmt)
    except ReportFileUnavailable as exc:
        return render_portal(
            request,
            page,
            "reports/unavailable.html",
            section="reports",
            status=409,
            report=report,
            reason=exc.reason,
        )
    response = HttpResponse(data, content_type=CONTENT_TYPES[fmt])
    disposition = "inline" if fmt == ReportFormat.HTML else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{report_file_name(report, fmt)}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
    )
    return response
