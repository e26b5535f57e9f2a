"""Reads for optimisation: the recommendation list and the savings summary of a tenant."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from operations.optimisation.conf import HOURS_PER_MONTH as HOURS_PER_MONTH  # re-exported
from operations.optimisation.models import (
    Recommendation,
    RecommendationKind,
    RecommendationStatus,
    SubjectType,
)
from tenants.fleet import FleetCell

CENT = Decimal("0.01")


def recommendation_summary(*, tenant) -> dict:
    """Open recommendations per kind (count and total monthly saving, per currency), plus the
    count per status. Two queries."""
    open_rows = (
        Recommendation.objects.filter(tenant=tenant, status=RecommendationStatus.OPEN)
        .order_by()
        .values("kind", "currency")
        .annotate(count=Count("id"), saving=Sum("estimated_monthly_saving"))
    )
    by_kind = {
        kind: {"kind": kind, "label": label, "open": 0, "monthly_saving": {}}
        for kind, label in RecommendationKind.choices
    }
    totals: dict[str, Decimal] = {}
    for row in open_rows:
        entry = by_kind[row["kind"]]
        entry["open"] += row["count"]
        saving = (row["saving"] or Decimal("0")).quantize(CENT)
        if not saving:
            continue  # forecasts and spend drops save nothing: no "0.00" line per currency
        entry["monthly_saving"][row["currency"]] = str(saving)
        totals[row["currency"]] = totals.get(row["currency"], Decimal("0")) + saving
    statuses = dict(
        Recommendation.objects.filter(tenant=tenant)
        .order_by()
        .values_list("status")
        .annotate(count=Count("id"))
    )
    return {
        "open_monthly_saving": {currency: str(total) for currency, total in totals.items()},
        "by_kind": list(by_kind.values()),
        "by_status": {status: statuses.get(status, 0) for status in RecommendationStatus.values},
    }


def recommendation_savings(*, tenant) -> dict[str, dict[str, Decimal]]:
    """{status: {currency: monthly saving}} of the open, accepted and implemented (realised)
    recommendations. One query."""
    statuses = (
        RecommendationStatus.OPEN,
        RecommendationStatus.ACCEPTED,
        RecommendationStatus.IMPLEMENTED,
    )
    rows = (
        Recommendation.objects.filter(tenant=tenant, status__in=statuses)
        .order_by()
        .values_list("status", "currency")
        .annotate(saving=Sum("estimated_monthly_saving"), count=Count("id"))
    )
    savings: dict[str, dict[str, Decimal]] = {status: {} for status in statuses}
    for status, currency, saving, _count in rows:
        savings[status][currency] = (saving or Decimal("0")).quantize(CENT)
    return savings


#: The states a recommendation list is narrowed to (the portal's tabs): key → (label, condition).
RECOMMENDATION_STATES = {
    "open": ("Open", Q(status=RecommendationStatus.OPEN)),
    "accepted": ("Accepted", Q(status=RecommendationStatus.ACCEPTED)),
    "implemented": ("Implemented", Q(status=RecommendationStatus.IMPLEMENTED)),
    "dismissed": ("Dismissed", Q(status=RecommendationStatus.DISMISSED)),
    "superseded": ("Cleared", Q(status=RecommendationStatus.SUPERSEDED)),
    "all": ("All", Q()),
}


def recommendation_list_in_state(*, tenant, state: str) -> QuerySet[Recommendation]:
    """The tenant's recommendations in ``state`` (a ``RECOMMENDATION_STATES`` key), largest
    saving first."""
    condition = RECOMMENDATION_STATES[state][1]
    return (
        Recommendation.objects.filter(tenant=tenant)
        .filter(condition)
        .order_by("-estimated_monthly_saving", "id")
    )


def recommendation_state_counts(*, tenant) -> dict[str, int]:
    """{state: count} for every ``RECOMMENDATION_STATES`` key, in one query."""
    return (
        Recommendation.objects.filter(tenant=tenant)
        .order_by()
        .aggregate(
            **{
                key: Count("id", filter=cond)
                for key, (_label, cond) in RECOMMENDATION_STATES.items()
            }
        )
    )


def recommendations_about(*, tenant, subject_type: str, subject_id: int) -> list[Recommendation]:
    """The tenant's open and accepted recommendations about one subject, largest saving first.
    One query."""
    return list(
        Recommendation.objects.filter(
            tenant=tenant,
            subject_type=subject_type,
            subject_id=subject_id,
            status__in=(RecommendationStatus.OPEN, RecommendationStatus.ACCEPTED),
        ).order_by("-estimated_monthly_saving", "id")
    )


def recommendations_about_node(
    *, tenant, compute_id: int, gpu_ids: list[int]
) -> list[Recommendation]:
    """The tenant's open and accepted recommendations about a node or any of its GPUs
    (``gpu_ids``), largest saving first. One query."""
    subjects = Q(subject_type=SubjectType.COMPUTE, subject_id=compute_id)
    if gpu_ids:
        subjects |= Q(subject_type=SubjectType.GPU, subject_id__in=list(gpu_ids))
    return list(
        Recommendation.objects.filter(tenant=tenant)
        .filter(subjects, status__in=(RecommendationStatus.OPEN, RecommendationStatus.ACCEPTED))
        .order_by("-estimated_monthly_saving", "id")
    )


def recommendation_get(*, tenant, pk: int) -> Recommendation | None:
    return Recommendation.objects.filter(tenant=tenant).filter(pk=pk).first()


def recommendations_open_rows(*, tenant) -> list[dict]:
    """The tenant's open recommendations as rows (largest saving first): kind, subject, title,
    monthly saving and currency, and the evidence of capacity forecasts (the days until full).
    One query."""
    rows = list(
        Recommendation.objects.filter(tenant=tenant, status=RecommendationStatus.OPEN)
        .order_by("-estimated_monthly_saving", "id")
        .values(
            "id",
            "kind",
            "subject_type",
            "subject_id",
            "subject_label",
            "title",
            "estimated_monthly_saving",
            "currency",
            "evidence",
        )
    )
    for row in rows:
        if row["kind"] != RecommendationKind.CAPACITY_FORECAST:
            row.pop("evidence")
    return rows


# --- Readiness gates (pilot → production): reads for many compute resources at once -------------

#: Recommendations still standing: nobody has implemented, dismissed or outgrown them.
UNRESOLVED_STATUSES = (RecommendationStatus.OPEN, RecommendationStatus.ACCEPTED)


def capacity_forecasts_for(*, compute_ids: list[int]) -> dict[int, list[dict]]:
    """{compute id: its unresolved capacity-forecast recommendations}. One query."""
    rows = (
        Recommendation.objects.filter(
            kind=RecommendationKind.CAPACITY_FORECAST,
            subject_type=SubjectType.COMPUTE,
            subject_id__in=compute_ids,
            status__in=UNRESOLVED_STATUSES,
        )
        .order_by("subject_id", "id")
        .values("id", "subject_id", "subject_label", "title", "status")
    )
    found: dict[int, list[dict]] = {}
    for row in rows:
        found.setdefault(row["subject_id"], []).append(row)
    return found


# --- The fleet dashboard (every tenant id of the page at once, in its scope) -------------------


def fleet_open_savings(tenant_ids) -> dict[int, FleetCell]:
    """Each tenant's open recommendations and their estimated monthly saving. One query."""
    rows = (
        Recommendation.objects.unscoped()
        .filter(tenant_id__in=tenant_ids, status=RecommendationStatus.OPEN)
        .order_by()
        .values("tenant_id")
        .annotate(count=Count("id"), saving=Sum("estimated_monthly_saving"))
    )
    cells = {}
    for row in rows:
        saving = row["saving"] or Decimal("0")
        cells[row["tenant_id"]] = FleetCell(
            text=f"{saving:,.0f}",
            value=saving,
            # Money left on the table needs a look, but never outranks an outage.
            attention=min(int(saving // 5000), 5),
            link="recommendations/",
            detail=f"{row['count']} open",
        )
    return cells


def recommendation_savings_in_window(*, tenant, start, end) -> dict[str, dict]:
    """What happened to recommendations in ``[start, end)``: ``recommended`` (first seen),
    ``accepted`` and ``realised`` (implemented), each ``{"count", "monthly_saving":
    {currency: amount}}``. One query."""
    moments = {"recommended": "first_seen", "accepted": "accepted_at", "realised": "implemented_at"}
    aggregates = {}
    for name, field in moments.items():
        inside = Q(**{f"{field}__gte": start, f"{field}__lt": end})
        aggregates[f"{name}_count"] = Count("id", filter=inside)
        aggregates[f"{name}_saving"] = Sum("estimated_monthly_saving", filter=inside)
    rows = (
        Recommendation.objects.filter(tenant=tenant)
        .order_by()
        .values("currency")
        .annotate(**aggregates)
    )
    result = {name: {"count": 0, "monthly_saving": {}} for name in moments}
    for row in rows:
        for name in moments:
            result[name]["count"] += row[f"{name}_count"]
            saving = row[f"{name}_saving"]
            if saving:
                result[name]["monthly_saving"][row["currency"]] = str(saving.quantize(CENT))
    return result


def recommendations_open_top(*, tenant, limit: int) -> list[dict]:
    """The open recommendations with the largest estimated saving, as rows. One query."""
    return list(
        Recommendation.objects.filter(tenant=tenant, status=RecommendationStatus.OPEN)
        .order_by("-estimated_monthly_saving", "id")
        .values("id", "kind", "title", "subject_label", "estimated_monthly_saving", "currency")[
            :limit
        ]
    )
