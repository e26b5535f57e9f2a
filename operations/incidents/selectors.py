"""Reads for incidents: lists with their counts, what a caller may do and see (actions,
timeline), event payloads, the MTTA / MTTR / SLA attainment metrics (aggregate queries, never
loops over rows), and the reads of alert rules."""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from types import SimpleNamespace

from django.db import connection
from django.db.models import (
    Avg,
    BooleanField,
    Case,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import TruncWeek
from django.utils import timezone

from operations.incidents.models import (
    INCIDENT_ACTIONS,
    OPEN_STATUSES,
    WAITABLE_STATUSES,
    AlertRule,
    AlertRuleDefault,
    AlertTarget,
    Incident,
    IncidentAISystem,
    IncidentDeployment,
    IncidentStatus,
    Postmortem,
    TimelineEntry,
    TimelineKind,
)
from operations.inventory.models import ComputeResource, Deployment, GpuDevice
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.selectors import (
    WindowStats,
    telemetry_last_sample_times,
    telemetry_window_stats,
)
from tenants.fleet import FleetCell
from tenants.models import Severity, Tenant
from tenants.scoping import TenantScopeMissing, active_scope, all_tenants_scope, tenant_scope
from tenants.selectors import TenantAccess

# --- Incidents and their timeline --------------------------------------------------------------


def regulator_overdue_expression(now: dt.datetime | None = None) -> ExpressionWrapper:
    """True for serious incidents whose regulator deadline passed without a notification."""
    return ExpressionWrapper(
        Q(
            serious=True,
            regulator_notified_at__isnull=True,
            regulator_deadline__lt=now or timezone.now(),
        ),
        output_field=BooleanField(),
    )


def incident_list_queryset(queryset: QuerySet[Incident], *, staff: bool) -> QuerySet[Incident]:
    """Incidents with what a list shows, in a constant number of queries whatever the length.

    ``timeline_count`` counts only the entries the caller may see.
    """
    from operations.inventory.models import AISystem, ComputeResource, Deployment

    visible = Q() if staff else Q(timeline__internal=False)
    return (
        queryset.select_related("assignee", "reporter")
        .prefetch_related(
            Prefetch("ai_systems", queryset=AISystem.objects.only("id")),
            Prefetch("deployments", queryset=Deployment.objects.only("id")),
            Prefetch("compute", queryset=ComputeResource.objects.only("id")),
        )
        .annotate(
            timeline_count=Count("timeline", filter=visible),
            regulator_overdue_now=regulator_overdue_expression(),
        )
    )


#: What clients who can write may do to an incident of their tenant; everything else (the
#: other moves, waiting on the client) is for MSP staff who write.
CLIENT_INCIDENT_ACTIONS = ("comment", "close", "reopen")

#: The workflow buttons' words, in the order they are shown (``comment`` is a form, not one).
INCIDENT_ACTION_LABELS = {
    "acknowledge": "Acknowledge",
    "investigate": "Investigate",
    "mitigate": "Mitigated",
    "wait-on-client": "Wait on client",
    "resume": "Resume (client answered)",
    "resolve": "Resolve",
    "close": "Close",
    "reopen": "Reopen",
}


def incident_moves(incident: Incident) -> list[str]:
    """The lifecycle actions the incident's status allows (``INCIDENT_ACTIONS``), whoever asks."""
    return [name for name, (sources, _) in INCIDENT_ACTIONS.items() if incident.status in sources]


def incident_allowed_actions(incident: Incident, access: TenantAccess) -> list[str]:
    """What ``access`` (a user in the incident's tenant) may do to ``incident`` now: the
    lifecycle moves its status allows, ``comment`` until it is closed, then ``wait-on-client``
    or ``resume``. MSP staff who write may do all of them; clients who write may comment, and
    confirm (``close``) or dispute (``reopen``) a resolution; readers nothing.

    The API lists these, the portal shows their forms and the console its comment form; the
    services refuse what the status does not allow, the doors what the role does not.
    """
    staff = access.allows("staff_write")
    if not staff and not access.allows("write"):
        return []
    actions = incident_moves(incident)
    if incident.status != IncidentStatus.CLOSED:
        actions.append("comment")
    if staff:
        if incident.waiting_since is not None:
            actions.append("resume")
        elif incident.status in WAITABLE_STATUSES:
            actions.append("wait-on-client")
        return actions
    return [name for name in actions if name in CLIENT_INCIDENT_ACTIONS]


def timeline_visible(*, incident: Incident, staff: bool) -> QuerySet[TimelineEntry]:
    """The entries of ``incident`` a caller may see: all for MSP staff, client-visible ones else.

    Every door that shows a timeline (API, portal, exports, postmortem excerpts) reads here.
    """
    entries = TimelineEntry.objects.filter(
        tenant_id=incident.tenant_id, incident_id=incident.pk
    ).select_related("author")
    return entries if staff else entries.filter(internal=False)


def client_timeline_excerpt(*, incident: Incident) -> str:
    """A plain-text excerpt of the client-visible timeline, for a postmortem draft."""
    lines = [
        f"{entry.created_at:%Y-%m-%d %H:%M} UTC  {entry.body}"
        for entry in timeline_visible(incident=incident, staff=False)
    ]
    return "\n".join(lines)


def incident_event_payload(incident: Incident) -> dict:
    """What integrations receive about an incident: client-visible fields only, no timeline."""

    def iso(value):
        return value.isoformat() if value else None

    return {
        "id": incident.pk,
        "number": incident.number,
        "reference": incident.reference,
        "title": incident.title,
        "severity": incident.severity,
        "category": incident.category,
        "status": incident.status,
        "source": incident.source,
        "created_at": iso(incident.created_at),
        "acknowledged_at": iso(incident.acknowledged_at),
        "resolved_at": iso(incident.resolved_at),
        "closed_at": iso(incident.closed_at),
        "ack_due_at": iso(incident.ack_due_at),
        "resolve_due_at": iso(incident.resolve_due_at),
        "ack_breached_at": iso(incident.ack_breached_at),
        "resolve_breached_at": iso(incident.resolve_breached_at),
        "waiting_on_client": incident.waiting_since is not None,
        "serious": incident.serious,
        "regulator_deadline": iso(incident.regulator_deadline),
    }


def incidents_breaching_within(
    queryset: QuerySet[Incident], *, minutes: float, now: dt.datetime | None = None
) -> QuerySet[Incident]:
    """Incidents whose running clock runs out within ``minutes`` and has not yet breached."""
    return queryset.filter(_breaching_within(minutes=minutes, now=now or timezone.now()))


def _breaching_within(*, minutes: float, now: dt.datetime) -> Q:
    horizon = now + dt.timedelta(minutes=minutes)
    ack_soon = Q(
        status=IncidentStatus.TRIGGERED,
        ack_breached_at__isnull=True,
        ack_due_at__gt=now,
        ack_due_at__lte=horizon,
    )
    resolve_soon = Q(
        status__in=OPEN_STATUSES,
        waiting_since__isnull=True,
        resolve_breached_at__isnull=True,
        resolve_due_at__gt=now,
        resolve_due_at__lte=horizon,
    )
    return ack_soon | resolve_soon


# --- Metrics -----------------------------------------------------------------------------------


def _duration(end: str, start: str = "created_at") -> ExpressionWrapper:
    return ExpressionWrapper(F(end) - F(start), output_field=DurationField())


def _aggregates() -> dict:
    acknowledged = Q(acknowledged_at__isnull=False)
    resolved = Q(resolved_at__isnull=False)
    ack_breached = Q(ack_breached_at__isnull=False)
    resolve_breached = Q(resolve_breached_at__isnull=False)
    # A clock counts towards attainment once it has an outcome: stopped in time, or breached.
    ack_settled = acknowledged | resolved | ack_breached
    resolve_settled = resolved | resolve_breached
    return {
        "incidents": Count("id"),
        "acknowledged": Count("id", filter=acknowledged),
        "resolved": Count("id", filter=resolved),
        "mtta": Avg(_duration("acknowledged_at"), filter=acknowledged),
        "mttr": Avg(_duration("resolved_at"), filter=resolved),
        "ack_settled": Count("id", filter=ack_settled),
        "ack_met": Count("id", filter=ack_settled & ~ack_breached),
        "resolve_settled": Count("id", filter=resolve_settled),
        "resolve_met": Count("id", filter=resolve_settled & ~resolve_breached),
        "ack_breaches": Count("id", filter=ack_breached),
        "resolve_breaches": Count("id", filter=resolve_breached),
    }


def _seconds(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        return round(value.total_seconds(), 3)
    return round(float(value) / 1_000_000, 3)  # a backend that averages microseconds


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _metrics_row(row: dict | None) -> dict:
    row = row or {}
    return {
        "incidents": row.get("incidents", 0),
        "acknowledged": row.get("acknowledged", 0),
        "resolved": row.get("resolved", 0),
        "mtta_seconds": _seconds(row.get("mtta")),
        "mttr_seconds": _seconds(row.get("mttr")),
        "ack_sla_attainment": _ratio(row.get("ack_met", 0), row.get("ack_settled", 0)),
        "resolve_sla_attainment": _ratio(row.get("resolve_met", 0), row.get("resolve_settled", 0)),
        "ack_breaches": row.get("ack_breaches", 0),
        "resolve_breaches": row.get("resolve_breaches", 0),
    }


def _in_window(queryset: QuerySet[Incident], start: dt.datetime, end: dt.datetime):
    # order_by(): the model's default ordering would otherwise join the GROUP BY.
    return queryset.filter(created_at__gte=start, created_at__lt=end).order_by()


def incident_metrics(*, tenant: Tenant, start: dt.datetime, end: dt.datetime) -> dict:
    """MTTA, MTTR and SLA attainment of the incidents raised in ``[start, end)``, per severity.

    MTTA and MTTR are wall-clock means; attainment is the share of settled clocks that did not
    breach (the clocks themselves follow the plan's working hours and pauses).
    """
    incidents = _in_window(Incident.objects.filter(tenant=tenant), start, end)
    per_severity = {
        row["severity"]: row for row in incidents.values("severity").annotate(**_aggregates())
    }
    return {
        "from": start,
        "to": end,
        "overall": _metrics_row(incidents.aggregate(**_aggregates())),
        "by_severity": [
            {"severity": severity, **_metrics_row(per_severity.get(severity))}
            for severity in Severity.values
        ],
    }


def incident_metrics_overall(*, tenant: Tenant, start: dt.datetime, end: dt.datetime) -> dict:
    """``incident_metrics``' overall figures alone (MTTA, MTTR, SLA attainment). One query."""
    incidents = _in_window(Incident.objects.filter(tenant=tenant), start, end)
    return _metrics_row(incidents.aggregate(**_aggregates()))


def incident_metrics_weekly(
    *, tenant: Tenant, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, dict]]:
    """``incident_metrics``' overall figures per UTC week (Monday) of the incidents raised in
    ``[start, end)``, oldest first; weeks without incidents are left out. One query."""
    incidents = _in_window(Incident.objects.filter(tenant=tenant), start, end)
    rows = (
        incidents.annotate(week=TruncWeek("created_at", tzinfo=dt.UTC))
        .values("week")
        .annotate(**_aggregates())
        .order_by("week")
    )
    return [(row["week"], _metrics_row(row)) for row in rows]


def incident_open_by_severity(*, tenant: Tenant) -> dict[str, int]:
    """{severity: open incidents} for every severity, most severe first. One query."""
    counts = dict(
        Incident.objects.filter(tenant=tenant, status__in=OPEN_STATUSES)
        .order_by()
        .values_list("severity")
        .annotate(count=Count("id"))
    )
    return {severity: counts.get(severity, 0) for severity in Severity.values}


#: ``incident_readiness_figures``' aggregate, as ``_aggregates`` counts (a clock is settled once
#: stopped or breached), over the incidents resolved or raised in the window; ``{duration}`` is
#: the backend's time between two timestamps.
_READINESS_AGGREGATE_SQL = """
    SELECT
        COUNT(CASE WHEN {resolved_in} THEN 1 END),
        AVG(CASE WHEN {resolved_in} THEN {duration} END),
        COUNT(CASE WHEN {raised_in} AND {ack_settled} THEN 1 END),
        COUNT(CASE WHEN {raised_in} AND {ack_settled} AND "ack_breached_at" IS NULL THEN 1 END),
        COUNT(CASE WHEN {raised_in} AND {resolve_settled} THEN 1 END),
        COUNT(
            CASE WHEN {raised_in} AND {resolve_settled} AND "resolve_breached_at" IS NULL
            THEN 1 END
        ),
        COUNT(CASE WHEN {raised_in} AND {breached} THEN 1 END)
    FROM {table}
    WHERE "tenant_id" = %(tenant)s AND ({resolved_in} OR {raised_in})
"""
_READINESS_AGGREGATE_KEYS = (
    "resolved",
    "mttr",
    "ack_settled",
    "ack_met",
    "resolve_settled",
    "resolve_met",
    "breached",
)


@functools.cache
def _readiness_aggregate_sql(vendor: str) -> str:
    """Built once per process: compiling seven filtered aggregates through the ORM cost a
    fleet readiness scan more per tenant than running them."""
    duration = (
        'django_timestamp_diff("resolved_at", "created_at")'  # Django's own SQLite function
        if vendor == "sqlite"
        else '("resolved_at" - "created_at")'
    )
    return _READINESS_AGGREGATE_SQL.format(
        table=f'"{Incident._meta.db_table}"',
        duration=duration,
        resolved_in='("resolved_at" >= %(start)s AND "resolved_at" < %(end)s)',
        raised_in='("created_at" >= %(start)s AND "created_at" < %(end)s)',
        ack_settled=(
            '("acknowledged_at" IS NOT NULL OR "resolved_at" IS NOT NULL '
            'OR "ack_breached_at" IS NOT NULL)'
        ),
        resolve_settled='("resolved_at" IS NOT NULL OR "resolve_breached_at" IS NOT NULL)',
        breached='("ack_breached_at" IS NOT NULL OR "resolve_breached_at" IS NOT NULL)',
    )


def _readiness_aggregate(*, tenant: Tenant, start: dt.datetime, end: dt.datetime) -> dict:
    """The counts and mean time to resolve of ``incident_readiness_figures``: one plain-SQL
    query filtered by the tenant, refused outside its scope (as the scoped manager would)."""
    scope = active_scope()
    if scope is None or tenant.id not in scope.tenant_ids:
        raise TenantScopeMissing(f"incident readiness figures of {tenant.id} outside its scope.")
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            _readiness_aggregate_sql(connection.vendor),
            {"tenant": tenant.id, "start": adapt(start), "end": adapt(end)},
        )
        row = dict(zip(_READINESS_AGGREGATE_KEYS, cursor.fetchone(), strict=True))
    if row["mttr"] is not None and not isinstance(row["mttr"], dt.timedelta):
        # SQLite averages microseconds; read them as the ORM's DurationField would.
        row["mttr"] = dt.timedelta(microseconds=row["mttr"])
    return row


def incident_readiness_figures(
    *, tenant: Tenant, start: dt.datetime, end: dt.datetime, limit: int
) -> dict:
    """What readiness reads of ``[start, end)``, in one aggregate query (plus a list query only
    when there is something to list):

    - ``resolution``: the incidents resolved in the window: how many, their mean time to
      resolve (``incident_metrics``' MTTR, in seconds) and the ``limit`` slowest;
    - ``sla``: the SLA clocks of the incidents raised in the window that have an outcome, as
      ``incident_metrics`` counts them (met, settled) and the ``limit`` newest with a breach.
    """
    resolved_in = Q(resolved_at__gte=start, resolved_at__lt=end)
    raised_in = Q(created_at__gte=start, created_at__lt=end)
    breached = Q(ack_breached_at__isnull=False) | Q(resolve_breached_at__isnull=False)
    row = _readiness_aggregate(tenant=tenant, start=start, end=end)
    incidents = Incident.objects.filter(tenant=tenant).order_by()
    slowest = []
    if row["resolved"]:
        slowest = list(
            incidents.filter(resolved_in)
            .annotate(time_to_resolve=_duration("resolved_at"))
            .order_by("-time_to_resolve", "-id")
            .values("id", "reference", "title", "time_to_resolve")[:limit]
        )
    newest_breached = []
    if row["breached"]:
        newest_breached = list(
            incidents.filter(raised_in & breached)
            .order_by("-created_at", "-id")
            .values("id", "reference", "title")[:limit]
        )
    return {
        "resolution": {
            "resolved": row["resolved"],
            "mttr_seconds": _seconds(row["mttr"]),
            "slowest": slowest,
        },
        "sla": {
            "ack_met": row["ack_met"],
            "ack_settled": row["ack_settled"],
            "resolve_met": row["resolve_met"],
            "resolve_settled": row["resolve_settled"],
            "breached": newest_breached,
        },
    }


def fleet_incident_metrics(
    *, tenants: QuerySet[Tenant], start: dt.datetime, end: dt.datetime
) -> list[dict]:
    """``incident_metrics`` for each of ``tenants`` (the caller's visible ones), in two queries
    over incidents however many tenants there are."""
    tenant_rows = list(tenants.order_by("name").values("id", "slug", "name"))
    if not tenant_rows:
        return []
    ids = [row["id"] for row in tenant_rows]
    with tenant_scope(*ids):
        incidents = _in_window(Incident.objects.filter(tenant_id__in=ids), start, end)
        overall = {
            row["tenant_id"]: row for row in incidents.values("tenant_id").annotate(**_aggregates())
        }
        by_severity = {
            (row["tenant_id"], row["severity"]): row
            for row in incidents.values("tenant_id", "severity").annotate(**_aggregates())
        }
    return [
        {
            "tenant": {"slug": row["slug"], "name": row["name"]},
            "overall": _metrics_row(overall.get(row["id"])),
            "by_severity": [
                {"severity": severity, **_metrics_row(by_severity.get((row["id"], severity)))}
                for severity in Severity.values
            ],
        }
        for row in tenant_rows
    ]


# --- Alert rules -------------------------------------------------------------------------------

#: Where a rule in force comes from.
RULE_SOURCE_TENANT = "tenant"
RULE_SOURCE_DEFAULT = "default"


def alert_rules_effective(*, tenant: Tenant) -> list[AlertRule | AlertRuleDefault]:
    """The rules in force for ``tenant``: its own enabled rules (overrides included) and the
    enabled MSP-wide defaults it has not overridden or disabled. Two queries."""
    own = list(AlertRule.objects.filter(tenant=tenant).order_by("name", "id"))
    replaced = {rule.default_rule_id for rule in own if rule.default_rule_id is not None}
    defaults = AlertRuleDefault.objects.filter(enabled=True).exclude(pk__in=replaced)
    rules: list[AlertRule | AlertRuleDefault] = [rule for rule in own if rule.enabled]
    rules.extend(defaults.order_by("name", "id"))
    return rules


def alert_rule_source(rule: AlertRule | AlertRuleDefault) -> str:
    return RULE_SOURCE_TENANT if isinstance(rule, AlertRule) else RULE_SOURCE_DEFAULT


def _glob_regex(pattern: str) -> str:
    """A glob (``*``, ``?``) as an anchored regular expression both databases understand."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char.isalnum():
            parts.append(char)
        else:
            parts.append("\\" + char)
    return "^" + "".join(parts) + "$"


def _rule_resource_condition(rule: AlertRule | AlertRuleDefault) -> Q:
    """The rule's resource filter as a condition on its target's rows (compute, deployment, or
    GPU: a GPU is selected by its node's hostname and site, and its own model when it reports
    one, else its node's)."""
    condition = Q()
    if rule.target == AlertTarget.COMPUTE:
        name, site = "hostname", "site__code"
        if rule.gpu_model:
            condition &= Q(gpu_model__icontains=rule.gpu_model)
    elif rule.target == AlertTarget.GPU:
        name, site = "compute__hostname", "compute__site__code"
        if rule.gpu_model:
            condition &= Q(model_name__icontains=rule.gpu_model) | Q(
                model_name="", compute__gpu_model__icontains=rule.gpu_model
            )
    else:
        name, site = "name", "compute__site__code"
        if rule.environment:
            condition &= Q(environment=rule.environment)
    if rule.resource_pattern:
        if any(char in rule.resource_pattern for char in "*?"):
            condition &= Q(**{f"{name}__iregex": _glob_regex(rule.resource_pattern)})
        else:
            condition &= Q(**{f"{name}__iexact": rule.resource_pattern})
    if rule.site_code:
        condition &= Q(**{site: rule.site_code})
    return condition


# What each target's series are keyed by in telemetry: the inventory rows and resource kind.
_TARGET_RESOURCES = {
    AlertTarget.COMPUTE: (ComputeResource, ResourceKind.COMPUTE),
    AlertTarget.DEPLOYMENT: (Deployment, ResourceKind.DEPLOYMENT),
    AlertTarget.GPU: (GpuDevice, ResourceKind.GPU),
}


def alert_rule_resources(*, tenant: Tenant, rule: AlertRule | AlertRuleDefault) -> QuerySet:
    """The tenant's compute resources, deployments or GPUs the rule's resource filter selects."""
    model, _kind = _TARGET_RESOURCES[rule.target]
    return model.objects.filter(tenant=tenant).filter(_rule_resource_condition(rule))


_RULE_FILTER_FIELDS = ("target", "resource_pattern", "site_code", "gpu_model", "environment")


def deployments_watched_by_alert_rules(*, tenant: Tenant, deployment_ids) -> set[int]:
    """The ids among ``deployment_ids`` that at least one deployment rule in force selects.
    Two queries (the rules in force as ``alert_rules_effective`` has them, then the
    deployments), however many rules and deployments."""
    own = AlertRule.objects.filter(tenant=tenant, enabled=True, target=AlertTarget.DEPLOYMENT)
    overridden = AlertRule.objects.filter(tenant=tenant, default_rule=OuterRef("pk"))
    defaults = AlertRuleDefault.objects.filter(enabled=True, target=AlertTarget.DEPLOYMENT).exclude(
        Exists(overridden)
    )
    rules = [
        SimpleNamespace(**dict(zip(_RULE_FILTER_FIELDS, row, strict=True)))
        for row in own.order_by()
        .values_list(*_RULE_FILTER_FIELDS)
        .union(defaults.order_by().values_list(*_RULE_FILTER_FIELDS), all=True)
    ]
    if not rules:
        return set()
    selected = Q()
    for rule in rules:
        condition = _rule_resource_condition(rule)
        if not condition:
            return set(deployment_ids)  # a rule without a filter watches every deployment
        selected |= condition
    rows = Deployment.objects.filter(tenant=tenant, pk__in=list(deployment_ids)).filter(selected)
    return set(rows.values_list("pk", flat=True))


def _has_resource_filter(rule: AlertRule | AlertRuleDefault) -> bool:
    return bool(rule.resource_pattern or rule.site_code or rule.gpu_model or rule.environment)


def alert_window_stats(
    *,
    tenant: Tenant,
    rule: AlertRule | AlertRuleDefault,
    start: dt.datetime,
    end: dt.datetime,
) -> list[WindowStats]:
    """Lowest, highest, count, first and last sample per resource of the rule's metric in
    [start, end], for the resources its filter selects (telemetry's read: one query)."""
    metric = METRICS_BY_NAME[rule.metric]
    _model, kind = _TARGET_RESOURCES[rule.target]
    resources = (
        alert_rule_resources(tenant=tenant, rule=rule).values("pk")
        if _has_resource_filter(rule)
        else None
    )
    return telemetry_window_stats(
        tenant=tenant, kind=kind, metric=metric, start=start, end=end, resources=resources
    )


#: How long a series that went quiet is still expected back: a no-data rule does not open an
#: incident for a resource silent since before [as_of − window − this] (a rule added later,
#: or evaluations that stopped, meet it as retired). An open incident keeps firing regardless.
SILENCE_MEMORY = dt.timedelta(hours=24)


@dataclass(frozen=True)
class SilenceWatch:
    """One resource a no-data rule selects, and when it last reported the rule's metric."""

    rule: AlertRule | AlertRuleDefault
    resource_id: int
    last_sample_at: dt.datetime | None  # None: nothing within the rule's memory


def alert_silence_watch(
    *, tenant: Tenant, rules: list[AlertRule | AlertRuleDefault], as_of: dt.datetime
) -> list[SilenceWatch]:
    """Each resource every no-data rule in ``rules`` selects, with the time of its last sample
    of the rule's metric at or before ``as_of`` (within ``SILENCE_MEMORY`` before the longest
    window). One inventory query per target the rules aim at and one telemetry query, however
    many rules and resources."""
    if not rules:
        return []
    selected: list[tuple[AlertRule | AlertRuleDefault, int, int]] = []
    for target, (model, kind) in _TARGET_RESOURCES.items():
        aimed = [rule for rule in rules if rule.target == target]
        if not aimed:
            continue
        # Each filtered rule's verdict on each row, evaluated by the database in the one read.
        flags = {}
        for index, rule in enumerate(aimed):
            condition = _rule_resource_condition(rule)
            if condition:
                flags[f"rule_{index}"] = Case(
                    When(condition, then=Value(True)),
                    default=Value(False),
                    output_field=BooleanField(),
                )
        rows = model.objects.filter(tenant=tenant).annotate(**flags).order_by("pk")
        for row in rows.values("pk", *flags):
            selected.extend(
                (rule, kind, row["pk"])
                for index, rule in enumerate(aimed)
                if row.get(f"rule_{index}", True)
            )
    longest = max(rule.window_minutes for rule in rules)
    last_seen = telemetry_last_sample_times(
        tenant=tenant,
        series=list({(kind, pk, METRICS_BY_NAME[rule.metric]) for rule, kind, pk in selected}),
        since=as_of - dt.timedelta(minutes=longest) - SILENCE_MEMORY,
        until=as_of,
    )
    return [
        SilenceWatch(rule, pk, last_seen.get((kind, pk, rule.metric)))
        for rule, kind, pk in selected
    ]


def alert_open_incidents(*, tenant: Tenant) -> dict[str, dict]:
    """Open alert-rule incidents of ``tenant`` by dedupe key, with the time of their latest
    alert entry (one query)."""
    rows = (
        Incident.objects.filter(
            tenant=tenant, status__in=OPEN_STATUSES, dedupe_key__startswith="alert:"
        )
        .annotate(
            last_alert_at=Max("timeline__created_at", filter=Q(timeline__kind=TimelineKind.ALERT))
        )
        .values("pk", "dedupe_key", "reference", "last_alert_at")
    )
    return {row["dedupe_key"]: row for row in rows}


def alert_tenants_to_evaluate() -> list[int]:
    """Ids of the tenants (offboarded ones aside) with at least one rule in force."""
    with all_tenants_scope(include_offboarded=False) as tenant_ids:
        if not tenant_ids or AlertRuleDefault.objects.filter(enabled=True).exists():
            return tenant_ids  # a default is in force somewhere unless every tenant opted out
        enabled = AlertRule.objects.filter(enabled=True).order_by().values_list("tenant_id")
        return sorted(set(enabled.distinct().values_list("tenant_id", flat=True)))


# --- The client portal's incident pages ----------------------------------------------------------

#: The states the portal's incident list is narrowed to: key → (label, condition).
INCIDENT_PORTAL_STATES = {
    "open": ("Open", Q(status__in=OPEN_STATUSES)),
    "resolved": ("Resolved", Q(status=IncidentStatus.RESOLVED)),
    "closed": ("Closed", Q(status=IncidentStatus.CLOSED)),
    "all": ("All", Q()),
}


def incident_portal_list(*, tenant: Tenant, state: str) -> QuerySet[Incident]:
    """The tenant's incidents in ``state`` (an ``INCIDENT_PORTAL_STATES`` key), newest first,
    each with ``visible_entries``: its client-visible timeline entries."""
    return (
        Incident.objects.filter(tenant=tenant)
        .filter(INCIDENT_PORTAL_STATES[state][1])
        .select_related("assignee")
        .annotate(visible_entries=Count("timeline", filter=Q(timeline__internal=False)))
        .order_by("-created_at", "-id")
    )


def incident_portal_state_counts(*, tenant: Tenant) -> dict[str, int]:
    """{state: count} for every ``INCIDENT_PORTAL_STATES`` key, in one query."""
    return (
        Incident.objects.filter(tenant=tenant)
        .order_by()
        .aggregate(
            **{
                key: Count("id", filter=cond)
                for key, (_label, cond) in INCIDENT_PORTAL_STATES.items()
            }
        )
    )


def incident_open_about(
    *, tenant: Tenant, compute_id: int | None = None, deployment_id: int | None = None
) -> list[Incident]:
    """The tenant's open incidents about one compute resource or deployment, most severe and
    newest first. One query."""
    about = (
        Q(compute__id=compute_id) if compute_id is not None else Q(deployments__id=deployment_id)
    )
    return list(
        Incident.objects.filter(tenant=tenant, status__in=OPEN_STATUSES)
        .filter(about)
        .distinct()
        .order_by("severity", "-created_at", "-id")
    )


def incident_get_by_number(*, tenant: Tenant, number: int) -> Incident | None:
    """The tenant's incident ``number`` with its assignee; None when it has none such."""
    return (
        Incident.objects.filter(tenant=tenant)
        .select_related("assignee")
        .filter(number=number)
        .first()
    )


def postmortem_for(*, incident: Incident) -> Postmortem | None:
    """The incident's postmortem with its action items, if it has one."""
    return Postmortem.objects.filter(incident=incident).prefetch_related("action_items").first()


# --- Readiness gates (pilot → production): reads for many AI systems at once ---------------------
# Kept apart from the rest of this module; a fixed number of queries whatever the number of
# systems or deployments.


def _incident_brief(row: dict, prefix: str = "incident__") -> dict:
    return {
        "id": row[f"{prefix}id"],
        "reference": row[f"{prefix}reference"],
        "title": row[f"{prefix}title"],
        "severity": row[f"{prefix}severity"],
    }


def open_incidents_of_severity_for(
    *, ai_system_ids: list[int], deployment_ids: list[int], severities: tuple[str, ...]
) -> dict[tuple[str, int], list[dict]]:
    """{("ai_system" | "deployment", id): [open incidents of ``severities`` affecting it]}.
    Two queries."""
    fields = ("incident__id", "incident__reference", "incident__title", "incident__severity")
    open_of_severity = {"incident__status__in": OPEN_STATUSES, "incident__severity__in": severities}
    found: dict[tuple[str, int], list[dict]] = {}
    for row in (
        IncidentAISystem.objects.filter(ai_system_id__in=ai_system_ids, **open_of_severity)
        .order_by("incident__number")
        .values("ai_system_id", *fields)
    ):
        found.setdefault(("ai_system", row["ai_system_id"]), []).append(_incident_brief(row))
    for row in (
        IncidentDeployment.objects.filter(deployment_id__in=deployment_ids, **open_of_severity)
        .order_by("incident__number")
        .values("deployment_id", *fields)
    ):
        found.setdefault(("deployment", row["deployment_id"]), []).append(_incident_brief(row))
    return found


def _glob_matches(pattern: str, value: str) -> bool:
    # The same test as ``alert_rule_resources``: a glob, else a case-insensitive equality.
    if any(char in pattern for char in "*?"):
        return re.match(_glob_regex(pattern), value or "", re.IGNORECASE) is not None
    return pattern.lower() == (value or "").lower()


def _rule_covers(rule, deployment: dict) -> bool:
    """Whether ``rule``'s filter selects the deployment (or, for a compute or each-GPU rule, its
    compute); ``deployment`` as ``inventory.selectors.ai_system_deployments_for`` reads it."""
    if rule.target in (AlertTarget.COMPUTE, AlertTarget.GPU):
        if deployment["compute_id"] is None:
            return False
        name = deployment["compute__hostname"]
        if (
            rule.gpu_model
            and rule.gpu_model.lower() not in (deployment["compute__gpu_model"] or "").lower()
        ):
            return False
    else:
        name = deployment["name"]
        if rule.environment and rule.environment != deployment["environment"]:
            return False
    if rule.resource_pattern and not _glob_matches(rule.resource_pattern, name):
        return False
    return not (rule.site_code and rule.site_code != deployment["compute__site__code"])


def alert_rules_covering(*, tenant_ids: list[int], deployments: list[dict]) -> dict[int, list[str]]:
    """{deployment id: names of the alert rules in force (``alert_rules_effective``) whose
    filter selects it or its compute}, for deployments of ``tenant_ids`` that need a
    ``tenant_id`` key besides what ``ai_system_deployments_for`` reads. Two queries."""
    own_by_tenant: dict[int, list[AlertRule]] = {}
    for rule in AlertRule.objects.filter(tenant_id__in=tenant_ids).order_by("name", "id"):
        own_by_tenant.setdefault(rule.tenant_id, []).append(rule)
    defaults = list(AlertRuleDefault.objects.filter(enabled=True).order_by("name", "id"))
    in_force: dict[int, list] = {}
    for tenant_id in tenant_ids:
        own = own_by_tenant.get(tenant_id, [])
        replaced = {rule.default_rule_id for rule in own if rule.default_rule_id is not None}
        in_force[tenant_id] = [rule for rule in own if rule.enabled] + [
            rule for rule in defaults if rule.pk not in replaced
        ]
    return {
        deployment["id"]: [
            rule.name
            for rule in in_force.get(deployment["tenant_id"], [])
            if _rule_covers(rule, deployment)
        ]
        for deployment in deployments
    }


def incident_with_dedupe_key_exists(*, tenant: Tenant, dedupe_key: str) -> bool:
    """Whether ``tenant`` has an incident (open or not) grouped under ``dedupe_key``."""
    return Incident.objects.filter(tenant=tenant, dedupe_key=dedupe_key).exists()


def incidents_for_escalation(*, tenant: Tenant) -> list[Incident]:
    """Open incidents of ``tenant`` whose clocks or deadlines the delivery context watches
    (escalation while unacknowledged, SLA at risk, regulator deadline near)."""
    return list(
        Incident.objects.filter(tenant=tenant, status__in=OPEN_STATUSES).order_by(
            "created_at", "id"
        )
    )


def tenants_with_open_incidents() -> list[int]:
    with all_tenants_scope(include_offboarded=False) as tenant_ids:
        if not tenant_ids:
            return []
        rows = Incident.objects.filter(status__in=OPEN_STATUSES).order_by()
        return sorted(set(rows.values_list("tenant_id", flat=True).distinct()))


# --- The fleet dashboard (every tenant id of the page at once, in its scope) -------------------

#: How much one open incident of each severity weighs in a tenant's need of attention.
SEVERITY_ATTENTION = {"SEV1": 40, "SEV2": 15, "SEV3": 3, "SEV4": 1}
SLA_AT_RISK_MINUTES = 30
REGULATOR_NEAR_HOURS = 72


def _open_in(tenant_ids) -> QuerySet[Incident]:
    return (
        Incident.objects.unscoped()
        .filter(tenant_id__in=tenant_ids, status__in=OPEN_STATUSES)
        .order_by()
    )


def fleet_open_incidents(tenant_ids) -> dict[int, FleetCell]:
    """Open incidents per tenant by severity. One query."""
    rows = (
        _open_in(tenant_ids)
        .values("tenant_id")
        .annotate(
            **{sev: Count("id", filter=Q(severity=sev)) for sev in SEVERITY_ATTENTION},
            total=Count("id"),
        )
    )
    cells = {}
    for row in rows:
        worst = next((sev for sev in SEVERITY_ATTENTION if row[sev]), "")
        cells[row["tenant_id"]] = FleetCell(
            text=str(row["total"]),
            value=row["total"],
            attention=sum(row[sev] * weight for sev, weight in SEVERITY_ATTENTION.items()),
            tone="bad" if worst == "SEV1" else "warn" if worst == "SEV2" else "",
            link="incidents/",
            detail=" · ".join(f"{row[sev]} {sev}" for sev in SEVERITY_ATTENTION if row[sev]),
        )
    return cells


def fleet_sla_clocks(tenant_ids, *, now: dt.datetime | None = None) -> dict[int, FleetCell]:
    """Open incidents per tenant whose SLA clock breached, or runs out within 30 minutes.
    One query."""
    now = now or timezone.now()
    breached = Q(ack_breached_at__isnull=False) | Q(resolve_breached_at__isnull=False)
    rows = (
        _open_in(tenant_ids)
        .filter(breached | _breaching_within(minutes=SLA_AT_RISK_MINUTES, now=now))
        .values("tenant_id")
        .annotate(
            breached=Count("id", filter=breached),
            at_risk=Count("id", filter=~breached),
        )
    )
    cells = {}
    for row in rows:
        parts = [f"{row['breached']} breached"] if row["breached"] else []
        parts += [f"{row['at_risk']} at risk"] if row["at_risk"] else []
        cells[row["tenant_id"]] = FleetCell(
            text=", ".join(parts),
            value=row["breached"] + row["at_risk"],
            attention=30 * row["breached"] + 10 * row["at_risk"],
            tone="bad" if row["breached"] else "warn",
            link="incidents/",
        )
    return cells


def _hours_label(delta: dt.timedelta) -> str:
    hours = abs(delta.total_seconds()) / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} d"


def fleet_regulator_deadlines(
    tenant_ids, *, now: dt.datetime | None = None
) -> dict[int, FleetCell]:
    """Serious incidents per tenant not yet notified to the regulator whose deadline passed or
    falls within 72 hours, with the nearest deadline. One query."""
    now = now or timezone.now()
    rows = (
        Incident.objects.unscoped()
        .filter(
            tenant_id__in=tenant_ids,
            serious=True,
            regulator_notified_at__isnull=True,
            regulator_deadline__lte=now + dt.timedelta(hours=REGULATOR_NEAR_HOURS),
        )
        .order_by()
        .values("tenant_id")
        .annotate(
            overdue=Count("id", filter=Q(regulator_deadline__lt=now)),
            near=Count("id", filter=Q(regulator_deadline__gte=now)),
            first=Min("regulator_deadline"),
        )
    )
    cells = {}
    for row in rows:
        if row["overdue"]:
            text = f"{row['overdue']} overdue"
        else:
            text = f"due in {_hours_label(row['first'] - now)}"
        cells[row["tenant_id"]] = FleetCell(
            text=text,
            value=row["overdue"] + row["near"],
            attention=100 * row["overdue"] + 40 * row["near"],
            tone="bad" if row["overdue"] else "warn",
            link="incidents/",
            detail=f"{row['near']} due within {REGULATOR_NEAR_HOURS} h"
            if row["overdue"] and row["near"]
            else "",
        )
    return cells


# --- Reports: a period's major incidents and regulator deadlines -------------------------------


def incidents_major_in_window(
    *, tenant: Tenant, start: dt.datetime, end: dt.datetime, limit: int = 50
) -> list[dict]:
    """The SEV1 and SEV2 incidents raised in ``[start, end)``, oldest first, each with its
    postmortem's summary (empty without one). One query."""
    rows = (
        Incident.objects.filter(
            tenant=tenant,
            severity__in=(Severity.SEV1, Severity.SEV2),
            created_at__gte=start,
            created_at__lt=end,
        )
        .order_by("created_at", "id")
        .values(
            "id",
            "reference",
            "title",
            "severity",
            "status",
            "created_at",
            "acknowledged_at",
            "resolved_at",
            "ack_breached_at",
            "resolve_breached_at",
            "postmortem__summary",
            "postmortem__root_cause",
        )[:limit]
    )
    return [
        {
            **{key: value for key, value in row.items() if not key.startswith("postmortem__")},
            "postmortem_summary": row["postmortem__summary"] or "",
            "root_cause": row["postmortem__root_cause"] or "",
        }
        for row in rows
    ]


def incident_regulator_deadlines_in_window(
    *, tenant: Tenant, start: dt.datetime, end: dt.datetime
) -> list[dict]:
    """Serious AI incidents whose regulator deadline fell in ``[start, end)``, each with
    ``met`` (notified by the deadline). One query."""
    rows = (
        Incident.objects.filter(
            tenant=tenant, regulator_deadline__gte=start, regulator_deadline__lt=end
        )
        .order_by("regulator_deadline", "id")
        .values("id", "reference", "title", "regulator_deadline", "regulator_notified_at")
    )
    return [
        {
            **row,
            "met": row["regulator_notified_at"] is not None
            and row["regulator_notified_at"] <= row["regulator_deadline"],
        }
        for row in rows
    ]
