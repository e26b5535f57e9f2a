"""The MSP's pipeline: every AI system of the tenants a staff member may see, by stage, with its
gate status, what blocks it and its days in pilot; and the fleet figures (median days from pilot
to production, pilots stalled, the most common blocker). A fixed number of queries however many
systems there are."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from operations.inventory import selectors as inventory
from operations.inventory.models import AISystem, Stage
from operations.readiness.gates import BLOCKED, GateReport, ai_systems_gates, gate_definitions
from tenants.models import Tenant
from tenants.scoping import tenant_scope
from tenants.selectors import audit_field_changes

STALLED_AFTER_DAYS = 90
#: Promotions counted in the median: those of the last year.
PROMOTION_WINDOW = dt.timedelta(days=365)
STAGE_ORDER = {stage: index for index, stage in enumerate(Stage.values)}


@dataclass(frozen=True)
class PipelineRow:
    ai_system: AISystem
    report: GateReport

    @property
    def tenant(self) -> Tenant:
        return self.ai_system.tenant

    @property
    def stalled(self) -> bool:
        days = self.report.days_in_pilot
        return days is not None and days > STALLED_AFTER_DAYS

    @property
    def blocking(self) -> list[dict]:
        return [{"key": row["key"], "title": row["title"]} for row in self.report.failing]

    def as_dict(self) -> dict:
        system, report = self.ai_system, self.report
        override = report.override
        return {
            "tenant": {"slug": system.tenant.slug, "name": system.tenant.name},
            "ai_system": {
                "id": system.pk,
                "name": system.name,
                "stage": system.stage,
                "risk_tier": system.risk_tier,
            },
            "stage_changed_at": system.stage_changed_at,
            "days_in_pilot": report.days_in_pilot,
            "stalled": self.stalled,
            "gate_status": report.status,
            "blocking": self.blocking,
            "override": None
            if override is None
            else {
                "reason": override.reason,
                "granted_by": override.granted_by.username if override.granted_by else None,
                "granted_at": override.granted_at,
                "in_force": report.override_in_force,
            },
        }


@dataclass(frozen=True)
class Pipeline:
    rows: list[PipelineRow]
    figures: dict
    tenants: list[Tenant]


def _median_days_to_production(changes, *, now: dt.datetime) -> tuple[float | None, int]:
    """(median days from entering pilot to production, promotions counted) over the
    promotions of the last ``PROMOTION_WINDOW``, from audited stage changes (oldest first)."""
    entered_pilot: dict[str, dt.datetime] = {}
    durations = []
    for object_id, occurred_at, old, new in changes:
        if new == Stage.PILOT:
            entered_pilot[object_id] = occurred_at
        elif old == Stage.PILOT and new == Stage.PRODUCTION:
            started = entered_pilot.pop(object_id, None)
            if started is not None and occurred_at >= now - PROMOTION_WINDOW:
                durations.append((occurred_at - started).total_seconds() / 86400)
    if not durations:
        return None, 0
    return round(statistics.median(durations), 1), len(durations)


def _figures(rows: list[PipelineRow], changes, *, now: dt.datetime) -> dict:
    median, promotions = _median_days_to_production(changes, now=now)
    pilots = [row for row in rows if row.ai_system.stage == Stage.PILOT]
    blockers = Counter(
        row["key"]
        for pipeline_row in pilots
        if pipeline_row.report.status == BLOCKED
        for row in pipeline_row.report.failing
    )
    titles = {definition.key: definition.title for definition in gate_definitions().criteria}
    order = list(titles)
    most_common = None
    if blockers:
        # Ties go to the criterion listed first in gates.yaml.
        key = min(blockers, key=lambda k: (-blockers[k], order.index(k)))
        most_common = {"key": key, "title": titles[key], "pilots": blockers[key]}
    by_stage = Counter(row.ai_system.stage for row in rows)
    return {
        "systems": len(rows),
        "by_stage": {stage: by_stage.get(stage, 0) for stage in Stage.values},
        "pilots_blocked": sum(1 for row in pilots if row.report.status == BLOCKED),
        "median_days_pilot_to_production": median,
        "promotions_counted": promotions,
        "pilots_stalled": sum(1 for row in pilots if row.stalled),
        "stalled_after_days": STALLED_AFTER_DAYS,
        "most_common_blocker": most_common,
    }


def readiness_pipeline(*, tenants: QuerySet[Tenant], now=None) -> Pipeline:
    """Every AI system of ``tenants`` (the caller's visible ones) with its gates, ordered by
    stage, then longest in pilot, tenant and name; and the fleet figures over all of them."""
    now = now or timezone.now()
    tenant_list = list(tenants.order_by("name").only("id", "name", "slug"))
    if not tenant_list:
        return Pipeline(rows=[], figures=_figures([], [], now=now), tenants=[])
    tenant_ids = [tenant.pk for tenant in tenant_list]
    with tenant_scope(*tenant_ids):
        systems = inventory.ai_systems_in_tenants(tenant_ids=tenant_ids)
        reports = ai_systems_gates(ai_systems=systems, now=now)
    changes = audit_field_changes(
        tenant_ids=tenant_ids, object_type=AISystem._meta.label, field="stage"
    )
    rows = [PipelineRow(ai_system=system, report=reports[system.pk]) for system in systems]
    rows.sort(
        key=lambda row: (
            STAGE_ORDER[row.ai_system.stage],
            -(row.report.days_in_pilot or 0),
            row.tenant.name,
            row.ai_system.name,
        )
    )
    return Pipeline(rows=rows, figures=_figures(rows, changes, now=now), tenants=tenant_list)


def pipeline_rows_filtered(
    rows: list[PipelineRow],
    *,
    stage: str = "",
    gate_status: str = "",
    tenant_slug: str = "",
    stalled: bool | None = None,
) -> list[PipelineRow]:
    """The rows that match every filter given (empty means any)."""
    return [
        row
        for row in rows
        if (not stage or row.ai_system.stage == stage)
        and (not gate_status or row.report.status == gate_status)
        and (not tenant_slug or row.tenant.slug == tenant_slug)
        and (stalled is None or row.stalled == stalled)
    ]
