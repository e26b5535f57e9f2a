"""Reads of the compliance app: findings with their waiver state, scores, the check catalogue.

Whether a failing finding is *waived* is decided when it is read (an unexpired waiver of its
check for its subject, or for every subject), so an expired waiver stops applying at once,
not at the next scan. Call inside the tenant's scope.
"""

from __future__ import annotations

from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.utils import timezone

from operations.compliance.checks import all_checks
from operations.compliance.models import Finding, FindingStatus, Score, Waiver


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
    covering = active_waivers(
        Waiver.objects.filter(tenant_id=OuterRef("tenant_id"), check_code=OuterRef("check_code")),
        now=now,
    ).filter(
        Q(subject_id__isnull=True)
        | (
            Q(subject_id=OuterRef("subject_id"))
            & (Q(subject_type="") | Q(subject_type=OuterRef("subject_type")))
        )
    )
    waived = (
        Q(status=FindingStatus.FAIL)
        & ~Q(check_code__in=non_waivable_checks())
        & Q(Exists(covering))
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
