"""Alert rules on telemetry: writing them (a tenant's rules and overrides, the MSP-wide
defaults) and evaluating them, which opens, groups and auto-resolves incidents through
``incident_open_or_append`` and ``incident_auto_resolve``. Their reads are in
``operations.incidents.selectors`` (the window itself is telemetry's selector)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, replace

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from operations.incidents.models import (
    OPEN_STATUSES,
    AlertCondition,
    AlertRule,
    AlertRuleDefault,
    AlertTarget,
    Incident,
)
from operations.incidents.selectors import (
    SilenceWatch,
    alert_open_incidents,
    alert_rule_source,
    alert_rules_effective,
    alert_silence_watch,
    alert_window_stats,
)
from operations.incidents.services import (
    incident_auto_resolve,
    incident_note_internal,
    incident_open_or_append,
)
from operations.inventory.models import ComputeResource, Deployment, GpuDevice
from operations.telemetry.metrics import METRICS_BY_NAME, Metric
from operations.telemetry.selectors import WindowStats
from tenants.audit import (
    audit_changes,
    audit_record,
    audit_snapshot,
    audited_create,
    audited_update,
)
from tenants.models import AuditAction, Tenant
from tenants.owned import owned_object_delete
from tenants.scoping import all_tenants_scope, tenant_advisory_lock

# --- Rules ---------------------------------------------------------------------------------------

ALERT_RULE_FIELDS = (
    "name",
    "description",
    "enabled",
    "metric",
    "target",
    "resource_pattern",
    "site_code",
    "gpu_model",
    "environment",
    "condition",
    "threshold",
    "window_minutes",
    "severity",
    "category",
    "auto_resolve",
)


def _check_rule_fields(fields: dict) -> None:
    unknown = set(fields) - set(ALERT_RULE_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be set here."))


@transaction.atomic
def alert_rule_create(
    *, tenant: Tenant, default_rule: AlertRuleDefault | None = None, **fields
) -> AlertRule:
    """Add a rule to ``tenant``. With ``default_rule`` it overrides that MSP-wide default for
    this tenant: fields not given are copied from the default, and ``enabled=False`` switches
    the default off. Validated (metric, threshold, window, filter) and audited."""
    _check_rule_fields(fields)
    if default_rule is not None:
        fields = {name: getattr(default_rule, name) for name in ALERT_RULE_FIELDS} | fields
    rule = AlertRule(tenant=tenant, default_rule=default_rule, **fields)
    return audited_create(tenant=tenant, instance=rule)


@transaction.atomic
def alert_rule_update(*, tenant: Tenant, rule: AlertRule, **fields) -> AlertRule:
    """Change a tenant's rule (the default it overrides stays the same)."""
    _check_rule_fields(fields)
    assert rule.tenant_id == tenant.id, "rule is not in this tenant"
    rule = AlertRule.objects.select_for_update().get(pk=rule.pk, tenant=tenant)
    was_enabled = rule.enabled
    rule = audited_update(tenant=tenant, instance=rule, data=fields)
    if was_enabled and not rule.enabled:
        _note_rule_stopped(tenant, rule, "was switched off")
    return rule


def _note_rule_stopped(tenant: Tenant, rule: AlertRule, what: str) -> None:
    """Tell the open incidents of a rule that stopped that nobody will update or auto-resolve
    them any more (an internal note: it is the MSP's to close them)."""
    incidents = Incident.objects.filter(
        tenant=tenant, status__in=OPEN_STATUSES, dedupe_key__startswith=f"{rule.dedupe_prefix}:"
    )
    for incident in incidents:
        incident_note_internal(
            tenant=tenant,
            incident=incident,
            body=(
                f"The alert rule '{rule.name}' {what}: it no longer adds to this incident or "
                "resolves it."
            ),
        )


@transaction.atomic
def alert_rule_delete(*, tenant: Tenant, rule: AlertRule) -> None:
    """Delete a tenant's rule; a deleted override puts the MSP-wide default back in force.
    Incidents it opened stay open, with a note that the rule is gone."""
    assert rule.tenant_id == tenant.id, "rule is not in this tenant"
    if rule.default_rule_id is None and rule.enabled:
        _note_rule_stopped(tenant, rule, "was deleted")
    owned_object_delete(tenant=tenant, instance=rule)


@transaction.atomic
def alert_rule_default_save(*, rule: AlertRuleDefault | None = None, **fields) -> AlertRuleDefault:
    """Create (no ``rule``) or change an MSP-wide default rule; audited without a tenant."""
    _check_rule_fields(fields)
    if rule is None:
        return audited_create(tenant=None, instance=AlertRuleDefault(**fields))
    rule = AlertRuleDefault.objects.select_for_update().get(pk=rule.pk)
    return audited_update(tenant=None, instance=rule, data=fields)


@transaction.atomic
def alert_rule_default_delete(*, rule: AlertRuleDefault) -> None:
    """Delete an MSP-wide default, and with it every tenant's override of it."""
    # The overrides live in many tenants: delete them inside a scope of all of them (the
    # cascade alone would run unscoped, and row-level security would hide them from it).
    with all_tenants_scope() as tenant_ids:
        if tenant_ids:
            overrides = AlertRule.objects.filter(default_rule=rule).select_related("tenant")
            for override in overrides:
                alert_rule_delete(tenant=override.tenant, rule=override)
    audit_record(
        tenant=None,
        action=AuditAction.DELETE,
        instance=rule,
        changes=audit_changes(audit_snapshot(rule), {}),
    )
    rule.delete()


# --- Evaluation ----------------------------------------------------------------------------------


class AlertState:
    """What one evaluation did for one (rule, resource)."""

    OPENED = "opened"  # the condition held for the window: a new incident
    APPENDED = "appended"  # it held again: an alert entry on the open incident
    FIRING = "firing"  # still holding, already reported within the window: nothing written
    RESOLVED = "resolved"  # cleared for the window: the open incident auto-resolved
    CLEARED = "cleared"  # cleared, but the rule does not auto-resolve: the incident stays open


@dataclass(frozen=True)
class AlertOutcome:
    rule_id: int
    rule_source: str
    rule_name: str
    resource_kind: str
    resource_id: int
    resource_name: str
    state: str
    incident_id: int | None
    incident: str
    lowest: float | None  # None for a no-data rule: it judges when, not what
    highest: float | None
    samples: int
    last_sample_at: dt.datetime | None


@dataclass(frozen=True)
class AlertEvaluation:
    as_of: dt.datetime
    rules: int
    outcomes: list[AlertOutcome]
    dry_run: bool = False

    def count(self, state: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.state == state)

    def as_dict(self) -> dict:
        states = (
            AlertState.OPENED,
            AlertState.APPENDED,
            AlertState.FIRING,
            AlertState.RESOLVED,
            AlertState.CLEARED,
        )
        return {
            "as_of": self.as_of,
            "dry_run": self.dry_run,
            "rules": self.rules,
            "counts": {state: self.count(state) for state in states},
            "outcomes": [asdict(outcome) for outcome in self.outcomes],
        }


# The advisory lock that runs the evaluations of one tenant one at a time.
_ALERT_EVALUATION_LOCK = "incidents.alert_evaluation"


def _window_verdict(rule, stats: WindowStats, start: dt.datetime, end: dt.datetime) -> str | None:
    """ "fire", "clear", or None when the window cannot tell.

    The window is judged only when it has samples in both halves, so a series that has just
    started (or stopped) reporting neither fires nor clears on a sample or two. Choose a window
    of at least twice the sampling interval.
    """
    middle = start + (end - start) / 2
    if not (stats.first_at <= middle <= stats.last_at):
        return None
    if rule.condition == AlertCondition.ABOVE:
        if stats.lowest > rule.threshold:
            return "fire"
        if stats.highest <= rule.threshold:
            return "clear"
    else:
        if stats.highest < rule.threshold:
            return "fire"
        if stats.lowest >= rule.threshold:
            return "clear"
    return None


def _silence_verdict(watch: SilenceWatch, start: dt.datetime, is_open: bool) -> str | None:
    """ "fire" when the resource has sent nothing since ``start`` (the window), "clear" once it
    reports again while its incident is open; None when there is nothing to do (reporting and
    quiet, or silent for longer than the rule remembers and never reported on)."""
    reporting = watch.last_sample_at is not None and watch.last_sample_at >= start
    if reporting:
        return "clear" if is_open else None
    if watch.last_sample_at is None and not is_open:
        return None
    return "fire"


# How the texts introduce a rule's resource: a GPU's name says what it is ("node GPU 2").
_TARGET_NOUNS = {
    AlertTarget.COMPUTE: "compute resource ",
    AlertTarget.DEPLOYMENT: "model deployment ",
}


def _silence_texts(rule, metric: Metric, name: str, watch: SilenceWatch, end) -> dict:
    target = _TARGET_NOUNS.get(rule.target, "")
    last = watch.last_sample_at
    seen = f"since {last:%Y-%m-%d %H:%M} UTC" if last else "for longer than a day"
    return {
        "title": f"{rule.name}: {name}"[:200],
        "description": (
            f"Alert rule '{rule.name}': no {metric.name} from {target}{name} for "
            f"{rule.window_minutes} min."
        ),
        "detail": f"No {metric.name} sample from {name} {seen} (checked at {end:%H:%M} UTC).",
        "resolved": (
            f"Auto-resolved: {name} is reporting {metric.name} again "
            f"(latest sample {last:%Y-%m-%d %H:%M} UTC)."
            if last
            else ""
        ),
    }


def _alert_texts(rule, metric: Metric, name: str, stats, start, end) -> dict:
    if rule.condition == AlertCondition.NO_DATA:
        return _silence_texts(rule, metric, name, stats, end)
    unit = f" {metric.unit}" if metric.unit else ""
    above = rule.condition == AlertCondition.ABOVE
    observed = f"{stats.lowest:g} to {stats.highest:g}{unit} over {stats.samples} samples"
    target = _TARGET_NOUNS.get(rule.target, "")
    return {
        "title": f"{rule.name}: {name}"[:200],
        "description": (
            f"Alert rule '{rule.name}': {metric.name} {'above' if above else 'below'} "
            f"{rule.threshold:g}{unit} for {rule.window_minutes} min on {target}{name}."
        ),
        "detail": (
            f"{metric.name} on {name} stayed {'above' if above else 'below'} "
            f"{rule.threshold:g}{unit} from {start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC "
            f"({observed})."
        ),
        "resolved": (
            f"Auto-resolved: {metric.name} on {name} has been "
            f"{'at or below' if above else 'at or above'} {rule.threshold:g}{unit} for "
            f"{rule.window_minutes} min ({observed})."
        ),
    }


def alert_rules_evaluate(
    *, tenant: Tenant, as_of: dt.datetime | None = None, dry_run: bool = False
) -> AlertEvaluation:
    """Evaluate the rules in force for ``tenant`` on its telemetry up to ``as_of`` (now).

    Per rule, one aggregate query over the window [as_of − window, as_of] grouped by resource:
    "above" fires when every sample is above the threshold (lowest > threshold) and clears when
    none is (highest ≤ threshold); "below" the other way round. A firing resource opens an
    incident with the dedupe key ``<rule prefix>:<kind>:<resource id>`` or adds an alert entry to
    the open one, at most once per window (in between it is reported as still firing and
    nothing is written). A cleared resource resolves its open incident, with the reason on the
    timeline, when the rule auto-resolves. Idempotent: evaluations of a tenant are serialised,
    and a second one at the same moment finds everything already done.

    A rule aimed at each GPU judges every GPU of the nodes it selects on its own series
    (``<rule prefix>:gpu:<GPU id>``): one incident per GPU, about its node, naming the GPU by
    index and UUID, resolved when that GPU clears; the node's aggregate is left to compute rules.

    "no_data" rules (silence) are read together, in a fixed number of queries whatever their
    number (``alert_silence_watch``): a selected resource that reported the metric before but
    not since as_of − window opens an incident (once: a silence is not repeated every window),
    and its first sample back resolves it.

    ``dry_run`` evaluates and reports exactly as a real run would, then rolls every write back
    (incidents, numbers, timeline, audit, outbox): a way to try a threshold.
    """
    as_of = as_of or timezone.now()
    with transaction.atomic():
        tenant_advisory_lock(tenant.id, _ALERT_EVALUATION_LOCK)
        rules = alert_rules_effective(tenant=tenant)
        open_incidents = alert_open_incidents(tenant=tenant)
        decisions = []
        silence_rules = [rule for rule in rules if rule.condition == AlertCondition.NO_DATA]
        for rule in rules:
            if rule.condition == AlertCondition.NO_DATA:
                continue
            start = as_of - dt.timedelta(minutes=rule.window_minutes)
            for stats in alert_window_stats(tenant=tenant, rule=rule, start=start, end=as_of):
                verdict = _window_verdict(rule, stats, start, as_of)
                if verdict is None:
                    continue
                key = f"{rule.dedupe_prefix}:{rule.target}:{stats.resource_id}"
                if verdict == "clear" and key not in open_incidents:
                    continue  # healthy, nothing to resolve
                decisions.append((rule, stats, verdict, key, start))
        for watch in alert_silence_watch(tenant=tenant, rules=silence_rules, as_of=as_of):
            start = as_of - dt.timedelta(minutes=watch.rule.window_minutes)
            key = f"{watch.rule.dedupe_prefix}:{watch.rule.target}:{watch.resource_id}"
            verdict = _silence_verdict(watch, start, key in open_incidents)
            if verdict is not None:
                decisions.append((watch.rule, watch, verdict, key, start))
        resources = _alert_resources(tenant, decisions)
        outcomes = []
        for rule, stats, verdict, key, start in decisions:
            resource = resources.get((rule.target, stats.resource_id))
            outcome = _alert_apply(
                tenant, rule, stats, verdict, key, start, as_of, resource, open_incidents
            )
            if outcome is not None:
                outcomes.append(outcome)
        if dry_run:
            transaction.set_rollback(True)
            # The numbers of incidents that were never kept mean nothing.
            outcomes = [
                replace(o, incident_id=None, incident="") if o.state == AlertState.OPENED else o
                for o in outcomes
            ]
    return AlertEvaluation(as_of=as_of, rules=len(rules), outcomes=outcomes, dry_run=dry_run)


def gpu_display_name(gpu: GpuDevice) -> str:
    """A GPU as alerts name it: its node, index (and MIG instance) and UUID."""
    mig = f" MIG {gpu.mig_instance}" if gpu.mig_instance else ""
    uuid = f" ({gpu.uuid})" if gpu.uuid else ""
    return f"{gpu.compute.hostname} GPU {gpu.index}{mig}{uuid}"


def _alert_resources(tenant: Tenant, decisions: list) -> dict:
    """The inventory rows the decisions are about, by (target, id), as (the row the incident
    is about, its name): one query per target. A GPU's incident is about its node."""
    wanted: dict[str, set[int]] = {target: set() for target in AlertTarget.values}
    for rule, stats, *_ in decisions:
        wanted[rule.target].add(stats.resource_id)
    found = {}
    for target, model, name in (
        (AlertTarget.COMPUTE, ComputeResource, "hostname"),
        (AlertTarget.DEPLOYMENT, Deployment, "name"),
    ):
        if wanted[target]:
            rows = model.objects.filter(tenant=tenant, pk__in=wanted[target]).only("pk", name)
            found.update({(target, row.pk): (row, getattr(row, name)) for row in rows})
    if wanted[AlertTarget.GPU]:
        gpus = (
            GpuDevice.objects.filter(tenant=tenant, pk__in=wanted[AlertTarget.GPU])
            .select_related("compute")
            .only("pk", "index", "uuid", "mig_instance", "compute__id", "compute__hostname")
        )
        found.update(
            {(AlertTarget.GPU, gpu.pk): (gpu.compute, gpu_display_name(gpu)) for gpu in gpus}
        )
    return found


def _alert_apply(
    tenant, rule, stats, verdict, key, start, as_of, resource, open_incidents
) -> AlertOutcome | None:
    metric = METRICS_BY_NAME[rule.metric]
    row, name = resource if resource else (None, f"{rule.target} #{stats.resource_id}")
    texts = _alert_texts(rule, metric, name, stats, start, as_of)
    existing = open_incidents.get(key)
    incident_id, reference = (existing["pk"], existing["reference"]) if existing else (None, "")
    if verdict == "fire":
        if row is None:
            return None  # samples of a resource no longer in the inventory
        last = existing["last_alert_at"] if existing else None
        # A silence is one fact from its start: said once, not again every window.
        silent = rule.condition == AlertCondition.NO_DATA
        if existing and (silent or (last is not None and last > start)):
            state = AlertState.FIRING
        else:
            about = "deployments" if rule.target == AlertTarget.DEPLOYMENT else "compute"
            incident, created = incident_open_or_append(
                tenant=tenant,
                dedupe_key=key,
                title=texts["title"],
                category=rule.category,
                severity=rule.severity,
                description=texts["description"],
                detail=texts["detail"],
                at=as_of,
                **{about: [row]},
            )
            state = AlertState.OPENED if created else AlertState.APPENDED
            incident_id, reference = incident.pk, incident.reference
    elif rule.auto_resolve:
        incident_auto_resolve(tenant=tenant, dedupe_key=key, reason=texts["resolved"], at=as_of)
        state = AlertState.RESOLVED
    else:
        state = AlertState.CLEARED
    return AlertOutcome(
        rule_id=rule.pk,
        rule_source=alert_rule_source(rule),
        rule_name=rule.name,
        resource_kind=rule.target,
        resource_id=stats.resource_id,
        resource_name=name,
        state=state,
        incident_id=incident_id,
        incident=reference,
        **_observed(stats),
    )


def _observed(stats: WindowStats | SilenceWatch) -> dict:
    """What the outcome reports of the samples judged."""
    if isinstance(stats, SilenceWatch):
        return {
            "lowest": None,
            "highest": None,
            "samples": 0,
            "last_sample_at": stats.last_sample_at,
        }
    return {
        "lowest": stats.lowest,
        "highest": stats.highest,
        "samples": stats.samples,
        "last_sample_at": stats.last_at,
    }
