"""Client portal pages for incidents: list, raise, follow, comment, confirm or dispute a fix;
and the alert rules that watch the tenant's telemetry (read-only).

Every page goes through ``portal_tenant_view`` (tenant from the URL, same 404 for foreign and
missing, writes refused to roles that may not write and to MSP staff). The portal is the client's
view: it shows client-visible timeline entries only, whoever looks (staff included).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from operations.events.selectors import notifications_about
from operations.incidents import services
from operations.incidents.exports import timeline_csv, timeline_csv_filename
from operations.incidents.models import Incident, IncidentSource
from operations.incidents.portal.forms import IncidentCommentForm, IncidentRaiseForm
from operations.incidents.selectors import (
    INCIDENT_PORTAL_STATES,
    alert_rule_source,
    alert_rules_effective,
    incident_allowed_actions,
    incident_get_by_number,
    incident_portal_list,
    incident_portal_state_counts,
    postmortem_for,
    timeline_visible,
)
from operations.telemetry.metrics import METRICS_BY_NAME
from tenants.portal.access import (
    PortalTenant,
    portal_tenant_view,
    render_portal,
    tenant_not_found,
)

PAGE_SIZE = 25
_STATES = INCIDENT_PORTAL_STATES


def _incident_or_none(page: PortalTenant, number: int) -> Incident | None:
    return incident_get_by_number(tenant=page.tenant, number=number)


@portal_tenant_view(write_capability="write")
@require_GET
def incident_list(request, page: PortalTenant):
    state = request.GET.get("state", "open")
    if state not in _STATES:
        state = "open"
    incidents = incident_portal_list(tenant=page.tenant, state=state)
    counts = incident_portal_state_counts(tenant=page.tenant)
    paginator = Paginator(incidents, PAGE_SIZE)
    listing = paginator.get_page(request.GET.get("page"))
    return render_portal(
        request,
        page,
        "incidents/list.html",
        section="incidents",
        listing=listing,
        state=state,
        states=[(key, label, counts[key]) for key, (label, _condition) in _STATES.items()],
    )


@portal_tenant_view(write_capability="write", edit_only=True)
def incident_raise(request, page: PortalTenant):
    form = IncidentRaiseForm(tenant=page.tenant)
    if request.method == "POST":
        form = IncidentRaiseForm(request.POST, tenant=page.tenant)
        if form.is_valid():
            data = form.cleaned_data
            try:
                incident = services.incident_create(
                    tenant=page.tenant,
                    title=data["title"],
                    description=data["description"],
                    severity=data["severity"],
                    category=data["category"],
                    ai_systems=list(data["ai_systems"]),
                    source=IncidentSource.PORTAL,
                    reporter=request.user,
                )
            except ValidationError as error:
                form.add_service_error(error)
            else:
                messages.success(
                    request,
                    f"Raised {incident.reference}. Your MSP team has been alerted; "
                    f"follow it on this page.",
                )
                return redirect(
                    "portal_incidents:detail", slug=page.tenant.slug, number=incident.number
                )
    return render_portal(request, page, "incidents/raise.html", section="incidents", form=form)


@portal_tenant_view(write_capability="write")
def incident_detail(request, page: PortalTenant, number: int):
    incident = _incident_or_none(page, number)
    if incident is None:
        return tenant_not_found(request)
    form = IncidentCommentForm()
    if request.method == "POST":
        form = IncidentCommentForm(request.POST)
        if form.is_valid():
            try:
                services.incident_comment(
                    tenant=page.tenant,
                    incident=incident,
                    body=form.cleaned_data["body"],
                    internal=False,  # clients never write internal notes
                    user=request.user,
                )
            except ValidationError as error:
                form.add_service_error(error)
            else:
                messages.success(request, "Comment added.")
                return redirect(
                    "portal_incidents:detail", slug=page.tenant.slug, number=incident.number
                )
    postmortem = postmortem_for(incident=incident)
    return render_portal(
        request,
        page,
        "incidents/detail.html",
        section="incidents",
        incident=incident,
        # The portal shows no write forms to those it refuses (MSP staff, readers).
        allowed_actions=incident_allowed_actions(incident, page.access) if page.can_edit else [],
        timeline=timeline_visible(incident=incident, staff=False),
        postmortem=postmortem,
        form=form,
        notified=notifications_about(tenant=page.tenant, subject_ref=f"incident:{incident.pk}"),
    )


@portal_tenant_view(write_capability="write")
@require_POST
def incident_confirm(request, page: PortalTenant, number: int, action: str):
    """Confirm a resolution (close) or say it is not fixed (reopen)."""
    incident = _incident_or_none(page, number)
    if incident is None:
        return tenant_not_found(request)
    note = request.POST.get("note", "").strip()[:10000]
    try:
        incident = services.incident_transition(
            tenant=page.tenant,
            incident=incident,
            action=action,
            user=request.user,
            note=note,
            note_internal=False,
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        words = "Closed" if action == "close" else "Reopened"
        messages.success(request, f"{words} {incident.reference}.")
    return redirect("portal_incidents:detail", slug=page.tenant.slug, number=incident.number)


@portal_tenant_view()
@require_GET
def incident_timeline_csv(request, page: PortalTenant, number: int):
    incident = _incident_or_none(page, number)
    if incident is None:
        return tenant_not_found(request)
    entries = timeline_visible(incident=incident, staff=False)
    response = HttpResponse(
        timeline_csv(incident=incident, entries=entries), content_type="text/csv"
    )
    response["Content-Disposition"] = f'attachment; filename="{timeline_csv_filename(incident)}"'
    return response


@portal_tenant_view()
@require_GET
def alert_rule_list(request, page: PortalTenant):
    """The alert rules watching the tenant's telemetry (its own and the MSP-wide defaults in
    force), read-only: tenant admins change them through the API, MSP staff in the console."""
    rules = [
        {"rule": rule, "source": alert_rule_source(rule), "metric": METRICS_BY_NAME[rule.metric]}
        for rule in alert_rules_effective(tenant=page.tenant)
    ]
    return render_portal(
        request, page, "incidents/alert_rules.html", section="incidents", rules=rules
    )
