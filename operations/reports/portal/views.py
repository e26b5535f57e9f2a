"""The tenant's reports in the portal: the list (published ones; MSP staff also see draft
reviews; evidence packs for those who read the audit log) and each version's downloads.
Reports are made by the job engine: a month's through the API or the MSP console, an evidence
pack from the compliance page's form, which posts here."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from operations.reports.models import ReportFormat
from operations.reports.selectors import (
    ReportFileUnavailable,
    evidence_pack_runs_in_progress,
    report_file_name,
    report_file_read,
    report_get,
    report_list,
)
from operations.reports.services import evidence_pack_request
from tenants.portal.access import PortalTenant, portal_tenant_view, render_portal, tenant_not_found

CONTENT_TYPES = {
    ReportFormat.PDF: "application/pdf",
    ReportFormat.HTML: "text/html",
    ReportFormat.ZIP: "application/zip",
}


@portal_tenant_view()
@require_GET
def report_list_page(request, page: PortalTenant):
    reports = list(report_list(tenant=page.tenant, access=page.access)[:200])
    return render_portal(
        request,
        page,
        "reports/list.html",
        section="reports",
        reports=reports,
        evidence_runs=evidence_pack_runs_in_progress(tenant=page.tenant, access=page.access),
    )


@portal_tenant_view()
@require_GET
def report_download(request, page: PortalTenant, pk: int, fmt: str):
    report = report_get(tenant=page.tenant, pk=pk, access=page.access)
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


class EvidencePackRequestForm(forms.Form):
    framework = forms.SlugField(max_length=50)
    to = forms.DateField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword: declared here rather than as a class attribute.
        self.fields["from"] = forms.DateField()


@portal_tenant_view(write_capability="manage")
@require_POST
def evidence_pack_request_page(request, page: PortalTenant):
    """Ask the job engine for an evidence pack (the compliance page's form); the stored pack
    then appears on the reports page. A refused one goes back to the compliance page."""
    form = EvidencePackRequestForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(form.errors.as_text())
        run = evidence_pack_request(
            tenant=page.tenant,
            framework_code=form.cleaned_data["framework"],
            period_start=form.cleaned_data["from"],
            period_end=form.cleaned_data["to"],
            user=request.user,
        )
    except ValidationError as refused:
        messages.error(request, f"No evidence pack: {' '.join(refused.messages)}")
        return redirect(reverse("portal_compliance:overview", args=[page.tenant.slug]))
    messages.success(
        request,
        f"Evidence pack requested (job run #{run.pk}). It is listed here, with its checksum, "
        "as soon as it is ready.",
    )
    return redirect(reverse("portal_reports:list", args=[page.tenant.slug]))
