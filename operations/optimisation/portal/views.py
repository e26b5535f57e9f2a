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
from django.db.models import Count, Q
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from operations.optimisation import services
from operations.optimisation.models import (
    RECOMMENDATION_ACTIONS,
    Recommendation,
    RecommendationStatus,
)
from operations.optimisation.selectors import recommendation_summary
from tenants.portal.access import PortalTenant, portal_tenant_view, render_portal, tenant_not_found

PAGE_SIZE = 25
_STATES = {
    "open": ("Open", Q(status=RecommendationStatus.OPEN)),
    "accepted": ("Accepted", Q(status=RecommendationStatus.ACCEPTED)),
    "implemented": ("Implemented", Q(status=RecommendationStatus.IMPLEMENTED)),
    "dismissed": ("Dismissed", Q(status=RecommendationStatus.DISMISSED)),
    "superseded": ("Cleared", Q(status=RecommendationStatus.SUPERSEDED)),
    "all": ("All", Q()),
}
_DONE = {"accept": "Accepted", "implement": "Marked as implemented", "dismiss": "Dismissed"}


def _recommendations(page: PortalTenant):
    return Recommendation.objects.filter(tenant=page.tenant)


@portal_tenant_view(write_capability="write")
@require_GET
def recommendation_list(request, page: PortalTenant):
    state = request.GET.get("state", "open")
    if state not in _STATES:
        state = "open"
    rows = (
        _recommendations(page).filter(_STATES[state][1]).order_by("-estimated_monthly_saving", "id")
    )
    counts = (
        _recommendations(page)
        .order_by()
        .aggregate(**{key: Count("id", filter=cond) for key, (_label, cond) in _STATES.items()})
    )
    listing = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    for rec in listing:
        rec.evidence_text = json.dumps(rec.evidence, indent=2, ensure_ascii=False)
        rec.actions = [
            name
            for name, (sources, _target) in RECOMMENDATION_ACTIONS.items()
            if rec.status in sources
        ]
    return render_portal(
        request,
        page,
        "optimisation/recommendations.html",
        section="recommendations",
        listing=listing,
        state=state,
        states=[(key, label, counts[key]) for key, (label, _cond) in _STATES.items()],
        summary=recommendation_summary(tenant=page.tenant),
    )


@portal_tenant_view(write_capability="write")
@require_POST
def recommendation_act(request, page: PortalTenant, pk: int, action: str):
    rec = _recommendations(page).filter(pk=pk).first()
    if rec is None or action not in RECOMMENDATION_ACTIONS:
        return tenant_not_found(request)
    extra = {"reason": request.POST.get("reason", "")[:2000]} if action == "dismiss" else {}
    try:
        getattr(services, f"recommendation_{action}")(
            tenant=page.tenant, recommendation=rec, user=request.user, **extra
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{_DONE[action]}: {rec.title}")
    state = request.POST.get("state", "open")
    target = reverse("portal_recommendations:list", kwargs={"slug": page.tenant.slug})
    return redirect(f"{target}?{urlencode({'state': state if state in _STATES else 'open'})}")
