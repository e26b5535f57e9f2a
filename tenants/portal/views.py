"""The tenant portal: thin views over the tenants services and selectors.

Every page under ``/portal/<slug>/`` is wrapped in ``portal_tenant_view``, which resolves the
tenant, checks the user's rights and holds the tenant scope; see ``tenants.portal.access``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from tenants import services
from tenants.durations import duration_label
from tenants.fleet import fleet_table
from tenants.models import ApiToken, Coverage, ServicePlan, Severity, TenantStatus
from tenants.overview import overview_panels_built
from tenants.portal.access import (
    PortalTenant,
    portal_tenant_view,
    render_portal,
    tenant_not_found,
)
from tenants.portal.forms import (
    MemberCreateForm,
    MemberRoleForm,
    TenantSecurityForm,
    TimezoneForm,
    TokenCreateForm,
)
from tenants.selectors import (
    api_token_get,
    api_token_list,
    fleet_filter_choices,
    fleet_tenant_rows,
    membership_get,
    membership_list,
    onboarding_step_list,
    service_plan_get,
    tenant_first_visible_to,
    tenant_status_counts_for,
    viewer_timezone_name,
)

FLEET_PAGE_SIZE = 100
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _token_status(token: ApiToken) -> str:
    if token.revoked_at is not None:
        return "revoked"
    return "expired" if token.is_expired else "active"


# --- Home ---------------------------------------------------------------------------------------


@never_cache
@login_required
@require_GET
def home(request):
    """Clients go straight to their tenant; MSP staff get the tenants they can reach."""
    user = request.user
    if not user.msp_role:
        tenant = tenant_first_visible_to(user)
        if tenant is None:
            return render(request, "portal/no_tenant.html")
        return redirect("portal:overview", slug=tenant.slug)

    return _fleet_dashboard(request)


def _fleet_dashboard(request):
    """Every tenant the staff member may see, the ones that need attention first."""
    user = request.user
    query = request.GET.get("q", "").strip()
    status = request.GET.get("status", "")
    if status not in TenantStatus.values:
        status = ""
    industry = request.GET.get("industry", "")
    choices = fleet_filter_choices(user)
    if industry not in choices["industries"]:
        industry = ""
    account_team = request.GET.get("team", "")
    team_ids = {str(pk): pk for pk, _name in choices["account_team"]}
    account_team_id = team_ids.get(account_team)
    if account_team_id is None:
        account_team = ""
    status_counts = tenant_status_counts_for(user)
    tenant_rows = fleet_tenant_rows(
        user, query=query, status=status, account_team=account_team_id, industry=industry
    )
    placeholder = "tenant-slug"
    prefix = reverse("portal:overview", kwargs={"slug": placeholder}).replace(placeholder, "{slug}")
    table = fleet_table(tenant_rows=tenant_rows, portal_prefix=prefix)
    # The rows that need attention come first; the total row counts every page.
    rows = Paginator(table.rows, FLEET_PAGE_SIZE).get_page(request.GET.get("page"))
    filters = request.GET.copy()
    filters.pop("page", None)
    return render(
        request,
        "portal/home.html",
        {
            "table": table,
            "rows": rows,
            "filter_query": filters.urlencode(),
            "query": query,
            "status": status,
            "industry": industry,
            "account_team": account_team,
            "team_choices": choices["account_team"],
            "industries": choices["industries"],
            "statuses": [
                (value, label, status_counts.get(value, 0)) for value, label in TenantStatus.choices
            ],
            "total": sum(status_counts.values()),
            "filtered": bool(query or status or industry or account_team),
        },
    )


@login_required
@require_GET
def switch_tenant(request):
    """The staff tenant switcher submits here; the target page checks access as always."""
    try:
        target = reverse("portal:overview", kwargs={"slug": request.GET.get("tenant", "")})
    except NoReverseMatch:
        return redirect("portal:home")
    return redirect(target)


# --- Overview -----------------------------------------------------------------------------------


def _plan_summary(plan: ServicePlan) -> dict:
    days = sorted(plan.business_days or [])
    return {
        "plan": plan,
        "is_business_hours": plan.coverage == Coverage.BUSINESS_HOURS,
        "business_days": ", ".join(_WEEKDAYS[day] for day in days if 0 <= day <= 6),
        "sla_rows": [
            {
                "severity": value,
                # "SEV1 (critical)" -> "critical"
                "label": str(label).removeprefix(value).strip(" ()"),
                "acknowledge": duration_label(plan.sla_target(value)[0]),
                "resolve": duration_label(plan.sla_target(value)[1]),
            }
            for value, label in Severity.choices
        ],
        "frameworks": plan.frameworks_in_scope or [],
    }


@portal_tenant_view()
def overview(request, page: PortalTenant):
    tenant = page.tenant
    plan = service_plan_get(tenant=tenant)
    steps = onboarding_step_list(tenant=tenant)
    required = [step for step in steps if step.required]
    return render_portal(
        request,
        page,
        "portal/overview.html",
        section="overview",
        panels=overview_panels_built(tenant=tenant, now=timezone.now()),
        plan_summary=_plan_summary(plan) if plan else None,
        steps=steps,
        required_total=len(required),
        required_done=sum(1 for step in required if step.done),
    )


# --- Team ---------------------------------------------------------------------------------------


@portal_tenant_view(write_capability="manage")
def team(request, page: PortalTenant):
    """Who is in the tenant; tenant admins add people here."""
    form = MemberCreateForm()
    if request.method == "POST":
        form = MemberCreateForm(request.POST)
        if form.is_valid():
            try:
                membership = services.membership_create(tenant=page.tenant, **form.cleaned_data)
            except ValidationError as error:
                form.add_service_error(error)
            else:
                messages.success(
                    request,
                    f"Added {membership.user.username} as {membership.get_role_display()}.",
                )
                return redirect("portal:team", slug=page.tenant.slug)
    return render_portal(
        request,
        page,
        "portal/team.html",
        section="team",
        members=membership_list(tenant=page.tenant),
        form=form,
        security_form=TenantSecurityForm(initial={"require_mfa": page.tenant.require_mfa}),
    )


@portal_tenant_view(write_capability="manage")
@require_POST
def team_two_factor(request, page: PortalTenant):
    """A tenant admin requires (or stops requiring) two-factor sign-in for their tenant."""
    form = TenantSecurityForm(request.POST)
    if form.is_valid():
        required = form.cleaned_data["require_mfa"]
        services.tenant_mfa_requirement_set(tenant=page.tenant, required=required)
        if required:
            messages.success(
                request,
                "Two-factor sign-in is now required: everyone without it sets it up at their "
                "next page view.",
            )
        else:
            messages.success(request, "Two-factor sign-in is now each person's choice.")
    return redirect("portal:team", slug=page.tenant.slug)


@portal_tenant_view(write_capability="manage", edit_only=True)
def member_edit(request, page: PortalTenant, membership_id: int):
    membership = membership_get(tenant=page.tenant, membership_id=membership_id)
    if membership is None:
        return tenant_not_found(request)
    is_self = membership.user_id == request.user.pk
    form = MemberRoleForm(initial={"role": membership.role})
    if request.method == "POST":
        form = MemberRoleForm(request.POST)
        if is_self:
            form.add_error(None, "You cannot change your own role; ask another tenant admin.")
        elif form.is_valid():
            try:
                services.membership_update(
                    tenant=page.tenant, membership=membership, role=form.cleaned_data["role"]
                )
            except ValidationError as error:
                form.add_service_error(error)
            else:
                messages.success(
                    request,
                    f"{membership.user.username} is now {membership.get_role_display()}.",
                )
                return redirect("portal:team", slug=page.tenant.slug)
    return render_portal(
        request,
        page,
        "portal/member_edit.html",
        section="team",
        membership=membership,
        is_self=is_self,
        form=form,
    )


@portal_tenant_view(write_capability="manage")
@require_POST
def member_remove(request, page: PortalTenant, membership_id: int):
    membership = membership_get(tenant=page.tenant, membership_id=membership_id)
    if membership is None:
        return tenant_not_found(request)
    username = membership.user.username
    if membership.user_id == request.user.pk:
        messages.error(request, "You cannot remove yourself; ask another tenant admin.")
        return redirect("portal:member-edit", slug=page.tenant.slug, membership_id=membership.pk)
    services.membership_remove(tenant=page.tenant, membership=membership)
    messages.success(
        request, f"Removed {username}: their account is deactivated and their API tokens revoked."
    )
    return redirect("portal:team", slug=page.tenant.slug)


# --- API tokens ---------------------------------------------------------------------------------


def _tokens(page: PortalTenant) -> list[ApiToken]:
    tokens = api_token_list(tenant=page.tenant)
    for token in tokens:
        token.status = _token_status(token)
    return tokens


@portal_tenant_view(write_capability="manage")
def tokens(request, page: PortalTenant):
    """The tenant's API tokens; tenant admins issue their own here and see the secret once."""
    form = TokenCreateForm()
    if request.method == "POST":
        form = TokenCreateForm(request.POST)
        if form.is_valid():
            try:
                token, plaintext = services.token_issue(
                    user=request.user,
                    tenant=page.tenant,
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    expires_in_days=form.cleaned_data["expires_in_days"],
                    created_by=request.user,
                )
            except ValidationError as error:
                form.add_service_error(error)
            else:
                # Rendered, not redirected: the secret never enters a URL, session or message.
                token.status = _token_status(token)
                return render_portal(
                    request,
                    page,
                    "portal/token_created.html",
                    section="tokens",
                    token=token,
                    plaintext=plaintext,
                    api_example_url=request.build_absolute_uri(
                        f"/api/v1/tenants/{page.tenant.slug}/members/"
                    ),
                )
    return render_portal(
        request,
        page,
        "portal/tokens.html",
        section="tokens",
        tokens=_tokens(page),
        form=form,
    )


@portal_tenant_view(write_capability="manage", edit_only=True)
def token_revoke(request, page: PortalTenant, token_id: int):
    token = api_token_get(tenant=page.tenant, token_id=token_id)
    if token is None:
        return tenant_not_found(request)
    if request.method == "POST":
        already = token.revoked_at is not None
        services.token_revoke(token=token)
        if already:
            messages.info(request, f"Token “{token.name}” ({token.prefix}…) was already revoked.")
        else:
            messages.success(
                request,
                f"Revoked token “{token.name}” ({token.prefix}…). It no longer authenticates.",
            )
        return redirect("portal:tokens", slug=page.tenant.slug)
    token.status = _token_status(token)
    return render_portal(request, page, "portal/token_revoke.html", section="tokens", token=token)


# --- Account preferences ------------------------------------------------------------------------


@never_cache
@login_required
def preferences(request):
    """The signed-in user's own settings: staff choose the zone pages show times in."""
    user = request.user
    form = TimezoneForm(initial={"timezone": user.timezone})
    if request.method == "POST" and user.msp_role:
        form = TimezoneForm(request.POST)
        if form.is_valid():
            try:
                services.user_timezone_set(user=user, timezone=form.cleaned_data["timezone"])
            except ValidationError as error:
                form.add_service_error(error)
            else:
                messages.success(request, "Saved: times now show in your time zone.")
                return redirect("portal:preferences")
    return render(
        request,
        "portal/preferences.html",
        {"form": form, "organisation_zone": None if user.msp_role else viewer_timezone_name(user)},
    )
