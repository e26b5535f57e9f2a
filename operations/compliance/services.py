"""Writes of the compliance app: scans (``compliance_run_for_tenant``) and waivers.

A scan runs every check of ``checks.py`` over one tenant's estate with a constant number of
queries (the estate snapshot, the existing findings, the active waivers, the framework
catalogue), upserts the findings in one statement, writes one score row per framework, and
opens an incident for each *new* failure of a check that calls for one (a prohibited
practice): a re-run updates findings and never opens the same incident twice.

Findings are stored for the subjects a check applies to (pass or fail). A subject outside a
check's scope (a minimal-risk system for a high-risk check) is counted as not applicable in
the scan's summary but gets no finding row, unless it had one: a subject that leaves a
check's scope, or the estate, keeps its finding, turned ``not_applicable`` with the reason
(and resolved if it was failing).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from operations.compliance.checks import Check, Estate, all_checks, get_check
from operations.compliance.models import (
    ComplianceScan,
    Control,
    Finding,
    FindingStatus,
    Framework,
    Score,
    SubjectType,
    Waiver,
)
from operations.events.services import events_record_many
from tenants.owned import owned_object_create, owned_object_delete, owned_object_update
from tenants.scoping import active_scope, scoped_atomic

# Plain strings: compared for every finding of every scan.
FAIL, PASS, NA = (
    str(s.value) for s in (FindingStatus.FAIL, FindingStatus.PASS, FindingStatus.NOT_APPLICABLE)
)
FINDING_KEY = ("tenant", "check_code", "subject_type", "subject_id")
FINDING_UPDATED = (
    "severity",
    "subject_label",
    "status",
    "detail",
    "last_seen",
    "failing_since",
    "resolved_at",
    "last_scan",
)


# --- The framework catalogue (global, read once per scan) ----------------------------------------


@dataclass(frozen=True)
class CatalogueFramework:
    framework_id: int
    code: str
    controls: tuple[str, ...]


_catalogue_cache: dict[tuple, list[CatalogueFramework]] = {}


def latest_frameworks() -> list[Framework]:
    """The newest loaded version of each framework."""
    latest: dict[str, Framework] = {}
    for framework in Framework.objects.order_by("code", "-loaded_at", "-id"):
        latest.setdefault(framework.code, framework)
    return list(latest.values())


def _catalogue() -> list[CatalogueFramework]:
    frameworks = latest_frameworks()
    key = tuple((f.pk, f.checksum) for f in frameworks)
    cached = _catalogue_cache.get(key)
    if cached is None:
        controls: dict[int, list[str]] = defaultdict(list)
        rows = Control.objects.filter(framework__in=[f.pk for f in frameworks]).order_by(
            "framework_id", "position"
        )
        for framework_id, code in rows.values_list("framework_id", "code"):
            controls[framework_id].append(code)
        cached = [CatalogueFramework(f.pk, f.code, tuple(controls[f.pk])) for f in frameworks]
        _catalogue_cache.clear()
        _catalogue_cache[key] = cached
    return cached


# --- Waivers in force ---------------------------------------------------------------------------


class ActiveWaivers:
    """The tenant's unexpired waivers, matched to (check, subject) in memory."""

    def __init__(self, waivers):
        self._by_check: dict[str, list[tuple[str, int | None]]] = defaultdict(list)
        for waiver in waivers:
            self._by_check[waiver["check_code"]].append(
                (waiver["subject_type"], waiver["subject_id"])
            )

    @classmethod
    def load(cls, *, tenant_id: int, now: dt.datetime) -> ActiveWaivers:
        return cls(
            Waiver.objects.filter(tenant_id=tenant_id, expires_at__gt=now).values(
                "check_code", "subject_type", "subject_id"
            )
        )

    def covers(self, check: Check, subject_id: int) -> bool:
        if not check.waivable:
            return False
        for subject_type, waived_id in self._by_check.get(check.code, ()):
            if waived_id is None or (
                waived_id == subject_id and subject_type in ("", check.subject_type)
            ):
                return True
        return False


# --- The scan -----------------------------------------------------------------------------------


def _scan_transaction(tenant_id: int):
    """The tenant's scoped transaction; inside a job's ``run.once`` that is already open, so
    no savepoint is added (two round trips fewer per tenant of a fleet scan)."""
    scope = active_scope()
    if scope is not None and scope.tenant_ids == {tenant_id} and connection.in_atomic_block:
        return transaction.atomic(savepoint=False)
    return scoped_atomic(tenant_id)


def compliance_run_for_tenant(
    *, tenant, job_run_id: int | None = None, now: dt.datetime | None = None
) -> dict:
    """Run every check over ``tenant``'s estate; upsert findings, write scores, open incidents.

    Idempotent per job run: with ``job_run_id``, a scan that already finished for that run is
    returned instead of run again (a redelivered job does not scan twice). Returns a
    JSON-ready summary.
    """
    now = now or timezone.now()
    with _scan_transaction(tenant.id):
        if job_run_id is not None:
            done = ComplianceScan.objects.filter(
                tenant_id=tenant.id, job_run_id=job_run_id, finished_at__isnull=False
            ).first()
            if done is not None:
                return scan_summary(done)
        catalogue = _catalogue()
        estate = Estate.load(tenant=tenant, now=now)
        waivers = ActiveWaivers.load(tenant_id=tenant.id, now=now)
        previous = _previous_findings(tenant.id)
        checks = all_checks()
        rows, counts, per_check, new_failures = _judge(checks, estate, waivers, previous, now=now)
        stale = _stale(previous, rows)
        # The scan row is written once, complete: the findings and scores point at it.
        scan = ComplianceScan.objects.create(
            tenant=tenant,
            job_run_id=job_run_id,
            started_at=now,
            finished_at=timezone.now(),
            checks_run=len(checks),
            passed=counts[PASS],
            failed=counts[FAIL],
            waived=counts["waived"],
            not_applicable=counts[NA],
            resolved=counts["resolved"] + sum(1 for prior in stale if prior.status == FAIL),
            new_failures=len(new_failures),
        )
        _write_findings(rows, previous, tenant_id=tenant.id, scan_id=scan.pk, now=now)
        _retire_stale(stale, tenant=tenant, scan=scan, now=now)
        events_record_many(tenant=tenant, events=_finding_events(rows, previous))
        scores = _scores(per_check, catalogue, tenant=tenant, scan=scan, now=now)
        opened = _open_incidents(new_failures, tenant=tenant, now=now)
    summary = scan_summary(scan, scores=scores, catalogue=catalogue)
    summary["incidents_opened"] = opened
    return summary


def _finding_event(row, status: str) -> dict:
    return {
        "check": row.check_code,
        "severity": row.severity,
        "subject_type": row.subject_type,
        "subject_id": row.subject_id,
        "subject_label": row.subject_label,
        "status": status,
        "detail": row.detail,
    }


def _finding_events(rows: list[FindingRow], previous: dict) -> list[tuple[str, dict]]:
    """``finding.opened`` for a subject that started failing, ``finding.resolved`` for one that
    stopped (or left the estate)."""
    events = []
    for row in rows:
        prior = previous.get(row.key)
        was_failing = prior is not None and prior.status == FAIL
        if row.status == FAIL and not was_failing:
            events.append(("finding.opened", _finding_event(row, FAIL)))
        elif row.status != FAIL and was_failing:
            events.append(("finding.resolved", _finding_event(row, row.status)))
    produced = {row.key for row in rows}
    for (check_code, subject_type, subject_id), prior in previous.items():
        if (check_code, subject_type, subject_id) not in produced and prior.status == FAIL:
            events.append(
                (
                    "finding.resolved",
                    {
                        "check": check_code,
                        "subject_type": subject_type,
                        "subject_id": subject_id,
                        "subject_label": prior.state[1],
                        "status": NA,
                        "detail": "The subject is no longer in the estate.",
                    },
                )
            )
    return events


class FindingRow(NamedTuple):
    """One finding as the scan writes it, in the column order of ``_UPSERT_SQL``'s unnest."""

    check_code: str
    severity: str
    subject_type: str
    subject_id: int
    subject_label: str
    status: str
    detail: str
    failing_since: dt.datetime | None
    resolved_at: dt.datetime | None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.check_code, self.subject_type, self.subject_id)

    def state(self) -> tuple:
        """What a re-run compares to decide whether the stored finding changed."""
        return (
            self.severity,
            self.subject_label,
            self.status,
            self.detail,
            self.failing_since,
            self.resolved_at,
        )


@dataclass(frozen=True)
class PreviousFinding:
    id: int
    status: str
    failing_since: dt.datetime | None
    resolved_at: dt.datetime | None
    state: tuple


def _previous_findings(tenant_id: int) -> dict[tuple, PreviousFinding]:
    rows = Finding.objects.filter(tenant_id=tenant_id).values_list(
        "check_code",
        "subject_type",
        "subject_id",
        "id",
        "severity",
        "subject_label",
        "status",
        "detail",
        "failing_since",
        "resolved_at",
    )
    return {
        (code, subject_type, subject_id): PreviousFinding(
            id=pk,
            status=status,
            failing_since=failing_since,
            resolved_at=resolved_at,
            state=(severity, label, status, detail, failing_since, resolved_at),
        )
        for (
            code,
            subject_type,
            subject_id,
            pk,
            severity,
            label,
            status,
            detail,
            failing_since,
            resolved_at,
        ) in rows
    }


def _judge(checks, estate, waivers, previous, *, now):
    rows: list[FindingRow] = []
    counts: dict[str, int] = defaultdict(int)
    # Per check, for the scores: (subjects judged, subjects failing unwaived).
    per_check: dict[str, tuple[int, int]] = {}
    new_failures: list[tuple[Check, object]] = []
    for check in checks:
        applicable = failing = 0
        for result in check.run(estate):
            prior = previous.get((check.code, check.subject_type, result.subject_id))
            prior_status = prior.status if prior else None
            failing_since = resolved_at = None
            if result.status == FAIL:
                failing_since = prior.failing_since if prior_status == FAIL else now
                if waivers.covers(check, result.subject_id):
                    counts["waived"] += 1
                else:
                    counts[FAIL] += 1
                    failing += 1
                if prior_status != FAIL:
                    new_failures.append((check, result))
            else:
                counts[result.status] += 1
                if prior_status == FAIL:
                    resolved_at = now
                    counts["resolved"] += 1
                elif prior is not None:
                    resolved_at = prior.resolved_at  # kept on later passing runs
            if result.status != NA:
                applicable += 1
            elif prior is None:
                # Outside the check's scope and never in it: counted, not stored. A subject
                # that leaves the scope keeps its finding, now not applicable, with the reason.
                continue
            rows.append(
                FindingRow(
                    check.code,
                    check.severity,
                    check.subject_type,
                    result.subject_id,
                    result.label[:300],
                    result.status,
                    result.detail,
                    failing_since,
                    resolved_at,
                )
            )
        per_check[check.code] = (applicable, failing)
    return rows, counts, per_check, new_failures


# One statement for every new or changed finding: arrays of columns, unnested, upserted on
# the (tenant, check, subject) key; first_seen is only ever written by the insert.
_UPSERT_SQL = """
INSERT INTO "compliance_finding" (tenant_id, "check", severity, subject_type, subject_id,
    subject_label, status, detail, failing_since, resolved_at, first_seen, last_seen, last_scan_id)
SELECT %s, u.*, %s, %s, %s FROM unnest(
    %s::varchar[], %s::varchar[], %s::varchar[], %s::bigint[], %s::varchar[], %s::varchar[],
    %s::text[], %s::timestamptz[], %s::timestamptz[]) AS u
ON CONFLICT (tenant_id, "check", subject_type, subject_id) DO UPDATE SET
    severity = EXCLUDED.severity, subject_label = EXCLUDED.subject_label,
    status = EXCLUDED.status, detail = EXCLUDED.detail, failing_since = EXCLUDED.failing_since,
    resolved_at = EXCLUDED.resolved_at, last_seen = EXCLUDED.last_seen,
    last_scan_id = EXCLUDED.last_scan_id
"""


def _write_findings(rows: list[FindingRow], previous: dict, *, tenant_id, scan_id, now) -> None:
    """Upsert new and changed findings in one statement; only stamp the unchanged ones."""
    changed, unchanged = [], []
    for row in rows:
        prior = previous.get(row.key)
        if prior is not None and prior.state == row.state():
            unchanged.append(prior.id)
        else:
            changed.append(row)
    if unchanged:
        Finding.objects.filter(tenant_id=tenant_id, pk__in=unchanged).update(
            last_seen=now, last_scan_id=scan_id
        )
    if not changed:
        return
    if connection.vendor == "postgresql":
        columns = list(zip(*changed, strict=True))
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT_SQL, [tenant_id, now, now, scan_id, *map(list, columns)])
        return
    Finding.objects.bulk_create(
        [
            Finding(
                tenant_id=tenant_id,
                **row._asdict(),
                first_seen=now,
                last_seen=now,
                last_scan_id=scan_id,
            )
            for row in changed
        ],
        update_conflicts=True,
        unique_fields=list(FINDING_KEY),
        update_fields=list(FINDING_UPDATED),
    )


def _stale(previous: dict, rows: list[FindingRow]) -> list[PreviousFinding]:
    """Stored findings this scan did not produce: their subject left the estate (or the
    check's scope for good), or their check is gone."""
    produced = {row.key for row in rows}
    return [prior for key, prior in previous.items() if key not in produced and prior.status != NA]


def _retire_stale(stale: list[PreviousFinding], *, tenant, scan, now) -> None:
    gone = "The subject is no longer in the estate."
    failing = [prior.id for prior in stale if prior.status == FAIL]
    others = [prior.id for prior in stale if prior.status != FAIL]
    findings = Finding.objects.filter(tenant_id=tenant.id)
    if failing:
        findings.filter(pk__in=failing).update(
            status=NA, detail=gone, resolved_at=now, last_seen=now, last_scan=scan
        )
    if others:
        findings.filter(pk__in=others).update(status=NA, detail=gone, last_seen=now, last_scan=scan)


@lru_cache(maxsize=1)
def _checks_by_control() -> dict[tuple[str, str], tuple[str, ...]]:
    """(framework code, control code) → the checks mapped to it (the registry is code)."""
    mapping: dict[tuple[str, str], list[str]] = defaultdict(list)
    for check in all_checks():
        for reference in check.controls:
            framework, control = reference.split(":", 1)
            mapping[(framework, control)].append(check.code)
    return {key: tuple(codes) for key, codes in mapping.items()}


def _percent(part: int, whole: int) -> Decimal | None:
    return (Decimal(part * 100) / whole).quantize(Decimal("0.1")) if whole else None


def _scores(per_check: dict, catalogue, *, tenant, scan, now) -> list[Score]:
    """One score per framework (see ``Score``): controls passing / controls assessed, and the
    share of judged subjects passing across the framework's checks (waived ones pass)."""
    checks_by_control = _checks_by_control()
    scores = []
    for framework in catalogue:
        assessed = passed = 0
        failed_controls = []
        framework_checks: set[str] = set()
        for control in framework.controls:
            mapped = checks_by_control.get((framework.code, control), ())
            framework_checks.update(mapped)
            states = [per_check[code] for code in mapped]
            if not any(judged for judged, _ in states):
                continue
            assessed += 1
            if any(failing for _, failing in states):
                failed_controls.append(control)
            else:
                passed += 1
        judged = sum(per_check[code][0] for code in framework_checks)
        failing = sum(per_check[code][1] for code in framework_checks)
        total = len(framework.controls)
        scores.append(
            Score(
                tenant=tenant,
                scan=scan,
                framework_id=framework.framework_id,
                computed_at=now,
                score=_percent(passed, assessed),
                pass_rate=_percent(judged - failing, judged),
                controls_total=total,
                controls_assessed=assessed,
                controls_passed=passed,
                controls_failed=len(failed_controls),
                controls_not_assessed=total - assessed,
                failed_controls=failed_controls,
            )
        )
    Score.objects.bulk_create(scores)
    return scores


def _open_incidents(new_failures, *, tenant, now) -> list[str]:
    from operations.incidents.models import IncidentCategory, IncidentSource, Severity
    from operations.incidents.services import incident_open_or_append

    opened = []
    for check, result in new_failures:
        if not check.opens_incident:
            continue
        incident, _created = incident_open_or_append(
            tenant=tenant,
            dedupe_key=f"compliance:{check.code}:{check.subject_type}:{result.subject_id}",
            title=f"Compliance: {check.title.lower()} — {result.label}"[:200],
            category=IncidentCategory.COMPLIANCE,
            severity=Severity.SEV1,
            description=f"{check.title}. {result.detail}",
            detail=f"Compliance check {check.code} failed: {result.detail}",
            source=IncidentSource.COMPLIANCE_CHECK,
            at=now,
        )
        opened.append(incident.reference)
    return opened


def scan_summary(scan: ComplianceScan, scores: list[Score] | None = None, catalogue=None) -> dict:
    if scores is None:
        scores = list(Score.objects.filter(scan=scan).select_related("framework"))
        by_code = {score.framework.code: score for score in scores}
    else:
        codes = {f.framework_id: f.code for f in catalogue or _catalogue()}
        by_code = {
            codes.get(score.framework_id, str(score.framework_id)): score for score in scores
        }
    return {
        "scan": scan.pk,
        "checks": scan.checks_run,
        "passed": scan.passed,
        "failed": scan.failed,
        "waived": scan.waived,
        "not_applicable": scan.not_applicable,
        "new_failures": scan.new_failures,
        "resolved": scan.resolved,
        "scores": {
            code: (float(score.score) if score.score is not None else None)
            for code, score in sorted(by_code.items())
        },
    }


# --- Waivers ------------------------------------------------------------------------------------


def _subject_exists(tenant, subject_type: str, subject_id: int) -> bool:
    from operations.incidents.models import Incident
    from operations.inventory.models import AISystem, Dataset, Deployment

    model = {
        SubjectType.AI_SYSTEM: AISystem,
        SubjectType.DEPLOYMENT: Deployment,
        SubjectType.DATASET: Dataset,
        SubjectType.INCIDENT: Incident,
    }[subject_type]
    return model.objects.filter(tenant=tenant, pk=subject_id).exists()


def waiver_validate(*, tenant, fields: dict, instance: Waiver | None = None) -> dict:
    """The rules of a waiver: a known, waivable check; a subject of that check's type in this
    tenant (or none: every subject); an expiry in the future."""
    merged = {
        "check_code": getattr(instance, "check_code", None),
        "subject_type": getattr(instance, "subject_type", ""),
        "subject_id": getattr(instance, "subject_id", None),
        "expires_at": getattr(instance, "expires_at", None),
        **fields,
    }
    errors: dict[str, list[str]] = {}
    check = get_check(merged["check_code"] or "")
    if check is None:
        errors["check"] = [f"Unknown check '{merged['check_code']}'."]
    elif not check.waivable:
        errors["check"] = [f"{check.code} cannot be waived: {check.title.lower()}."]
    subject_type, subject_id = merged["subject_type"] or "", merged["subject_id"]
    if check is not None and subject_id is not None:
        subject_type = subject_type or check.subject_type
        if subject_type != check.subject_type:
            errors["subject_type"] = [f"{check.code} judges {check.subject_type} subjects."]
        elif not _subject_exists(tenant, subject_type, subject_id):
            errors["subject_id"] = [f"That {subject_type.replace('_', ' ')} does not exist."]
    elif subject_id is None and subject_type:
        errors["subject_id"] = ["Name the subject, or leave the subject type empty."]
    expires_at = merged["expires_at"]
    if "expires_at" in fields and expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = ["A waiver must expire in the future."]
    if errors:
        raise ValidationError(errors)
    if "subject_id" in fields or "subject_type" in fields:
        fields = {**fields, "subject_type": subject_type if subject_id is not None else ""}
    return fields


@transaction.atomic
def waiver_create(*, tenant, created_by=None, **fields) -> Waiver:
    """Accept a check's failure (for one subject, or all) until ``expires_at``; audited."""
    fields = waiver_validate(tenant=tenant, fields=fields)
    return owned_object_create(
        tenant=tenant, model=Waiver, data={**fields, "created_by": created_by}
    )


@transaction.atomic
def waiver_update(*, tenant, waiver: Waiver, **fields) -> Waiver:
    fields = waiver_validate(tenant=tenant, fields=fields, instance=waiver)
    return owned_object_update(tenant=tenant, instance=waiver, data=fields)


def waiver_delete(*, tenant, waiver: Waiver) -> None:
    owned_object_delete(tenant=tenant, instance=waiver)
