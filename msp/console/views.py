"""Staff pages that draw on every context at once: the tenant 360 page.

The project may import every context; each is read through its selectors, inside the scope
``portal_tenant_view`` holds. Clients get the same 404 as for a tenant they cannot see.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from operations.compliance import selectors as compliance
from operations.incidents import selectors as incidents
from operations.inventory import selectors as inventory
from operations.jobs import selectors as jobs
from operations.optimisation import selectors as optimisation
from operations.readiness.fleet import readiness_latest_for
from operations.telemetry import selectors as telemetry
from tenants import selectors as tenants
from tenants.portal import charts
from tenants.portal.access import PortalTenant, portal_tenant_view, render_portal, tenant_not_found

#: How many rows each list of the page shows; each links to the full list.
LIST_LIMIT = 8
UTILISATION_DAYS = 7


def _utilisation_chart(tenant) -> charts.Chart:
    end = timezone.now()
    hours = telemetry.telemetry_gpu_utilisation_by_hour(
        tenant=tenant, start=end - dt.timedelta(days=UTILISATION_DAYS), end=end
    )
    return charts.line_chart(
        title=f"GPU utilisation, last {UTILISATION_DAYS} days",
        series=[
            charts.Series("Mean", [(hour, mean) for hour, mean, _peak in hours]),
            charts.Series("Peak", [(hour, peak) for hour, _mean, peak in hours]),
        ],
        y_title="GPU utilisation",
        unit="%",
        y_range=(0, 100),
        gap=dt.timedelta(hours=2),
        height=260,
    )


@portal_tenant_view()
def tenant_360(request, page: PortalTenant):
    """Everything about one client on one page, for MSP staff, each part linking to act."""
    if not page.is_staff:
        return tenant_not_found(request)
    tenant = page.tenant
    steps = tenants.onboarding_step_list(tenant=tenant)
    required = [step for step in steps if step.required]
    open_incidents = list(incidents.incident_portal_list(tenant=tenant, state="open")[:LIST_LIMIT])
    open_count = incidents.incident_portal_state_counts(tenant=tenant)["open"]
    savings = optimisation.recommendation_summary(tenant=tenant)
    return render_portal(
        request,
        page,
        "console/tenant_360.html",
        section="360",
        plan=tenants.service_plan_get(tenant=tenant),
        steps_required=len(required),
        steps_done=sum(1 for step in required if step.done),
        steps_open=[step for step in required if not step.done][:LIST_LIMIT],
        open_incidents=open_incidents,
        open_incident_count=open_count,
        scores=compliance.compliance_latest_scores(tenant=tenant),
        failing_findings=compliance.findings_failing_by_severity(tenant=tenant, limit=LIST_LIMIT),
        readiness=readiness_latest_for(tenant=tenant),
        estate=inventory.estate_counts(tenant=tenant),
        utilisation=_utilisation_chart(tenant),
        recommendations=list(
            optimisation.recommendation_list_in_state(tenant=tenant, state="open")[:LIST_LIMIT]
        ),
        open_saving=savings["open_monthly_saving"],
        open_recommendations=savings["by_status"].get("open", 0),
        job_runs=jobs.job_runs_recent(tenant=tenant, limit=LIST_LIMIT),
        audit_events=tenants.audit_events_recent(tenant=tenant, limit=LIST_LIMIT),
        members=list(tenants.membership_list(tenant=tenant)),
        account_team=tenants.account_team_for(tenant=tenant),
    )
