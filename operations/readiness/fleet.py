"""Readiness as the MSP's staff pages read it: the newest score of each tenant."""

from __future__ import annotations

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from operations.readiness.models import ReadinessScore
from tenants.fleet import FleetCell

#: Attention a tenant's readiness level adds on the fleet dashboard (levels 3–5 add none).
LEVEL_ATTENTION = {1: 4, 2: 2}


def fleet_readiness_levels(tenant_ids) -> dict[int, FleetCell]:
    """Each tenant's newest readiness score: level and overall. One query."""
    rows = (
        ReadinessScore.objects.unscoped()
        .filter(tenant_id__in=tenant_ids)
        .annotate(
            newest_rank=Window(
                RowNumber(),
                partition_by=[F("tenant_id")],
                order_by=[F("computed_at").desc(), F("id").desc()],
            )
        )
        .filter(newest_rank=1)
        .order_by()
        .values_list("tenant_id", "level", "overall")
    )
    return {
        tenant_id: FleetCell(
            text=f"L{level}",
            value=level,
            attention=LEVEL_ATTENTION.get(level, 0),
            tone="warn" if level <= 1 else "ok" if level >= 4 else "",
            link="360/#readiness",
            detail=f"overall {overall:.0f}",
        )
        for tenant_id, level, overall in rows
    }


def fleet_readiness_total(cells: dict[int, FleetCell]) -> FleetCell:
    """How many tenants have a score, and the mean level."""
    levels = [cell.value for cell in cells.values()]
    if not levels:
        return FleetCell(text="—")
    return FleetCell(
        text=f"L{sum(levels) / len(levels):.1f}",
        value=sum(levels) / len(levels),
        attention=sum(cell.attention for cell in cells.values()),
        detail=f"mean of {len(levels)}",
    )


def readiness_latest_for(*, tenant) -> ReadinessScore | None:
    """The tenant's newest readiness score with its framework, if it has one."""
    return (
        ReadinessScore.objects.filter(tenant=tenant)
        .select_related("framework")
        .order_by("-computed_at", "-id")
        .first()
    )
