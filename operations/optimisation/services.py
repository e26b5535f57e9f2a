"""Writes for optimisation: the scan that refreshes a tenant's recommendations, and the
lifecycle a person moves them along.

Refresh rules (``optimisation_run_for_tenant``), per (kind, subject):

- found and new: an **open** recommendation;
- found again: title, evidence, saving and ``last_seen`` are refreshed in place (never a second
  row); ``resolved_at`` is cleared. Status stays, except:
  - **superseded** (it was open and its condition had cleared) reopens as open;
  - **implemented** whose condition had cleared since (``resolved_at`` set) reopens as open: the
    problem came back. While the condition still holds right after implementing, it stays
    implemented (the window still holds the old data);
  - **dismissed** reopens only on a material change: the saving grew by ``reopen_change``
    (default +50 %) over the saving when it was dismissed, or a capacity forecast's days to
    saturation fell to ``reopen_change`` of what they were. Otherwise its evidence is refreshed
    and it stays dismissed;
- not found: an **open** one becomes **superseded** (auto-closed) with ``resolved_at``; an
  accepted, implemented or dismissed one keeps its status and gets ``resolved_at``.

The scan holds a per-tenant lock (PostgreSQL advisory lock) for its transaction, so two scans of
one tenant run one after the other; the unique (tenant, kind, subject) key is the last wall.
Creations and status changes are audited; a refresh of evidence alone is not (the job run's
summary and log record it).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from operations.events.services import events_record_many
from operations.optimisation.conf import Thresholds, default_thresholds
from operations.optimisation.detectors import Finding, detect_all, scan_inputs
from operations.optimisation.models import (
    RECOMMENDATION_ACTIONS,
    Recommendation,
    RecommendationKind,
    RecommendationStatus,
)
from tenants.audit import (
    audit_changes,
    audit_record,
    audit_snapshot,
    audited_update,
    current_actor,
)
from tenants.models import AuditAction
from tenants.scoping import active_scope, tenant_advisory_lock

# The advisory lock that serialises scans of one tenant.
_SCAN_LOCK = "optimisation.scan"
_REFRESHED_FIELDS = [
    "title",
    "subject_label",
    "subject_id",
    "subject_type",
    "evidence",
    "estimated_monthly_saving",
    "currency",
    "status",
    "last_seen",
    "refreshed_at",
    "resolved_at",
    "updated_at",
]


class TransitionRefused(ValidationError):
    """The recommendation's status does not allow the action (the API answers 409)."""


def _require_scope_of(tenant) -> None:
    scope = active_scope()
    if scope is None or scope.tenant_ids != {tenant.id}:
        raise RuntimeError("optimisation services run inside the tenant's own scope")


def _materially_changed(rec: Recommendation, finding: Finding, thresholds: Thresholds) -> bool:
    before = rec.dismissed_evidence or {}
    old_saving = Decimal(str(before.get("estimated_monthly_saving", "0")))
    if finding.saving > old_saving * Decimal(str(1 + thresholds.reopen_change)):
        return True
    if rec.kind == RecommendationKind.CAPACITY_FORECAST:
        old_days = (before.get("evidence") or {}).get("days_until_saturation")
        new_days = finding.evidence.get("days_until_saturation")
        if old_days is not None and new_days is not None:
            return new_days < old_days and new_days <= old_days * thresholds.reopen_change
    return False


def _apply(rec: Recommendation, finding: Finding, now: dt.datetime) -> None:
    rec.title = finding.title[:300]
    rec.subject_type = finding.subject_type
    rec.subject_id = finding.subject_id
    rec.subject_label = finding.subject_label[:200]
    rec.evidence = finding.evidence
    rec.estimated_monthly_saving = finding.saving
    rec.currency = finding.currency
    rec.last_seen = now
    rec.refreshed_at = now
    rec.updated_at = now


def _audit_status(tenant, rec: Recommendation, old: str, why: str) -> None:
    audit_record(
        tenant=tenant,
        action=AuditAction.UPDATE,
        instance=rec,
        changes={"status": [old, rec.status], "reason": [None, why]},
    )


def _recommendation_event(rec: Recommendation) -> dict:
    saving = rec.estimated_monthly_saving
    return {
        "id": rec.pk,
        "kind": rec.kind,
        "title": rec.title,
        "subject_label": rec.subject_label,
        "estimated_monthly_saving": None if saving is None else str(saving),
    }


def optimisation_run_for_tenant(
    *, tenant, as_of: dt.datetime | None = None, thresholds: Thresholds | None = None
) -> dict:
    """Detect every kind for ``tenant`` and upsert its recommendations (rules above).

    Runs inside the tenant's scope, in one transaction; returns a JSON-safe summary.
    """
    _require_scope_of(tenant)
    as_of = as_of or timezone.now()
    thresholds = thresholds or default_thresholds()
    now = timezone.now()
    summary = {"found": 0, "created": 0, "refreshed": 0, "reopened": 0, "superseded": 0}
    with transaction.atomic():
        tenant_advisory_lock(tenant.id, _SCAN_LOCK)
        inputs = scan_inputs(tenant=tenant, as_of=as_of, thresholds=thresholds)
        findings = {finding.key: finding for finding in detect_all(inputs, thresholds)}
        existing = {
            (rec.kind, rec.subject_key): rec
            for rec in Recommendation.objects.filter(tenant=tenant).select_for_update()
        }
        summary["found"] = len(findings)
        created: list[Recommendation] = []
        changed: list[Recommendation] = []
        reopened_ids: set[int] = set()
        for key, finding in findings.items():
            rec = existing.get(key)
            if rec is None:
                rec = Recommendation(
                    tenant=tenant,
                    kind=finding.kind,
                    subject_key=finding.subject_key,
                    first_seen=now,
                    created_at=now,
                )
                _apply(rec, finding, now)
                # Field checks only: the tenant is ours and the key is unique under the lock.
                rec.clean_fields(exclude=["tenant"])
                created.append(rec)
                continue
            old, why = rec.status, ""
            if rec.status == RecommendationStatus.SUPERSEDED:
                why = "the condition is back"
            elif rec.status == RecommendationStatus.IMPLEMENTED and rec.resolved_at is not None:
                why = "the condition came back after it was implemented"
            elif rec.status == RecommendationStatus.DISMISSED and _materially_changed(
                rec, finding, thresholds
            ):
                why = "the evidence changed materially since it was dismissed"
            _apply(rec, finding, now)
            rec.resolved_at = None
            if why:
                reopened_ids.add(rec.pk)
                rec.status = RecommendationStatus.OPEN
                _audit_status(tenant, rec, old, why)
                summary["reopened"] += 1
            summary["refreshed"] += 1
            changed.append(rec)
        for key, rec in existing.items():
            if key in findings:
                continue
            if rec.status == RecommendationStatus.SUPERSEDED or rec.resolved_at is not None:
                continue
            rec.resolved_at = now
            rec.refreshed_at = now
            rec.updated_at = now
            if rec.status == RecommendationStatus.OPEN:
                rec.status = RecommendationStatus.SUPERSEDED
                _audit_status(tenant, rec, RecommendationStatus.OPEN, "the condition cleared")
                summary["superseded"] += 1
            changed.append(rec)
        if created:
            Recommendation.objects.bulk_create(created, batch_size=500)
            for rec in created:
                audit_record(
                    tenant=tenant,
                    action=AuditAction.CREATE,
                    instance=rec,
                    changes=audit_changes({}, audit_snapshot(rec)),
                )
            summary["created"] = len(created)
        if changed:
            Recommendation.objects.bulk_update(changed, _REFRESHED_FIELDS, batch_size=500)
        reopened = [
            rec
            for rec in changed
            if rec.status == RecommendationStatus.OPEN and rec.pk in reopened_ids
        ]
        events_record_many(
            tenant=tenant,
            events=[
                ("recommendation.opened", _recommendation_event(rec))
                for rec in [*created, *reopened]
            ],
        )
    summary["as_of"] = as_of.isoformat()
    summary["found_by_kind"] = dict(Counter(str(finding.kind) for finding in findings.values()))
    return summary


# --- The lifecycle ------------------------------------------------------------------------------


def _actor_label(user) -> str:
    if user is not None and getattr(user, "is_authenticated", False):
        return user.get_username()[:200]
    return current_actor().label[:200]


def _transition(
    *, tenant, recommendation: Recommendation, action: str, user=None, reason: str = ""
) -> Recommendation:
    _require_scope_of(tenant)
    allowed_from, target = RECOMMENDATION_ACTIONS[action]
    with transaction.atomic():
        rec = Recommendation.objects.select_for_update().get(pk=recommendation.pk, tenant=tenant)
        if rec.status not in allowed_from:
            raise TransitionRefused(
                f"Cannot {action} a recommendation that is {rec.get_status_display().lower()}; "
                f"only from {' or '.join(allowed_from)}.",
                code="invalid_transition",
            )
        who = user if user is not None and getattr(user, "is_authenticated", False) else None
        data = {
            "status": target,
            f"{target}_at": timezone.now(),
            f"{target}_by": who,
            f"{target}_by_label": _actor_label(user),
        }
        if action == "dismiss":
            data["dismissed_reason"] = reason
            data["dismissed_evidence"] = {
                "estimated_monthly_saving": str(rec.estimated_monthly_saving),
                "evidence": rec.evidence,
            }
        rec = audited_update(tenant=tenant, instance=rec, data=data)
    return rec


def recommendation_accept(*, tenant, recommendation: Recommendation, user=None) -> Recommendation:
    """open → accepted."""
    return _transition(tenant=tenant, recommendation=recommendation, action="accept", user=user)


def recommendation_implement(
    *, tenant, recommendation: Recommendation, user=None
) -> Recommendation:
    """accepted → implemented."""
    return _transition(tenant=tenant, recommendation=recommendation, action="implement", user=user)


def recommendation_dismiss(
    *, tenant, recommendation: Recommendation, reason: str, user=None
) -> Recommendation:
    """open or accepted → dismissed, with a reason (required)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why the recommendation is dismissed."]})
    return _transition(
        tenant=tenant, recommendation=recommendation, action="dismiss", user=user, reason=reason
    )
