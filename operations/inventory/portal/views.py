"""The client's view of its AI estate: sites, compute with recent GPU utilisation, the register
of AI systems, deployments and datasets. Read-only: the MSP keeps the estate (admin, API, bulk
import); the portal shows it back to the client.

Every page goes through ``portal_tenant_view`` (tenant from the URL, same 404 for foreign and
missing). Each table is one query, whatever the size of the estate.
"""

from __future__ import annotations

from django.views.decorators.http import require_GET

from operations.inventory.models import AISystem, ComputeResource, Stage
from operations.inventory.portal.sparklines import HEIGHT, WIDTH, gpu_utilisation_sparklines
from operations.inventory.selectors import (
    ai_systems_with_usage,
    compute_with_references,
    inventory_querysets,
)
from tenants.portal.access import PortalTenant, portal_tenant_view, render_portal

SPARKLINE_HOURS = 72


@portal_tenant_view()
@require_GET
def estate_overview(request, page: PortalTenant):
    tenant = page.tenant
    tables = inventory_querysets(tenant=tenant)
    tables["compute"] = compute_with_references(
        ComputeResource.objects.filter(tenant=tenant)
    ).order_by("kind", "hostname")
    tables["ai_systems"] = ai_systems_with_usage(AISystem.objects.filter(tenant=tenant)).order_by(
        "name"
    )
    tables = {name: list(queryset) for name, queryset in tables.items()}
    sparklines = gpu_utilisation_sparklines(
        tenant=tenant,
        compute_ids=[compute.id for compute in tables["compute"] if compute.gpu_count],
        hours=SPARKLINE_HOURS,
    )
    for compute in tables["compute"]:
        compute.utilisation = sparklines.get(compute.id)
    return render_portal(
        request,
        page,
        "inventory/estate.html",
        section="estate",
        sparkline_hours=SPARKLINE_HOURS,
        sparkline_width=WIDTH,
        sparkline_height=HEIGHT,
        stages=_stage_counts(tables["ai_systems"]),
        **tables,
    )


def _stage_counts(systems: list[AISystem]) -> list[tuple[str, str, int]]:
    """(value, label, count) for each lifecycle stage, in lifecycle order."""
    return [
        (stage.value, stage.label, sum(1 for system in systems if system.stage == stage))
        for stage in Stage
    ]
