"""The client's view of its compliance posture: the latest score of each framework with its
recent trend, how many findings fail, are waived or pass, the failing findings by severity
(waived ones marked, with the waiver's expiry), and the waivers in force. ``?framework=<code>``
narrows the page to one framework.

Read-only for everyone: scans, waivers and their changes stay in the API and the MSP console.
The page goes through ``portal_tenant_view`` (tenant from the URL, the same 404 for foreign and
missing) and runs a fixed number of queries whatever the number of findings, scores or waivers.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone
from django.views.decorators.http import require_GET

from operations.compliance.checks import get_check
from operations.compliance.models import CheckSeverity, Finding, FindingStatus, Score, Waiver
from operations.compliance.portal.trends import HEIGHT, WIDTH, score_trend
from operations.compliance.selectors import (
    active_waivers,
    checks_for_framework,
    finding_counts,
    findings_with_waiver_expiry,
    score_history,
    waivers_with_subject_label,
)
from operations.compliance.services import latest_frameworks
from tenants.portal.access import PortalTenant, portal_tenant_view, render_portal

#: Scores drawn in each framework's trend (one per scan, newest last).
TREND_POINTS = 12
#: Failing findings listed on the page; the API pages through the rest.
FINDINGS_SHOWN = 300

_SEVERITY_ORDER = Case(
    *(When(severity=value, then=Value(rank)) for rank, value in enumerate(CheckSeverity.values)),
    default=Value(len(CheckSeverity.values)),
    output_field=IntegerField(),
)


@dataclass(frozen=True)
class SeverityGroup:
    value: str
    label: str
    findings: list[Finding]


@portal_tenant_view()
@require_GET
def compliance_overview(request, page: PortalTenant):
    tenant = page.tenant
    now = timezone.now()
    frameworks = latest_frameworks()
    chosen = next((f for f in frameworks if f.code == request.GET.get("framework")), None)
    shown_frameworks = [chosen] if chosen else frameworks

    findings = Finding.objects.filter(tenant=tenant)
    waivers = Waiver.objects.filter(tenant=tenant)
    if chosen:
        codes = checks_for_framework(chosen.code)
        findings = findings.filter(check_code__in=codes)
        waivers = waivers.filter(check_code__in=codes)

    history = score_history(
        Score.objects.filter(tenant=tenant, framework__in=shown_frameworks), points=TREND_POINTS
    )
    failing = list(
        findings_with_waiver_expiry(findings.filter(status=FindingStatus.FAIL), now=now)
        .annotate(severity_rank=_SEVERITY_ORDER)
        .order_by("severity_rank", "waived", "check_code", "subject_label", "subject_id")[
            :FINDINGS_SHOWN
        ]
    )
    for finding in failing:
        _describe(finding, framework=chosen)
    waivers_in_force = list(
        waivers_with_subject_label(active_waivers(waivers, now=now)).order_by("expires_at", "id")
    )
    for waiver in waivers_in_force:
        check = get_check(waiver.check_code)
        waiver.check_title = check.title if check else waiver.check_code

    return render_portal(
        request,
        page,
        "compliance/overview.html",
        section="compliance",
        frameworks=frameworks,
        chosen=chosen,
        scores=_framework_scores(shown_frameworks, history),
        counts=finding_counts(findings, now=now),
        groups=_by_severity(failing),
        failing_shown=len(failing),
        findings_limit=FINDINGS_SHOWN,
        waivers=waivers_in_force,
        trend_width=WIDTH,
        trend_height=HEIGHT,
    )


def _describe(finding: Finding, *, framework) -> None:
    """The check's title and the controls it maps to (of the chosen framework, if any)."""
    check = get_check(finding.check_code)
    finding.check_title = check.title if check else finding.check_code
    controls = check.controls if check else ()
    if framework is not None:
        prefix = f"{framework.code}:"
        controls = tuple(reference for reference in controls if reference.startswith(prefix))
    finding.controls = controls


def _framework_scores(frameworks, history: list[Score]) -> list[dict]:
    by_framework: dict[int, list[Score]] = {}
    for score in history:
        by_framework.setdefault(score.framework_id, []).append(score)
    rows = []
    for framework in frameworks:
        scores = by_framework.get(framework.pk, [])  # newest first
        rows.append(
            {
                "framework": framework,
                "latest": scores[0] if scores else None,
                "trend": score_trend(list(reversed(scores))) if scores else None,
            }
        )
    return rows


def _by_severity(failing: list[Finding]) -> list[SeverityGroup]:
    return [
        SeverityGroup(
            value=severity.value,
            label=severity.label,
            findings=[finding for finding in failing if finding.severity == severity],
        )
        for severity in CheckSeverity
        if any(finding.severity == severity for finding in failing)
    ]
