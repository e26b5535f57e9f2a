"""Demo incidents for a tenant: open, breached, resolved (with a postmortem) and serious ones,
and the alert rules that fire on the demo telemetry.

``seed_incidents(tenant, scenarios=...)`` makes the scenarios asked for (all the busy ones by
default; a calm tenant gets ``CALM_SCENARIOS``, an onboarding one ``ONBOARDING_SCENARIOS``) and,
with ``alert_rules=True``, the alert rules. It is idempotent: each demo incident carries a
``demo:`` dedupe key and is made only when no incident of the tenant has that key yet; the alert
rules are made (and evaluated) only when missing. Everything goes through the services
(numbers, clocks, timeline, outbox, audit), placed in the past with ``at=``.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from operations.incidents import alerting, services
from operations.incidents.models import (
    OPEN_STATUSES,
    AlertRule,
    AlertRuleDefault,
    Incident,
    IncidentSource,
    SeriousIncidentKind,
)
from operations.inventory.models import AISystem, Deployment
from tenants.audit import AUTOMATIC_LABEL, AuditActor, audit_actor_unless_set
from tenants.models import Membership, Tenant
from tenants.scoping import tenant_scope

DEMO_ACTOR = AuditActor(label=AUTOMATIC_LABEL, source="command")


def _minutes(value: float) -> dt.timedelta:
    return dt.timedelta(minutes=value)


def _people(tenant: Tenant):
    client = (
        Membership.objects.filter(tenant=tenant, user__is_active=True)
        .select_related("user")
        .order_by("role", "user__username")
        .first()
    )
    staff = list(services.assignable_staff(tenant=tenant).order_by("msp_role", "username"))
    # The tenant's own engineer owns its incidents; an MSP admin when it has none.
    engineer = next((user for user in staff if user.msp_role == "msp_engineer"), None)
    return (client.user if client else None), engineer or (staff[0] if staff else None)


def _open_incident(tenant, now, client, engineer, systems, deployments):
    start = now - _minutes(130)
    incident = services.incident_create(
        tenant=tenant,
        title=f"Inference latency p95 above 800 ms on {deployments[0].name}"
        if deployments
        else "Inference latency p95 above 800 ms",
        description="p95 latency rose from 240 ms to 900 ms after the 09:00 traffic peak.",
        severity="SEV2",
        category="performance",
        source=IncidentSource.ADMIN,
        dedupe_key="demo:open-latency",
        ai_systems=systems[:1],
        deployments=deployments[:1],
        at=start,
    )
    incident = services.incident_acknowledge(
        tenant=tenant, incident=incident, user=engineer, at=start + _minutes(9)
    )
    if engineer is not None:
        incident = services.incident_assign(
            tenant=tenant, incident=incident, assignee=engineer, at=start + _minutes(10)
        )
    incident = services.incident_transition(
        tenant=tenant,
        incident=incident,
        action="investigate",
        user=engineer,
        note="Looking at GPU memory pressure on the serving nodes.",
        note_internal=False,
        at=start + _minutes(25),
    )
    services.incident_comment(
        tenant=tenant,
        incident=incident,
        body="KV-cache eviction storm suspected; batch size was raised in yesterday's change.",
        internal=True,
        user=engineer,
        at=start + _minutes(40),
    )
    return incident


def _breached_incident(tenant, now, client, engineer, systems, deployments):
    # Eight days back: a full week holds every working day, so any plan's clock has run out.
    start = now - dt.timedelta(days=8)
    incident = services.incident_create(
        tenant=tenant,
        title="Model serving endpoint returns HTTP 503",
        description="The production endpoint answers 503 for roughly 30% of requests.",
        severity="SEV1",
        category="outage",
        source=IncidentSource.PORTAL if client else IncidentSource.API,
        reporter=client,
        dedupe_key="demo:breached-outage",
        ai_systems=systems[:1],
        at=start,
    )
    incident = services.incident_acknowledge(
        tenant=tenant, incident=incident, user=engineer, at=start + _minutes(41)
    )
    incident = services.incident_transition(
        tenant=tenant,
        incident=incident,
        action="investigate",
        user=engineer,
        at=start + _minutes(50),
    )
    incident = services.incident_wait_on_client(
        tenant=tenant,
        incident=incident,
        reason="Please approve a rolling restart of the inference nodes.",
        user=engineer,
        at=start + _minutes(70),
    )
    incident = services.incident_resume(
        tenant=tenant, incident=incident, user=engineer, at=start + _minutes(130)
    )
    services.incident_comment(
        tenant=tenant,
        incident=incident,
        body="Vendor ticket opened for the load balancer firmware; escalated to their L3.",
        internal=True,
        user=engineer,
        at=start + _minutes(160),
    )
    if engineer is not None:
        incident = services.incident_assign(
            tenant=tenant, incident=incident, assignee=engineer, at=start + _minutes(161)
        )
    # Nobody leaves a SEV1 alone for a week: traffic moved off the faulty balancer, the firmware
    # fix is scheduled, and the client hears about it every day.
    incident = services.incident_transition(
        tenant=tenant,
        incident=incident,
        action="mitigate",
        user=engineer,
        note="Traffic moved to the standby load balancer; errors are back under 0.1 %.",
        note_internal=False,
        at=start + dt.timedelta(days=1, hours=2),
    )
    services.incident_comment(
        tenant=tenant,
        incident=incident,
        body="The vendor's firmware fix is scheduled for tonight's maintenance window, 22:00.",
        internal=False,
        user=engineer,
        at=now - dt.timedelta(hours=20),
    )
    services.incident_comment(
        tenant=tenant,
        incident=incident,
        body="Firmware 4.2.1 staged on the primary; rollback plan in the change ticket.",
        internal=True,
        user=engineer,
        at=now - dt.timedelta(hours=3),
    )
    return incident


def _resolved_incident(tenant, now, client, engineer, systems, deployments):
    start = now - dt.timedelta(days=12)
    incident = services.incident_create(
        tenant=tenant,
        title="GPU node lost two GPUs (XID 79, fallen off the bus)",
        description="Training jobs on the node failed; capacity dropped by a quarter.",
        severity="SEV2",
        category="outage",
        source=IncidentSource.ALERT_RULE,
        dedupe_key="demo:resolved-xid",
        at=start,
    )
    incident = services.incident_acknowledge(
        tenant=tenant, incident=incident, user=engineer, at=start + _minutes(7)
    )
    if engineer is not None:
        incident = services.incident_assign(
            tenant=tenant, incident=incident, assignee=engineer, at=start + _minutes(8)
        )
    for action, after, note in (
        ("investigate", 15, "Node drained; jobs rescheduled on the remaining nodes."),
        ("mitigate", 55, "Capacity restored by moving jobs to the spare node."),
        ("resolve", 190, "Riser cable replaced by the colocation provider; GPUs back."),
    ):
        incident = services.incident_transition(
            tenant=tenant,
            incident=incident,
            action=action,
            user=engineer,
            note=note,
            note_internal=False,
            at=start + _minutes(after),
        )
    services.postmortem_save(
        tenant=tenant,
        incident=incident,
        summary="Two GPUs of one node dropped off the PCIe bus; jobs failed until rescheduled.",
        impact="25% less training capacity for three hours; two training runs restarted.",
        timeline_excerpt="\n".join(
            f"+{minutes} min  {text}"
            for minutes, text in (
                (0, "XID 79 alert fired"),
                (7, "Acknowledged"),
                (55, "Mitigated"),
                (190, "Resolved"),
            )
        ),
        root_cause="A worn riser cable; the node had been moved during rack maintenance.",
        action_items=[
            {
                "description": "Alert on XID 79 per GPU, not per node",
                "owner": "MSP operations",
                "due_date": (now + dt.timedelta(days=7)).date(),
                "done": False,
            },
            {
                "description": "Inspect riser cables after every rack move",
                "owner": "Colocation provider",
                "due_date": (now - dt.timedelta(days=2)).date(),
                "done": True,
            },
        ],
        user=engineer,
    )
    return incident


def _serious_incident(tenant, now, client, engineer, systems, deployments):
    start = now - dt.timedelta(days=3)
    incident = services.incident_create(
        tenant=tenant,
        title="Credit model denied applications for a whole postcode area",
        description="A data pipeline fault fed stale features; decisions skewed for 36 hours.",
        severity="SEV1",
        category="model_quality",
        source=IncidentSource.COMPLIANCE_CHECK,
        dedupe_key="demo:serious-drift",
        ai_systems=systems[-1:],
        at=start,
    )
    incident = services.incident_acknowledge(
        tenant=tenant, incident=incident, user=engineer, at=start + _minutes(12)
    )
    incident = services.incident_update(
        tenant=tenant,
        incident=incident,
        user=engineer,
        serious=True,
        serious_kind=SeriousIncidentKind.WIDESPREAD_INFRINGEMENT,
        aware_at=start + _minutes(90),
        at=start + _minutes(95),
    )
    return incident


def _new_incident(tenant, now, client, engineer, systems, deployments):
    return services.incident_create(
        tenant=tenant,
        title="Chat assistant answers in the wrong language",
        description="Since this morning some answers come back in German for English prompts.",
        severity="SEV3",
        category="model_quality",
        source=IncidentSource.PORTAL if client else IncidentSource.API,
        reporter=client,
        dedupe_key="demo:new-language",
        at=now - _minutes(20),
    )


def _closed_incident(tenant, now, client, engineer, systems, deployments):
    """A calm tenant's kind of incident: a small fault, fixed within the hour, closed by the
    client once they had checked."""
    start = now - dt.timedelta(days=5, hours=3)
    incident = services.incident_create(
        tenant=tenant,
        title="Nightly batch scoring finished two hours late",
        description="The overnight scoring run queued behind a dataset refresh.",
        severity="SEV3",
        category="performance",
        source=IncidentSource.ALERT_RULE,
        dedupe_key="demo:closed-batch",
        ai_systems=systems[1:2],
        at=start,
    )
    incident = services.incident_acknowledge(
        tenant=tenant, incident=incident, user=engineer, at=start + _minutes(4)
    )
    if engineer is not None:
        incident = services.incident_assign(
            tenant=tenant, incident=incident, assignee=engineer, at=start + _minutes(5)
        )
    incident = services.incident_transition(
        tenant=tenant,
        incident=incident,
        action="resolve",
        user=engineer,
        note="Refresh and scoring now run in sequence; the backlog cleared in 35 minutes.",
        note_internal=False,
        at=start + _minutes(42),
    )
    return services.incident_transition(
        tenant=tenant,
        incident=incident,
        action="close",
        user=client,
        note="Checked this morning's scores: all there. Thanks.",
        note_internal=False,
        at=start + dt.timedelta(hours=20),
    )


def _question_incident(tenant, now, client, engineer, systems, deployments):
    """An onboarding client's first ticket: a low-severity question about the pilot."""
    start = now - dt.timedelta(hours=26)
    incident = services.incident_create(
        tenant=tenant,
        title="Which GPU exporter version should the pilot nodes run?",
        description="Our platform team wants to install the agent before the first inventory.",
        severity="SEV4",
        category="performance",
        source=IncidentSource.PORTAL if client else IncidentSource.API,
        reporter=client,
        dedupe_key="demo:onboarding-question",
        ai_systems=systems[:1],
        at=start,
    )
    incident = services.incident_acknowledge(
        tenant=tenant, incident=incident, user=engineer, at=start + _minutes(35)
    )
    if engineer is not None:
        incident = services.incident_assign(
            tenant=tenant, incident=incident, assignee=engineer, at=start + _minutes(36)
        )
    services.incident_comment(
        tenant=tenant,
        incident=incident,
        body="dcgm-exporter 3.3 or later; the onboarding runbook has the Helm values.",
        internal=False,
        user=engineer,
        at=start + _minutes(50),
    )
    return incident


_BUILDERS = {
    "demo:open-latency": _open_incident,
    "demo:breached-outage": _breached_incident,
    "demo:resolved-xid": _resolved_incident,
    "demo:serious-drift": _serious_incident,
    "demo:new-language": _new_incident,
    "demo:closed-batch": _closed_incident,
    "demo:onboarding-question": _question_incident,
}
#: A busy tenant: open, breached-but-mitigated, resolved, serious and brand-new incidents.
BUSY_SCENARIOS = (
    "demo:open-latency",
    "demo:breached-outage",
    "demo:resolved-xid",
    "demo:serious-drift",
    "demo:new-language",
)
#: A calm, mature tenant: a couple of faults, each fixed quickly.
CALM_SCENARIOS = ("demo:resolved-xid", "demo:closed-batch")
#: A client mid-onboarding: one question about its pilot.
ONBOARDING_SCENARIOS = ("demo:onboarding-question",)
#: A suspended client: what happened while it was active, all of it over.
PAST_SCENARIOS = ("demo:resolved-xid",)


def seed_incidents(
    tenant: Tenant,
    *,
    scenarios: tuple[str, ...] = BUSY_SCENARIOS,
    alert_rules: bool = True,
    now: dt.datetime | None = None,
) -> list[Incident]:
    """Create the demo incidents of ``tenant`` among ``scenarios`` (dedupe keys) that do not
    exist yet, and the alert rules when asked; return the new incidents."""
    now = now or timezone.now()
    created = []
    with audit_actor_unless_set(DEMO_ACTOR), tenant_scope(tenant.id), transaction.atomic():
        existing = set(
            Incident.objects.filter(tenant=tenant, dedupe_key__startswith="demo:").values_list(
                "dedupe_key", flat=True
            )
        )
        client, engineer = _people(tenant)
        systems = list(AISystem.objects.filter(tenant=tenant).order_by("name")[:3])
        # The production deployment whose latency the demo telemetry spikes.
        deployments = list(
            Deployment.objects.filter(tenant=tenant, environment="production").order_by("name")[:1]
        )
        for key in scenarios:
            if key not in existing:
                build = _BUILDERS[key]
                created.append(build(tenant, now, client, engineer, systems, deployments))
        if alert_rules:
            created.extend(seed_alert_rules(tenant, now=now))
        if created:
            # Only on a run that made something: a second run changes nothing (breaches of
            # incidents other areas open later are marked by the scheduled scan).
            services.incident_sla_breaches_mark(tenant=tenant, now=now)
    return created


#: The one incident left as it came in: it was raised minutes before the seed.
_UNTOUCHED = "demo:new-language"
#: How long the on-call engineer takes to pick up what an alert or a scan opened.
_PICKUP = _minutes(12)


def _pick_up(tenant, incident, engineer, *, at: dt.datetime, now: dt.datetime) -> Incident:
    """Acknowledge and investigate; a compliance incident (a prohibited use found by the scan)
    is contained at once, and one older than a day has had news for the client since."""
    incident = services.incident_acknowledge(tenant=tenant, incident=incident, user=engineer, at=at)
    compliance = incident.category == "compliance"
    incident = services.incident_transition(
        tenant=tenant,
        incident=incident,
        action="investigate",
        user=engineer,
        note=(
            "The system is frozen in the register while legal reviews the use case."
            if compliance
            else "Investigating; the next update follows within the hour."
        ),
        note_internal=False,
        at=at,
    )
    if compliance:
        incident = services.incident_transition(
            tenant=tenant,
            incident=incident,
            action="mitigate",
            user=engineer,
            note="Contained: no work on the proposal proceeds until legal signs it off.",
            note_internal=False,
            at=min(at + dt.timedelta(hours=4), now),
        )
    if compliance and now - incident.created_at > dt.timedelta(days=1):
        services.incident_comment(
            tenant=tenant,
            incident=incident,
            body="Status: still contained. The review with your legal team is booked this week.",
            internal=False,
            user=engineer,
            at=now - dt.timedelta(hours=22),
        )
    return incident


def seed_incident_owners(
    tenant: Tenant, *, close_out: bool = False, now: dt.datetime | None = None
) -> int:
    """The on-call engineer's pass over what the demo opened, alerts and scans included: every
    open incident but the brand-new one gets an owner, and a SEV1 or SEV2 nobody acknowledged is
    acknowledged and investigated, so nothing serious sits untouched. Call it on the run that
    made the demo's incidents (it would otherwise pick up incidents opened since). With
    ``close_out`` (a client about to be suspended) every open incident is then resolved.
    Returns how many incidents it changed."""
    now = now or timezone.now()
    changed = 0
    with audit_actor_unless_set(DEMO_ACTOR), tenant_scope(tenant.id), transaction.atomic():
        _, engineer = _people(tenant)
        if engineer is None:
            return 0
        unowned = (
            Incident.objects.filter(tenant=tenant, status__in=OPEN_STATUSES, assignee__isnull=True)
            .exclude(dedupe_key=_UNTOUCHED)
            .order_by("pk")
        )
        for incident in unowned:
            at = max(incident.created_at, min(incident.created_at + _PICKUP, now))
            if incident.severity in ("SEV1", "SEV2") and incident.status == "triggered":
                incident = _pick_up(tenant, incident, engineer, at=at, now=now)
            services.incident_assign(
                tenant=tenant, incident=incident, assignee=engineer, user=engineer, at=at
            )
            changed += 1
        if close_out:
            for incident in Incident.objects.filter(tenant=tenant, status__in=OPEN_STATUSES):
                services.incident_resolve(
                    tenant=tenant,
                    incident=incident,
                    user=engineer,
                    note="Closed out with the client before the service was suspended.",
                    note_internal=False,
                    at=max(incident.created_at, now - dt.timedelta(hours=1)),
                )
                changed += 1
        if changed:
            # The scan and the gates opened theirs after seed_incidents marked breaches.
            services.incident_sla_breaches_mark(tenant=tenant, now=now)
    return changed


# --- Alert rules on the demo telemetry ----------------------------------------------------------
#
# The demo telemetry (operations.telemetry.demo) has saturated GPU nodes (``*-gpu-hot-*``, about
# 97 %), an idle one (``*-gpu-idle-01``, about 2 %), diurnal nodes that never pass 90 % nor drop
# under 5 %, and a latency spike (about 7 × p95, errors about 6 %) on the first production
# deployment from 8 to 6 hours before the seed. No GPU runs above 85 °C there: the per-GPU
# overheating rule is shown in force, quiet.

DEMO_DEFAULTS = (
    {
        "name": "GPU saturated",
        "description": "Every sample above 90 % for 15 minutes: the node has no headroom left.",
        "metric": "gpu_utilization",
        "target": "compute",
        "condition": "above",
        "threshold": 90.0,
        "window_minutes": 15,
        "severity": "SEV3",
        "category": "performance",
    },
    {
        "name": "Production inference latency p95 above 500 ms",
        "metric": "inference_latency_p95_ms",
        "target": "deployment",
        "environment": "production",
        "condition": "above",
        "threshold": 500.0,
        "window_minutes": 15,
        "severity": "SEV2",
        "category": "performance",
    },
)

DEMO_TENANT_RULES = (
    {
        "name": "Idle GPU node",
        "description": "Paid-for GPUs doing nothing for an hour: a candidate for right-sizing.",
        "metric": "gpu_utilization",
        "target": "compute",
        "resource_pattern": "*-gpu-*",
        "condition": "below",
        "threshold": 5.0,
        "window_minutes": 60,
        "severity": "SEV4",
        "category": "cost_anomaly",
        "auto_resolve": True,
    },
    {
        "name": "Production error rate above 2 %",
        "metric": "error_rate",
        "target": "deployment",
        "environment": "production",
        "condition": "above",
        "threshold": 2.0,
        "window_minutes": 10,
        "severity": "SEV2",
        "category": "outage",
    },
    {
        "name": "GPU overheating",
        "description": (
            "One GPU above 85 °C for 15 minutes, judged on each GPU's own series: one incident "
            "per GPU, naming it, resolved when that GPU cools down."
        ),
        "metric": "gpu_temperature_celsius",
        "target": "gpu",
        "resource_pattern": "*-gpu-*",
        "condition": "above",
        "threshold": 85.0,
        "window_minutes": 15,
        "severity": "SEV3",
        "category": "performance",
    },
    {
        "name": "GPU node stopped reporting",
        "description": (
            "No utilisation sample for 15 minutes from a node that was reporting: the agent, "
            "the exporter or the node is down. Resolves itself when data returns."
        ),
        "metric": "gpu_utilization",
        "target": "compute",
        "resource_pattern": "*-gpu-*",
        "condition": "no_data",
        "threshold": None,
        "window_minutes": 15,
        "severity": "SEV2",
        "category": "outage",
    },
)


def seed_alert_rule_defaults() -> list[AlertRuleDefault]:
    """The MSP-wide default rules, made once (found by name)."""
    existing = set(AlertRuleDefault.objects.values_list("name", flat=True))
    return [
        alerting.alert_rule_default_save(**fields)
        for fields in DEMO_DEFAULTS
        if fields["name"] not in existing
    ]


def seed_alert_rules(tenant: Tenant, *, now: dt.datetime | None = None) -> list[Incident]:
    """The demo's alert rules for ``tenant``, evaluated once on its demo telemetry.

    Evaluated as of the latency spike (the latency, error, saturated and idle rules fire), 15
    minutes after it (latency and errors auto-resolve), and now (the saturated and idle nodes
    are still firing; every node reports, so the silence rule stays quiet until the demo's
    telemetry, which is not fed live, is 15 minutes old). Only when the rules are new: a second
    run changes nothing. Returns the incidents the rules opened.
    """
    now = now or timezone.now()
    with audit_actor_unless_set(DEMO_ACTOR), tenant_scope(tenant.id), transaction.atomic():
        seed_alert_rule_defaults()
        existing = set(AlertRule.objects.filter(tenant=tenant).values_list("name", flat=True))
        new = [
            alerting.alert_rule_create(tenant=tenant, **fields)
            for fields in DEMO_TENANT_RULES
            if fields["name"] not in existing
        ]
        if not new:
            return []
        opened = []
        for as_of in (now - dt.timedelta(hours=7), now - dt.timedelta(hours=5, minutes=45), now):
            evaluation = alerting.alert_rules_evaluate(tenant=tenant, as_of=as_of)
            opened.extend(o.incident_id for o in evaluation.outcomes if o.state == "opened")
        return list(Incident.objects.filter(pk__in=opened).order_by("pk"))
