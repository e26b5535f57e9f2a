"""Client portal pages for incidents: list, raise, follow, comment, confirm or dispute a fix;
and the alert rules that watch the tenant's telemetry (read-only).

Every page goes through ``portal_tenant_view`` (tenant from the URL, same 404 for foreign and
missing, writes refused to roles that may not write). Clients see client-visible timeline
entries only. MSP engineers and admins also work incidents here (``staff_write``): workflow
buttons, replies and internal notes, assignment and severity, all through the services; they
see the internal notes, marked as such.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from msp.api.csv_download import csv_streaming_response
from operations.events.selectors import notifications_about
from operations.incidents import services
from operations.incidents.exports import (
    INCIDENT_CSV_COLUMNS,
    incidents_csv_filename,
    timeline_csv,
    timeline_csv_filename,
)
from operations.incidents.models import Incident, IncidentSource
from operations.incidents.portal.forms import (
    IncidentCommentForm,
    IncidentRaiseForm,
    StaffNoteForm,
    StaffSeverityForm,
    WorkflowNoteForm,
)
from operations.incidents.selectors import (
    INCIDENT_ACTION_LABELS,
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
        timeline=timeline_visible(incident=incident, staff=page.is_staff),
        postmortem=postmortem,
        form=form,
        **_staff_workspace(page, incident),
        notified=notifications_about(tenant=page.tenant, subject_ref=f"incident:{incident.pk}"),
    )


def _staff_workspace(page: PortalTenant, incident: Incident, **forms) -> dict:
    """What an engineer may do to the incident from its page; nothing for clients or readers."""
    if not (page.is_staff and page.access.allows("staff_write")):
        return {}
    allowed = incident_allowed_actions(incident, page.access)
    return {
        "staff_actions": [
            {"name": name, "label": label}
            for name, label in INCIDENT_ACTION_LABELS.items()
            if name in allowed
        ],
        "staff_can_comment": "comment" in allowed,
        "staff_note_form": forms.get("note_form") or StaffNoteForm(),
        "staff_severity_form": forms.get("severity_form")
        or StaffSeverityForm(initial={"severity": incident.severity}),
        "assignable": services.assignable_staff(tenant=page.tenant),
    }


def _back_to(incident: Incident, page: PortalTenant):
    return redirect("portal_incidents:detail", slug=page.tenant.slug, number=incident.number)


def _report(request, error: ValidationError) -> None:
    messages.error(request, " ".join(error.messages))


@portal_tenant_view(write_capability="staff_write")
@require_POST
def incident_staff_act(request, page: PortalTenant, number: int, action: str):
    """A workflow button: acknowledge, investigate, mitigate, wait on client, resolve, …"""
    incident = _incident_or_none(page, number)
    if incident is None or action not in INCIDENT_ACTION_LABELS:
        return tenant_not_found(request)
    if action not in incident_allowed_actions(incident, page.access):
        messages.error(request, f"{incident.reference} cannot {action.replace('-', ' ')} now.")
        return _back_to(incident, page)
    form = WorkflowNoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.problems())
        return _back_to(incident, page)
    try:
        incident = services.incident_perform(
            tenant=page.tenant,
            incident=incident,
            action=action,
            user=request.user,
            note=form.cleaned_data["note"],
            note_internal=form.note_internal,
        )
    except ValidationError as error:
        _report(request, error)
    else:
        messages.success(request, f"{incident.reference}: {INCIDENT_ACTION_LABELS[action]} — done.")
    return _back_to(incident, page)


@portal_tenant_view(write_capability="staff_write")
@require_POST
def incident_staff_note(request, page: PortalTenant, number: int):
    """A reply the client reads, or an internal note only the MSP reads."""
    incident = _incident_or_none(page, number)
    if incident is None:
        return tenant_not_found(request)
    form = StaffNoteForm(request.POST)
    if form.is_valid():
        internal = form.cleaned_data["visibility"] == "internal"
        try:
            services.incident_comment(
                tenant=page.tenant,
                incident=incident,
                body=form.cleaned_data["body"],
                internal=internal,
                user=request.user,
            )
        except ValidationError as error:
            _report(request, error)
        else:
            messages.success(request, "Internal note added." if internal else "Reply sent.")
    else:
        messages.error(request, "Write a reply or a note, and choose who reads it.")
    return _back_to(incident, page)


@portal_tenant_view(write_capability="staff_write")
@require_POST
def incident_staff_assign(request, page: PortalTenant, number: int):
    """Assign to an engineer of the account team (``me`` for oneself), or unassign."""
    incident = _incident_or_none(page, number)
    if incident is None:
        return tenant_not_found(request)
    choice = request.POST.get("assignee", "")
    assignee = request.user.pk if choice == "me" else (int(choice) if choice.isdigit() else None)
    if choice and assignee is None:
        messages.error(request, "Choose someone from the list.")
        return _back_to(incident, page)
    try:
        incident = services.incident_assign(
            tenant=page.tenant, incident=incident, assignee=assignee, user=request.user
        )
    except ValidationError as error:
        _report(request, error)
    else:
        owner = incident.assignee
        messages.success(
            request,
            f"Assigned to {owner.get_full_name() or owner.username}." if owner else "Unassigned.",
        )
    return _back_to(incident, page)


@portal_tenant_view(write_capability="staff_write")
@require_POST
def incident_staff_severity(request, page: PortalTenant, number: int):
    """Change the severity, with the reason the client reads on the timeline."""
    incident = _incident_or_none(page, number)
    if incident is None:
        return tenant_not_found(request)
    form = StaffSeverityForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a severity and say why it changes.")
        return _back_to(incident, page)
    try:
        incident = services.incident_change_severity(
            tenant=page.tenant,
            incident=incident,
            severity=form.cleaned_data["severity"],
            reason=form.cleaned_data["reason"],
            reason_internal=False,
            user=request.user,
        )
    except ValidationError as error:
        _report(request, error)
    else:
        messages.success(request, f"{incident.reference} is now {incident.severity}.")
    return _back_to(incident, page)


@portal_tenant_view(write_capability="write")
@require_POST
def incident_confirm(request, page: PortalTenant, number: int, action: str):
    """Confirm a resolution (close) or say it is not fixed (reopen)."""
    incident = _incident_or_none(page, number)
    if incident is None:
        return tenant_not_found(request)
    form = WorkflowNoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.problems())
        return redirect("portal_incidents:detail", slug=page.tenant.slug, number=incident.number)
    try:
        incident = services.incident_transition(
            tenant=page.tenant,
            incident=incident,
            action=action,
            user=request.user,
            note=form.cleaned_data["note"],
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
def incident_list_csv(request, page: PortalTenant):
    """Every incident of the list's state (not one page) as CSV, streamed."""
    state = request.GET.get("state", "open")
    if state not in _STATES:
        state = "open"
    return csv_streaming_response(
        filename=incidents_csv_filename(page.tenant),
        columns=INCIDENT_CSV_COLUMNS,
        rows=incident_portal_list(tenant=page.tenant, state=state),
        scope=page.stream_scope,
    )


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
