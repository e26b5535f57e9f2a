"""Job kinds of reports: ``monthly_service_report`` and ``quarterly_review``, each for one
tenant and one period (``parameters.period``; default the last complete one), and
``compliance_evidence_pack`` for one framework and days (``framework``, ``from``, ``to``).

The documents are built and stored with progress on the run; the row (and its ``report.ready``
event) is recorded inside ``run.once("record", …)``, so a redelivered run records one version.
"""

from __future__ import annotations

import datetime as dt
import re

from rest_framework import serializers

from msp.api.serializers import StrictSerializer
from operations.compliance.api.serializers import EvidencePackQuerySerializer
from operations.jobs.registry import job_kind
from operations.reports.models import ReportKind
from operations.reports.services import (
    EVIDENCE_PACK_JOB_KIND,
    evidence_pack_build,
    evidence_pack_record,
    period_for_run,
    report_build,
    report_record,
)


class MonthParameters(StrictSerializer):
    period = serializers.RegexField(
        r"^\d{4}-(0[1-9]|1[0-2])$",
        required=False,
        default="",
        allow_blank=True,
        help_text="The month, YYYY-MM (default: last month in the tenant's time zone).",
    )


class QuarterParameters(StrictSerializer):
    period = serializers.RegexField(
        re.compile(r"^\d{4}-Q[1-4]$"),
        required=False,
        default="",
        allow_blank=True,
        help_text="The quarter, YYYY-Qn (default: last quarter in the tenant's time zone).",
    )


def _generate(run, parameters: dict, kind: str) -> dict:
    tenant = run.tenant
    period = period_for_run(tenant=tenant, kind=kind, label=parameters.get("period") or "")
    run.log(f"{ReportKind(kind).label} for {period.title}.")
    built = report_build(tenant=tenant, kind=kind, period=period, progress=run.progress)
    if built.pdf_missing_reason:
        run.log(built.pdf_missing_reason, level="warning")
    label = run.model.triggered_by_label

    def record() -> dict:
        report = report_record(built=built, job_run_id=run.id, requested_by_label=label)
        return {
            "report": report.pk,
            "version": report.version,
            "period": report.period_label,
            "status": report.status,
            "pdf": bool(report.pdf_file.name),
        }

    summary = run.once("record", record)
    run.log(f"Recorded version {summary['version']} ({summary['status']}).")
    return summary


@job_kind(
    "monthly_service_report",
    title="Monthly service report",
    description=(
        "Builds the tenant's monthly service report (HTML and PDF) for a month and publishes it "
        "as a new version."
    ),
    parameters=MonthParameters,
    trigger_capability="staff_write",
)
def monthly_service_report(run, parameters: dict) -> dict:
    return _generate(run, parameters, ReportKind.MONTHLY)


@job_kind(
    "quarterly_review",
    title="Quarterly business review",
    description=(
        "Builds a draft quarterly business review for a quarter; MSP staff edit its summary and "
        "publish it."
    ),
    parameters=QuarterParameters,
    trigger_capability="staff_write",
)
def quarterly_review(run, parameters: dict) -> dict:
    return _generate(run, parameters, ReportKind.QUARTERLY)


class EvidencePackParameters(EvidencePackQuerySerializer):
    """The same parameters, checked the same way, as the synchronous evidence-pack download."""


@job_kind(
    EVIDENCE_PACK_JOB_KIND,
    title="Compliance evidence pack",
    description=(
        "Builds the tenant's evidence pack (findings, waivers, scores, AI system register and "
        "audit trail) for a framework and period, stores the zip and publishes it."
    ),
    parameters=EvidencePackParameters,
    # Tenant admins ask through POST …/reports/ (as for a month's report).
    trigger_capability="staff_write",
)
def compliance_evidence_pack(run, parameters: dict) -> dict:
    code = parameters["framework"]
    start = dt.date.fromisoformat(parameters["from"])
    end = dt.date.fromisoformat(parameters["to"])
    run.log(f"Evidence pack for {code}, {start} to {end}.")
    built = evidence_pack_build(
        tenant=run.tenant,
        framework_code=code,
        period_start=start,
        period_end=end,
        progress=run.progress,
    )
    label = run.model.triggered_by_label

    def record() -> dict:
        report = evidence_pack_record(built=built, job_run_id=run.id, requested_by_label=label)
        return {
            "report": report.pk,
            "version": report.version,
            "framework": report.framework,
            "period": report.period_label,
            "zip_sha256": report.zip_sha256,
        }

    summary = run.once("record", record)
    run.log(f"Recorded version {summary['version']} ({summary['zip_sha256'][:12]}…).")
    return summary
