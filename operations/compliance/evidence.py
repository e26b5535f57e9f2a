"""The compliance evidence pack: what an auditor asks for, for one framework and period, as a zip.

Findings, waivers with approvers, scores, the AI system register and the tenant's audit trail,
each as CSV and JSON, a ``manifest.sha256`` of those files and an HTML index. The rule: the
same data gives the same bytes (sorted entries, fixed zip timestamps, sorted JSON keys), so a
stored pack can be checksummed and regenerated.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import zipfile
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.utils import timezone

from msp.api.csv_download import csv_cell
from operations.compliance.exports import finding_controls
from operations.compliance.models import Finding, Framework, Score, Waiver
from operations.compliance.selectors import (
    checks_for_framework,
    findings_with_waiver_state,
)
from operations.inventory.selectors import AI_SYSTEM_REGISTER_FIELDS, ai_system_register
from tenants.scoping import tenant_scope
from tenants.selectors import audit_events_of_tenant_between, service_plan_timezone

#: The longest period one pack covers (an annual audit, with a leap day to spare).
EVIDENCE_MAX_DAYS = 366
#: The dates a period may name: every time zone's midnights around them stay representable.
EVIDENCE_FIRST_DAY = dt.date(1970, 1, 2)
EVIDENCE_LAST_DAY = dt.date(9998, 12, 31)
#: Every zip entry carries this time, so the bytes depend on the data only.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class _Table:
    stem: str
    title: str
    description: str
    fields: Sequence[str]
    rows: list[dict]


def evidence_period_check(*, period_start: dt.date, period_end: dt.date) -> None:
    """Refuse a period that ends before it starts, spans more than ``EVIDENCE_MAX_DAYS`` or
    names a day outside ``EVIDENCE_FIRST_DAY``..``EVIDENCE_LAST_DAY``."""
    for name, day in (("from", period_start), ("to", period_end)):
        if not EVIDENCE_FIRST_DAY <= day <= EVIDENCE_LAST_DAY:
            raise ValidationError(
                {name: [f"Give a day from {EVIDENCE_FIRST_DAY} to {EVIDENCE_LAST_DAY}."]}
            )
    if period_end < period_start:
        raise ValidationError({"to": ["The period ends before it starts."]})
    if (period_end - period_start).days + 1 > EVIDENCE_MAX_DAYS:
        raise ValidationError(
            {"to": [f"A pack covers at most {EVIDENCE_MAX_DAYS} days; split the period."]}
        )


def evidence_framework(framework_code: str) -> Framework:
    """The newest loaded version of ``framework_code``, or a ValidationError naming it."""
    framework = Framework.objects.filter(code=framework_code).order_by("-loaded_at", "-id").first()
    if framework is None:
        known = ", ".join(
            sorted(set(Framework.objects.values_list("code", flat=True))) or ["none loaded"]
        )
        raise ValidationError({"framework": [f"Unknown framework; one of: {known}."]})
    return framework


def _json_value(value):
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _csv_bytes(table: _Table) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(table.fields)
    for row in table.rows:
        writer.writerow([_csv_text(row[name]) for name in table.fields])
    return buffer.getvalue().encode("utf-8")


def _csv_text(value) -> str:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, default=str)
    return csv_cell(value)


def _json_bytes(table: _Table) -> bytes:
    rows = [{name: _json_value(row[name]) for name in table.fields} for row in table.rows]
    return (json.dumps(rows, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _person(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.username


def _findings(framework: Framework, start: dt.datetime, end: dt.datetime) -> _Table:
    findings = findings_with_waiver_state(
        Finding.objects.filter(
            check_code__in=checks_for_framework(framework.code),
            first_seen__lt=end,
            last_seen__gte=start,
        ),
        now=end,
    ).order_by("check_code", "subject_type", "subject_id", "id")
    fields = (
        "id",
        "check",
        "controls",
        "severity",
        "status",
        "waived_at_period_end",
        "subject_type",
        "subject_id",
        "subject",
        "detail",
        "first_seen",
        "failing_since",
        "resolved_at",
        "last_seen",
    )
    rows = [
        {
            "id": f.id,
            "check": f.check_code,
            "controls": " ".join(
                c for c in finding_controls(f).split() if c.startswith(f"{framework.code}:")
            ),
            "severity": f.severity,
            "status": f.status,
            "waived_at_period_end": bool(f.waived),
            "subject_type": f.subject_type,
            "subject_id": f.subject_id,
            "subject": f.subject_label,
            "detail": f.detail,
            "first_seen": f.first_seen,
            "failing_since": f.failing_since,
            "resolved_at": f.resolved_at,
            "last_seen": f.last_seen,
        }
        for f in findings
    ]
    return _Table(
        "findings",
        "Findings",
        "Every finding of the framework's checks seen during the period. Its status history as "
        "held: first seen, failing since, resolved at and last seen (per-change history is in "
        "the audit trail where a person changed something).",
        fields,
        rows,
    )


def _waivers(framework: Framework, start: dt.datetime, end: dt.datetime) -> _Table:
    waivers = (
        Waiver.objects.filter(
            check_code__in=checks_for_framework(framework.code),
            created_at__lt=end,
            expires_at__gte=start,
        )
        .select_related("created_by")
        .order_by("created_at", "id")
    )
    fields = (
        "id",
        "check",
        "subject_type",
        "subject_id",
        "reason",
        "approved_by",
        "recorded_by",
        "created_at",
        "updated_at",
        "expires_at",
    )
    rows = [
        {
            "id": w.id,
            "check": w.check_code,
            "subject_type": w.subject_type or "all",
            "subject_id": w.subject_id,
            "reason": w.reason,
            "approved_by": w.approved_by,
            "recorded_by": _person(w.created_by),
            "created_at": w.created_at,
            "updated_at": w.updated_at,
            "expires_at": w.expires_at,
        }
        for w in waivers
    ]
    return _Table(
        "waivers",
        "Waivers",
        "Waivers of the framework's checks in force at some time during the period, with who "
        "approved the risk and who recorded the waiver.",
        fields,
        rows,
    )


def _scores(framework: Framework, start: dt.datetime, end: dt.datetime) -> _Table:
    scores = (
        Score.objects.filter(
            framework__code=framework.code, computed_at__gte=start, computed_at__lt=end
        )
        .select_related("framework")
        .order_by("computed_at", "id")
    )
    fields = (
        "computed_at",
        "framework_version",
        "score",
        "pass_rate",
        "controls_total",
        "controls_assessed",
        "controls_passed",
        "controls_failed",
        "controls_not_assessed",
        "failed_controls",
    )
    rows = [
        {
            "computed_at": s.computed_at,
            "framework_version": s.framework.version,
            "score": s.score,
            "pass_rate": s.pass_rate,
            "controls_total": s.controls_total,
            "controls_assessed": s.controls_assessed,
            "controls_passed": s.controls_passed,
            "controls_failed": s.controls_failed,
            "controls_not_assessed": s.controls_not_assessed,
            "failed_controls": sorted(s.failed_controls or []),
        }
        for s in scores
    ]
    return _Table(
        "scores",
        "Scores",
        "The framework's score after each compliance scan of the period, oldest first.",
        fields,
        rows,
    )


def _register(tenant) -> _Table:
    return _Table(
        "ai-systems",
        "AI system register",
        "Every AI system of the tenant, as the register stands when the pack is generated.",
        AI_SYSTEM_REGISTER_FIELDS,
        ai_system_register(tenant=tenant),
    )


def _audit_trail(tenant, start: dt.datetime, end: dt.datetime) -> _Table:
    fields = (
        "id",
        "occurred_at",
        "actor",
        "source",
        "action",
        "object_type",
        "object_id",
        "object",
        "changes",
        "request_id",
        "source_address",
    )
    rows = [
        {
            "id": e.id,
            "occurred_at": e.occurred_at,
            "actor": e.actor_label,
            "source": e.source,
            "action": e.action,
            "object_type": e.object_type,
            "object_id": e.object_id,
            "object": e.object_repr,
            "changes": e.changes,
            "request_id": e.request_id,
            "source_address": e.source_address,
        }
        for e in audit_events_of_tenant_between(tenant=tenant, start=start, end=end)
    ]
    return _Table(
        "audit-trail",
        "Audit trail",
        "Every recorded write in the tenant during the period (who, what, when, from where).",
        fields,
        rows,
    )


def _zip_entry(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, whatever machine builds the pack
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def _period_bounds(
    period_start: dt.date, period_end: dt.date, zone: zoneinfo.ZoneInfo
) -> tuple[dt.datetime, dt.datetime]:
    """Midnight of the first day to midnight after the last, in the tenant's time zone."""
    start = dt.datetime.combine(period_start, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(period_end + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return start, end


def build_evidence_pack(
    *,
    tenant,
    framework_code: str,
    period_start: dt.date,
    period_end: dt.date,
    generated_at: dt.datetime | None = None,
) -> bytes:
    """The evidence pack of ``tenant`` for a framework (its newest loaded version) and the
    days ``period_start``..``period_end`` inclusive, in the tenant's time zone, as zip bytes.

    ``generated_at`` (default now) is printed in the index; the data files and the manifest
    depend on the data only, so the same data and ``generated_at`` give the same bytes.
    Raises ``ValidationError`` for an unknown framework or a bad period.
    """
    evidence_period_check(period_start=period_start, period_end=period_end)
    generated_at = (generated_at or timezone.now()).replace(microsecond=0)
    with tenant_scope(tenant.id):
        framework = evidence_framework(framework_code)
        zone = zoneinfo.ZoneInfo(service_plan_timezone(tenant=tenant))
        start, end = _period_bounds(period_start, period_end, zone)
        tables = [
            _findings(framework, start, end),
            _waivers(framework, start, end),
            _scores(framework, start, end),
            _register(tenant),
            _audit_trail(tenant, start, end),
        ]
    files: dict[str, bytes] = {}
    listed = []
    for table in tables:
        for suffix, render in (("csv", _csv_bytes), ("json", _json_bytes)):
            name = f"{table.stem}.{suffix}"
            files[name] = render(table)
            listed.append(
                {
                    "name": name,
                    "title": table.title,
                    "description": table.description,
                    "rows": len(table.rows),
                    "bytes": len(files[name]),
                    "sha256": hashlib.sha256(files[name]).hexdigest(),
                }
            )
    listed.sort(key=lambda entry: entry["name"])
    files["manifest.sha256"] = "".join(
        f"{entry['sha256']}  {entry['name']}\n" for entry in listed
    ).encode()
    files["index.html"] = _index_html(
        tenant=tenant,
        framework=framework,
        period_start=period_start,
        period_end=period_end,
        zone=zone,
        generated_at=generated_at,
        listed=listed,
        manifest_sha256=hashlib.sha256(files["manifest.sha256"]).hexdigest(),
    ).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(files):
            _zip_entry(archive, name, files[name])
    return buffer.getvalue()


def _index_html(
    *, tenant, framework, period_start, period_end, zone, generated_at, listed, manifest_sha256
) -> str:
    local = generated_at.astimezone(zone)
    return render_to_string(
        "compliance/evidence_index.html",
        {
            "tenant_name": tenant.name,
            "tenant_slug": tenant.slug,
            "framework": framework,
            "period_start": period_start.isoformat(),
            "period_end": period_end.isoformat(),
            "time_zone": str(zone),
            "generated_at": f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}",
            "files": listed,
            "manifest_sha256": manifest_sha256,
        },
    )


def evidence_pack_filename(*, tenant, framework_code: str, period_start, period_end) -> str:
    return f"{tenant.slug}-{framework_code}-evidence-{period_start}-{period_end}.zip"
