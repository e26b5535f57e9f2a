"""Reads of the compliance app: findings with their waiver state, scores, the check catalogue.

Whether a failing finding is *waived* is decided when it is read (an unexpired waiver of its
check for its subject, or for every subject), so an expired waiver stops applying at once,
not at the next scan. Call inside the tenant's scope.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.functions import Cast, RowNumber
from django.db.models.lookups import Exact
from django.utils import timezone

from operations.compliance.checks import all_checks, approved_countries
from operations.compliance.models import (
    CheckSeverity,
    Finding,
    FindingStatus,
    Framework,
    Score,
    SubjectType,
    Waiver,
)
from tenants.fleet import FleetCell


def non_waivable_checks() -> list[str]:
    return [check.code for check in all_checks() if not check.waivable]


def checks_for_framework(framework_code: str) -> list[str]:
    prefix = f"{framework_code}:"
    return [
        check.code
        for check in all_checks()
        if any(reference.startswith(prefix) for reference in check.controls)
    ]


def checks_for_control(reference: str) -> list[str]:
    """Checks mapped to ``"<framework>:<control>"``."""
    return [check.code for check in all_checks() if reference in check.controls]


def active_waivers(queryset: QuerySet[Waiver], *, now=None) -> QuerySet[Waiver]:
    return queryset.filter(expires_at__gt=now or timezone.now())


def findings_with_waiver_state(queryset: QuerySet[Finding], *, now=None) -> QuerySet[Finding]:
    """Annotate ``waived``: failing, of a waivable check, and covered by an unexpired waiver."""
    waived = (
        Q(status=FindingStatus.FAIL)
        & ~Q(check_code__in=non_waivable_checks())
        & Q(Exists(_covering_waivers(now=now)))
    )
    return queryset.annotate(waived=ExpressionWrapper(waived, output_field=BooleanField()))


def findings_with_effective_status(queryset: QuerySet[Finding], status: str) -> QuerySet[Finding]:
    """``status`` as a reader means it: ``fail`` is an unwaived failure, ``waived`` a waived one."""
    if status == "waived":
        return queryset.filter(waived=True)
    if status == FindingStatus.FAIL:
        return queryset.filter(status=FindingStatus.FAIL, waived=False)
    return queryset.filter(status=status)


def scores_latest(queryset: QuerySet[Score]) -> QuerySet[Score]:
    """The newest score of each framework version (one query)."""
    newest = (
        Score.objects.filter(tenant_id=OuterRef("tenant_id"), framework_id=OuterRef("framework_id"))
        .order_by("-computed_at", "-id")
        .values("id")[:1]
    )

    return queryset.filter(id=Subquery(newest)).select_related("framework")


# --- Reads for the client portal's compliance page ----------------------------------------------


def _covering_waivers(*, now=None) -> QuerySet[Waiver]:
    """Unexpired waivers covering the outer finding: of its check, for every subject or its own."""
    return active_waivers(
        Waiver.objects.filter(tenant_id=OuterRef("tenant_id"), check_code=OuterRef("check_code")),
        now=now,
    ).filter(
        Q(subject_id__isnull=True)
        | (
            Q(subject_id=OuterRef("subject_id"))
            & (Q(subject_type="") | Q(subject_type=OuterRef("subject_type")))
        )
    )


def findings_with_waiver_expiry(queryset: QuerySet[Finding], *, now=None) -> QuerySet[Finding]:
    """``findings_with_waiver_state`` plus ``waiver_expires_at``: when the longest-running
    unexpired waiver covering the finding runs out (None when none covers it). One query."""
    expiry = _covering_waivers(now=now).order_by("-expires_at").values("expires_at")[:1]
    return findings_with_waiver_state(queryset, now=now).annotate(
        waiver_expires_at=Subquery(expiry)
    )


def finding_counts(queryset: QuerySet[Finding], *, now=None) -> dict[str, int]:
    """Findings failing (unwaived), waived and passing, in one grouped query."""
    counts = {"failing": 0, "waived": 0, "passing": 0}
    rows = (
        findings_with_waiver_state(queryset, now=now)
        .order_by()
        .values("status", "waived")
        .annotate(count=Count("id"))
    )
    for row in rows:
        if row["waived"]:
            counts["waived"] += row["count"]
        elif row["status"] == FindingStatus.FAIL:
            counts["failing"] += row["count"]
        elif row["status"] == FindingStatus.PASS:
            counts["passing"] += row["count"]
    return counts


def waivers_with_subject_label(queryset: QuerySet[Waiver]) -> QuerySet[Waiver]:
    """Annotate ``subject_label``: the label of the waived subject as the last scan saw it
    (empty for a waiver of every subject, or a subject never scanned). One query."""
    label = (
        Finding.objects.filter(
            tenant_id=OuterRef("tenant_id"),
            check_code=OuterRef("check_code"),
            subject_id=OuterRef("subject_id"),
        )
        # A waiver with no subject type covers the subject id in any type.
        .filter(Q(subject_type=OuterRef("subject_type")) | Q(Exact(OuterRef("subject_type"), "")))
        .order_by("-last_seen")
        .values("subject_label")[:1]
    )
    return queryset.annotate(subject_label=Subquery(label))


def score_history(queryset: QuerySet[Score], *, points: int) -> list[Score]:
    """The newest ``points`` scores of each framework version, newest first, in one query
    (a window function ranks each framework's history)."""
    ranked = queryset.annotate(
        history_rank=Window(
            RowNumber(),
            partition_by=[F("framework_id")],
            order_by=[F("computed_at").desc(), F("id").desc()],
        )
    )
    return list(
        ranked.filter(history_rank__lte=points)
        .select_related("framework")
        .order_by("framework__code", "framework_id", "history_rank")
    )


# --- One tenant's posture, as the portal shows it ----------------------------------------------

_SEVERITY_ORDER = Case(
    *(When(severity=value, then=Value(rank)) for rank, value in enumerate(CheckSeverity.values)),
    default=Value(len(CheckSeverity.values)),
    output_field=IntegerField(),
)


def findings_for(*, tenant, check_codes: list[str] | None = None) -> QuerySet[Finding]:
    """The tenant's findings, of ``check_codes`` only when given."""
    findings = Finding.objects.filter(tenant=tenant)
    return findings if check_codes is None else findings.filter(check_code__in=check_codes)


def findings_failing_by_severity(
    *, tenant, check_codes: list[str] | None = None, now=None, limit: int
) -> list[Finding]:
    """The first ``limit`` failing findings, most severe first and unwaived before waived, with
    ``waived`` and ``waiver_expires_at``. One query."""
    failing = findings_for(tenant=tenant, check_codes=check_codes).filter(status=FindingStatus.FAIL)
    return list(
        findings_with_waiver_expiry(failing, now=now)
        .annotate(severity_rank=_SEVERITY_ORDER)
        .order_by("severity_rank", "waived", "check_code", "subject_label", "subject_id")[:limit]
    )


def findings_failing_at_by_severity(*, tenant, at, limit: int) -> list[Finding]:
    """``findings_failing_by_severity`` as things stood at ``at`` (a past month's report): the
    findings whose latest failing spell had begun by then and had not yet ended, waivers as
    they were then. Only the latest spell of each finding is kept, so one that failed, passed
    and fails again since is judged by its current spell. One query."""
    failing_then = (
        findings_for(tenant=tenant)
        .filter(failing_since__lte=at)
        .filter(Q(status=FindingStatus.FAIL) | Q(resolved_at__gt=at))
    )
    return list(
        findings_with_waiver_expiry(failing_then, now=at)
        .annotate(severity_rank=_SEVERITY_ORDER)
        .order_by("severity_rank", "waived", "check_code", "subject_label", "subject_id")[:limit]
    )


def waivers_in_force(*, tenant, check_codes: list[str] | None = None, now=None) -> list[Waiver]:
    """The tenant's unexpired waivers, soonest to expire first, with ``subject_label``."""
    waivers = Waiver.objects.filter(tenant=tenant)
    if check_codes is not None:
        waivers = waivers.filter(check_code__in=check_codes)
    return list(
        waivers_with_subject_label(active_waivers(waivers, now=now)).order_by("expires_at", "id")
    )


def score_history_for(*, tenant, frameworks, points: int) -> list[Score]:
    """``score_history`` of the tenant's scores of ``frameworks``."""
    return score_history(
        Score.objects.filter(tenant=tenant, framework__in=frameworks), points=points
    )


def score_history_of_tenant(*, tenant, points: int) -> list[Score]:
    """``score_history`` of all the tenant's scores: the newest ``points`` of each framework
    version, with its framework. One query."""
    return score_history(Score.objects.filter(tenant=tenant), points=points)


def framework_choices() -> list[tuple[str, str]]:
    """(code, title) of every framework loaded, its newest version's title."""
    titles: dict[str, str] = {}
    for code, title in Framework.objects.order_by("code", "-loaded_at").values_list(
        "code", "title"
    ):
        titles.setdefault(code, title)
    return list(titles.items())


# --- Figures for the readiness signals ----------------------------------------------------------


def compliance_latest_scores(*, tenant) -> list[dict]:
    """The newest score of each framework for the tenant: code, title, score (None when nothing
    could be assessed) and when it was computed. One query."""
    scores = scores_latest(Score.objects.filter(tenant=tenant)).order_by("framework__code")
    return [
        {
            "code": score.framework.code,
            "title": score.framework.title,
            "score": None if score.score is None else float(score.score),
            "computed_at": score.computed_at,
        }
        for score in scores
    ]


def critical_findings_failing(*, tenant, now=None, limit: int) -> tuple[int, list[Finding]]:
    """How many critical findings fail unwaived, and the first ``limit`` of them. Two queries."""
    critical = findings_for(tenant=tenant).filter(severity=CheckSeverity.CRITICAL)
    failing = findings_with_effective_status(
        findings_with_waiver_state(critical, now=now), FindingStatus.FAIL
    )
    first = list(failing.order_by("check_code", "subject_label", "subject_id")[:limit])
    count = len(first) if len(first) < limit else failing.count()
    return count, first


def compliance_readiness_figures(*, tenant, now=None, limit: int) -> dict:
    """What readiness reads of compliance: ``latest_scores`` (as ``compliance_latest_scores``)
    and ``critical_failing`` (``critical_findings_failing``'s count and first ``limit``; None
    when the tenant has no score yet). One query unless a critical finding fails: the waiver
    state is read only then."""
    newest = (
        Score.objects.filter(tenant_id=OuterRef("tenant_id"), framework_id=OuterRef("framework_id"))
        .order_by("-computed_at", "-id")
        .values("id")[:1]
    )
    # Failing before waivers: none of them means no unwaived one either.
    critical = Finding.objects.filter(
        tenant_id=OuterRef("tenant_id"),
        severity=CheckSeverity.CRITICAL,
        status=FindingStatus.FAIL,
    )
    rows = list(
        Score.objects.filter(tenant=tenant, id=Subquery(newest))
        .annotate(any_critical=Exists(critical))
        .order_by("framework__code")
        .values("framework__code", "framework__title", "score", "computed_at", "any_critical")
    )
    scores = [
        {
            "code": row["framework__code"],
            "title": row["framework__title"],
            "score": None if row["score"] is None else float(row["score"]),
            "computed_at": row["computed_at"],
        }
        for row in rows
    ]
    critical_failing = None
    if rows:
        critical_failing = (
            critical_findings_failing(tenant=tenant, now=now, limit=limit)
            if rows[0]["any_critical"]
            else (0, [])
        )
    return {"latest_scores": scores, "critical_failing": critical_failing}


def residency_countries_allowed(*, tenant) -> frozenset[str] | None:
    """The country codes the tenant's data residency allows (None: no residency policy), as
    the residency check judges them."""
    return approved_countries(tenant.data_residency)


# --- Readiness gates (pilot → production): reads for many subjects at once ---------------------


def failing_findings_of_severity_for(
    *, ai_system_ids: list[int], deployment_ids: list[int], severity: str, now=None
) -> dict[tuple[str, int], list[dict]]:
    """{("ai_system" | "deployment", id): [its unwaived failing findings of ``severity``]}.
    One query."""
    subjects = Q(subject_type=SubjectType.AI_SYSTEM, subject_id__in=ai_system_ids) | Q(
        subject_type=SubjectType.DEPLOYMENT, subject_id__in=deployment_ids
    )
    failing = findings_with_effective_status(
        findings_with_waiver_state(Finding.objects.filter(subjects, severity=severity), now=now),
        FindingStatus.FAIL,
    )
    found: dict[tuple[str, int], list[dict]] = {}
    for row in failing.order_by("check_code", "id").values(
        "id", "check_code", "subject_type", "subject_id", "subject_label", "detail"
    ):
        found.setdefault((row["subject_type"], row["subject_id"]), []).append(row)
    return found


# --- The fleet dashboard (every tenant id of the page at once, in its scope) -------------------


#: How far back the fleet dashboard looks for a framework's newest and previous score.
TREND_HISTORY_DAYS = 90


def fleet_compliance_scores(tenant_ids) -> dict[int, FleetCell]:
    """Each tenant's lowest framework by its newest score, with the change since that
    framework's previous score. One query (a window ranks each framework's history)."""
    ranked = (
        Score.objects.unscoped()
        .filter(
            tenant_id__in=tenant_ids,
            score__isnull=False,
            # Bounds the window to recent history: the trend is against the previous scan.
            computed_at__gte=timezone.now() - dt.timedelta(days=TREND_HISTORY_DAYS),
        )
        .annotate(
            history_rank=Window(
                RowNumber(),
                partition_by=[F("tenant_id"), F("framework_id")],
                order_by=[F("computed_at").desc(), F("id").desc()],
            )
        )
        .filter(history_rank__lte=2)
        .order_by()
        # As a float: a Decimal per row costs more than the query at a thousand tenants.
        .annotate(score_value=Cast("score", FloatField()))
        .values_list("tenant_id", "framework_id", "framework__code", "score_value", "history_rank")
    )
    latest: dict[tuple[int, int], tuple[str, float]] = {}
    previous: dict[tuple[int, int], float] = {}
    for tenant_id, framework_id, code, score, rank in ranked:
        if rank == 1:
            latest[(tenant_id, framework_id)] = (code, float(score))
        else:
            previous[(tenant_id, framework_id)] = float(score)
    lowest: dict[int, tuple[float, str, float | None]] = {}
    for (tenant_id, framework_id), (code, score) in latest.items():
        before = previous.get((tenant_id, framework_id))
        trend = None if before is None else score - before
        if tenant_id not in lowest or (score, code) < lowest[tenant_id][:2]:
            lowest[tenant_id] = (score, code, trend)
    cells = {}
    for tenant_id, (score, code, trend) in lowest.items():
        falling = trend is not None and trend <= -5
        attention = (15 if score < 50 else 8 if score < 70 else 3 if score < 85 else 0) + (
            5 if falling else 0
        )
        arrow = "" if not trend else (f" ▲{trend:.0f}" if trend > 0 else f" ▼{-trend:.0f}")
        cells[tenant_id] = FleetCell(
            text=f"{score:.0f}{arrow}",
            value=score,
            attention=attention,
            tone="bad" if score < 50 else "warn" if score < 70 or falling else "ok",
            link="compliance/",
            detail=code,
        )
    return cells


def fleet_compliance_total(cells: dict[int, FleetCell]) -> FleetCell:
    """The fleet's mean of each tenant's lowest score."""
    values = [cell.value for cell in cells.values() if cell.value is not None]
    if not values:
        return FleetCell(text="—")
    mean = sum(values) / len(values)
    return FleetCell(
        text=f"{mean:.0f}",
        value=mean,
        attention=sum(cell.attention for cell in cells.values()),
        detail=f"mean of {len(values)}",
    )


def score_history_until(*, tenant, end, points: int) -> list[Score]:
    """``score_history`` of the tenant's scores computed before ``end`` (a report's period):
    the newest ``points`` of each framework version, newest first. One query."""
    return score_history(Score.objects.filter(tenant=tenant, computed_at__lt=end), points=points)
