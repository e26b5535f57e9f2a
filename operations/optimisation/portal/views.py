"""Client portal page for recommendations: what could be saved or needs capacity, the evidence,
and accept / implement / dismiss for those who may write in the tenant.

Every page goes through ``portal_tenant_view`` (tenant from the URL, the same 404 for foreign
and missing, writes refused to roles that may not write and to MSP staff). Actions call the same
audited services as the API.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from msp.api.csv_download import csv_streaming_response
from operations.optimisation import services
from operations.optimisation.exports import (
    RECOMMENDATION_CSV_COLUMNS,
    recommendations_csv_filename,
)
from operations.optimisation.models import RECOMMENDATION_ACTIONS
from operations.optimisation.portal.evidence import recommendation_evidence
from operations.optimisation.portal.forms import RecommendationActForm
from operations.optimisation.selectors import (
    RECOMMENDATION_STATES,
    recommendation_get,
    recommendation_list_in_state,
    recommendation_state_counts,
    recommendation_summary,
)
from tenants.portal.access import PortalTenant, portal_tenant_view, render_portal, tenant_not_found

PAGE_SIZE = 25
_DONE = {"accept": "Accepted", "implement": "Marked as implemented", "dismiss": "Dismissed"}


@portal_tenant_view(write_capability="write")
@require_GET
def recommendation_list(request, page: PortalTenant):
    state = request.GET.get("state", "open")
    if state not in RECOMMENDATION_STATES:
        state = "open"
    rows = recommendation_list_in_state(tenant=page.tenant, state=state)
    counts = recommendation_state_counts(tenant=page.tenant)
    listing = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    for rec in listing:
        rec.actions = _actions(rec)
    return render_portal(
        request,
        page,
        "optimisation/recommendations.html",
        section="recommendations",
        listing=listing,
        state=state,
        states=[(key, label, counts[key]) for key, (label, _cond) in RECOMMENDATION_STATES.items()],
        summary=recommendation_summary(tenant=page.tenant),
    )


@portal_tenant_view()
@require_GET
def recommendation_list_csv(request, page: PortalTenant):
    """Every recommendation of the list's state (not one page) as CSV, streamed."""
    state = request.GET.get("state", "open")
    if state not in RECOMMENDATION_STATES:
        state = "open"
    return csv_streaming_response(
        filename=recommendations_csv_filename(page.tenant),
        columns=RECOMMENDATION_CSV_COLUMNS,
        rows=recommendation_list_in_state(tenant=page.tenant, state=state),
        scope=page.stream_scope,
    )


@portal_tenant_view(write_capability="write")
@require_GET
def recommendation_detail(request, page: PortalTenant, pk: int):
    rec = recommendation_get(tenant=page.tenant, pk=pk)
    if rec is None:
        return tenant_not_found(request)
    rec.actions = _actions(rec)
    return render_portal(
        request,
        page,
        "optimisation/recommendation.html",
        section="recommendations",
        rec=rec,
        evidence=recommendation_evidence(rec, tenant=page.tenant),
        evidence_text=json.dumps(rec.evidence, indent=2, ensure_ascii=False),
        state="open",
    )


def _actions(rec) -> list[str]:
    return [
        name for name, (sources, _target) in RECOMMENDATION_ACTIONS.items() if rec.status in sources
    ]


@portal_tenant_view(write_capability="write")
@require_POST
def recommendation_act(request, page: PortalTenant, pk: int, action: str):
    rec = recommendation_get(tenant=page.tenant, pk=pk)
    if rec is None or action not in RECOMMENDATION_ACTIONS:
        return tenant_not_found(request)
    form = RecommendationActForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(" ".join(errors) for errors in form.errors.values()))
    else:
        extra = {"reason": form.cleaned_data["reason"]} if action == "dismiss" else {}
        try:
            getattr(services, f"recommendation_{action}")(
                tenant=page.tenant, recommendation=rec, user=request.user, **extra
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"{_DONE[action]}: {rec.title}")
    state = form.cleaned_data.get("state") or "open"
    target = reverse("portal_recommendations:list", kwargs={"slug": page.tenant.slug})
    return redirect(
        f"{target}?{urlencode({'state': state if state in RECOMMENDATION_STATES else 'open'})}"
    )
