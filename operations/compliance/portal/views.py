"""The client's view of its compliance posture: the latest score of each framework with its
recent trend, how many findings fail, are waived or pass, the failing findings by severity
(waived ones marked, with the waiver's expiry), and the waivers in force. ``?framework=<code>``
narrows the page to one framework.

Read-only for everyone: scans, waivers and their changes stay in the API and the MSP console.
The page goes through ``portal_tenant_view`` (tenant from the URL, the same 404 for foreign and
missing) and runs a fixed number of queries whatever the number of findings, scores or waivers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from msp.api.csv_download import csv_streaming_response
from operations.compliance.checks import get_check
from operations.compliance.evidence import build_evidence_pack, evidence_pack_filename
from operations.compliance.exports import FINDING_CSV_COLUMNS, findings_csv_filename
from operations.compliance.models import CheckSeverity, Finding, Score
from operations.compliance.selectors import (
    checks_for_framework,
    finding_counts,
    findings_failing_by_severity,
    findings_for,
    findings_with_waiver_state,
    score_history_for,
    waivers_in_force,
)
from operations.compliance.services import latest_frameworks
from tenants.portal.access import PortalTenant, portal_tenant_view, render_portal
from tenants.portal.charts import Chart, format_time, sparkline

#: Scores drawn in each framework's trend (one per scan, newest last).
TREND_POINTS = 12
#: Failing findings listed on the page; the API pages through the rest.
FINDINGS_SHOWN = 300


@dataclass(frozen=True)
class Trend:
    """A framework's score history as a sparkline, with the figures it draws."""

    chart: Chart | None  # None when fewer than two scores could be drawn
    values: tuple[Decimal, ...]  # the scores drawn, oldest first
    change: Decimal | None  # latest minus the oldest drawn; None with fewer than two

    @property
    def direction(self) -> str:
        if self.change is None or self.change == 0:
            return "steady"
        return "up" if self.change > 0 else "down"

    @property
    def magnitude(self) -> Decimal | None:
        return None if self.change is None else abs(self.change)


def score_trend(scores) -> Trend:
    """``scores`` oldest first; those without a score (no control assessed) are skipped."""
    scored = [score for score in scores if score.score is not None]
    values = tuple(score.score for score in scored)
    if len(values) < 2:
        return Trend(chart=None, values=values, change=None)
    zone = timezone.get_current_timezone()
    chart = sparkline(
        values,
        label=f"Score over the last {len(values)} scans, from {values[0]} % to {values[-1]} %",
        labels=[_scanned(score, zone) for score in scored],
    )
    return Trend(chart=chart, values=values, change=values[-1] - values[0])


def _scanned(score: Score, zone) -> str:
    return format_time(score.computed_at, zone) if score.computed_at else "Scan"


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

    codes = checks_for_framework(chosen.code) if chosen else None

    history = score_history_for(tenant=tenant, frameworks=shown_frameworks, points=TREND_POINTS)
    failing = findings_failing_by_severity(
        tenant=tenant, check_codes=codes, now=now, limit=FINDINGS_SHOWN
    )
    for finding in failing:
        _describe(finding, framework=chosen)
    waivers = waivers_in_force(tenant=tenant, check_codes=codes, now=now)
    for waiver in waivers:
        check = get_check(waiver.check_code)
        waiver.check_title = check.title if check else waiver.check_code

    return render_portal(
        request,
        page,
        "compliance/overview.html",
        section="compliance",
        evidence=_evidence_defaults(page, chosen or (frameworks[0] if frameworks else None)),
        frameworks=frameworks,
        chosen=chosen,
        scores=_framework_scores(shown_frameworks, history),
        counts=finding_counts(findings_for(tenant=tenant, check_codes=codes), now=now),
        groups=_by_severity(failing),
        failing_shown=len(failing),
        findings_limit=FINDINGS_SHOWN,
        waivers=waivers,
    )


def _evidence_defaults(page: PortalTenant, framework) -> dict | None:
    """The evidence-pack form's defaults (last calendar month), for those who may download.

    Who may write here (tenant admins) asks the job engine for a stored, checksummed pack
    (the reports page's ``evidence-pack-request``); who only reads (MSP staff in the portal,
    a suspended tenant's admins) downloads one built on the spot."""
    if not page.access.can_read_audit or framework is None:
        return None
    last_day = timezone.localdate().replace(day=1) - dt.timedelta(days=1)
    return {
        "framework": framework.code,
        "from": last_day.replace(day=1),
        "to": last_day,
        "stored": replace(page, write_capability="manage").can_edit,
    }


@portal_tenant_view()
@require_GET
def compliance_findings_csv(request, page: PortalTenant):
    """Every finding (of ``?framework=`` if given) as CSV, streamed, in the API's columns."""
    framework = next(
        (f for f in latest_frameworks() if f.code == request.GET.get("framework")), None
    )
    codes = checks_for_framework(framework.code) if framework else None
    return csv_streaming_response(
        filename=findings_csv_filename(page.tenant),
        columns=FINDING_CSV_COLUMNS,
        rows=findings_with_waiver_state(findings_for(tenant=page.tenant, check_codes=codes)),
        scope=page.stream_scope,
    )


@portal_tenant_view()
@require_GET
def compliance_evidence_pack(request, page: PortalTenant):
    """The evidence pack (``operations.compliance.evidence``) for the form's framework and
    period, as a zip: tenant admins and MSP staff, as through the API."""
    if not page.access.can_read_audit:
        return render_portal(
            request,
            page,
            "portal/forbidden.html",
            section="compliance",
            status=403,
            reason="Only tenant admins and MSP staff download evidence packs.",
        )
    form = EvidencePackForm(request.GET)
    try:
        if not form.is_valid():
            raise ValidationError(form.errors.as_text())
        period = {"period_start": form.cleaned_data["from"], "period_end": form.cleaned_data["to"]}
        code = form.cleaned_data["framework"]
        pack = build_evidence_pack(tenant=page.tenant, framework_code=code, **period)
    except ValidationError as refused:
        messages.error(request, f"No evidence pack: {' '.join(refused.messages)}")
        return redirect(reverse("portal_compliance:overview", args=[page.tenant.slug]))
    response = HttpResponse(pack, content_type="application/zip")
    filename = evidence_pack_filename(tenant=page.tenant, framework_code=code, **period)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class EvidencePackForm(forms.Form):
    framework = forms.SlugField(max_length=50)
    to = forms.DateField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword: declared here rather than as a class attribute.
        self.fields["from"] = forms.DateField()


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
