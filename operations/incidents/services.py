"""Writes for incidents. Every write is one transaction holding its timeline entries, its audit
event and its outbox event, so integrations never hear of a change that did not happen.

Services lock the incident row (``select_for_update``) before changing it and return the fresh
instance; callers should use the returned object. ``at=`` lets demo data and tests place a change
in time; it defaults to now.

Alert rules (``operations.incidents.alerting``) build on two services here:
``incident_open_or_append`` opens an incident or adds to the open one with the same dedupe key,
and ``incident_auto_resolve`` resolves it once the condition has cleared.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q
from django.utils import timezone

from operations.events.services import event_record
from operations.incidents.models import (
    INCIDENT_ACTIONS,
    OPEN_STATUSES,
    REGULATOR_DEADLINE_DAYS,
    WAITABLE_STATUSES,
    Incident,
    IncidentCounter,
    IncidentSource,
    IncidentStatus,
    Postmortem,
    PostmortemActionItem,
    SeriousIncidentKind,
    TimelineEntry,
    TimelineKind,
)
from operations.incidents.selectors import incident_event_payload, incident_moves
from operations.incidents.sla import (
    WorkingCalendar,
    add_business_duration,
    business_duration_between,
    calendar_for_plan,
)
from tenants.audit import audit_changes, audit_record, audit_since, audit_snapshot, current_actor
from tenants.models import AuditAction, MspRole, ServicePlan, Severity, Tenant

User = get_user_model()

POSTMORTEM_SEVERITIES = (Severity.SEV1, Severity.SEV2)
POSTMORTEM_STATUSES = (IncidentStatus.RESOLVED, IncidentStatus.CLOSED)

# Outbox topics.
TOPIC_CREATED = "incident.opened"
TOPIC_ACKNOWLEDGED = "incident.acknowledged"
TOPIC_BREACHED = "incident.sla_breached"
TOPIC_RESOLVED = "incident.resolved"
TOPIC_REOPENED = "incident.reopened"
TOPIC_CLOSED = "incident.closed"
_TOPIC_FOR_ACTION = {
    "acknowledge": TOPIC_ACKNOWLEDGED,
    "resolve": TOPIC_RESOLVED,
    "reopen": TOPIC_REOPENED,
    "close": TOPIC_CLOSED,
}

_SEVERITY_RANK = {value: rank for rank, value in enumerate(Severity.values)}  # SEV1 = 0


# --- Plumbing ----------------------------------------------------------------------------------


def user_display_name(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


def _author(user) -> tuple[object | None, str]:
    """The user an entry is attributed to, and the label shown (job and system actors too)."""
    if user is None:
        actor = current_actor()
        user = actor.user
        if user is None:
            return None, actor.label[:200]
    return user, user_display_name(user)[:200]


def _now(at: dt.datetime | None) -> dt.datetime:
    return at or timezone.now()


def _plan(tenant: Tenant) -> ServicePlan:
    # A tenant always has a plan (tenant_create makes one); the defaults cover a missing row.
    return ServicePlan.objects.filter(tenant=tenant).first() or ServicePlan(
        business_days=[0, 1, 2, 3, 4]
    )


def _locked(tenant: Tenant, incident: Incident) -> Incident:
    assert incident.tenant_id == tenant.id, "incident is not in this tenant"
    return Incident.objects.select_for_update().get(pk=incident.pk, tenant=tenant)


def _entry(
    incident: Incident,
    *,
    kind: str,
    body: str,
    internal: bool = False,
    user=None,
    data: dict | None = None,
    at: dt.datetime | None = None,
) -> TimelineEntry:
    author, label = _author(user)
    entry = TimelineEntry(
        tenant_id=incident.tenant_id,
        incident=incident,
        kind=kind,
        internal=internal,
        body=body,
        data=data or {},
        author=author,
        author_label=label,
        created_at=_now(at),
    )
    entry.full_clean()
    entry.save()
    return entry


def _event(tenant: Tenant, topic: str, incident: Incident, **extra) -> None:
    event_record(tenant=tenant, topic=topic, payload={**incident_event_payload(incident), **extra})


# --- SLA clocks ----------------------------------------------------------------------------------


def _ack_clock_running(incident: Incident) -> bool:
    return incident.status == IncidentStatus.TRIGGERED and incident.acknowledged_at is None


def _resolve_clock_running(incident: Incident) -> bool:
    return incident.status in OPEN_STATUSES and incident.waiting_since is None


def _recompute_clocks(incident: Incident, plan: ServicePlan, calendar: WorkingCalendar) -> None:
    """Deadlines of the clocks still running, from the targets of the current severity.

    A stopped clock keeps the target and deadline it stopped with; a recorded breach stands.
    """
    ack_minutes, resolve_minutes = plan.sla_target(incident.severity)
    if _ack_clock_running(incident):
        incident.ack_target_minutes = ack_minutes
        incident.ack_due_at = add_business_duration(
            incident.created_at, dt.timedelta(minutes=ack_minutes), calendar
        )
    if incident.status in OPEN_STATUSES:
        incident.resolve_target_minutes = resolve_minutes
        if incident.waiting_since is None:
            incident.resolve_due_at = add_business_duration(
                incident.created_at,
                dt.timedelta(minutes=resolve_minutes) + incident.sla_paused,
                calendar,
            )
        else:
            incident.resolve_due_at = None


def _pause_ends(incident: Incident, calendar: WorkingCalendar, at: dt.datetime) -> None:
    """Close an open pause (waiting on the client): its working time no longer counts."""
    if incident.waiting_since is not None:
        incident.sla_paused += max(
            business_duration_between(incident.waiting_since, at, calendar), dt.timedelta(0)
        )
        incident.waiting_since = None


# --- Validation ----------------------------------------------------------------------------------


def _check_same_tenant(tenant: Tenant, field: str, objects: Iterable[models.Model]) -> list:
    objects = list(objects)
    for obj in objects:
        if obj.tenant_id != tenant.id:
            raise ValidationError({field: f"That {obj._meta.verbose_name} does not exist here."})
    return objects


def _check_dedupe_key_free(tenant: Tenant, dedupe_key: str, exclude_pk=None) -> None:
    if not dedupe_key:
        return
    clash = Incident.objects.filter(tenant=tenant, dedupe_key=dedupe_key, status__in=OPEN_STATUSES)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    other = clash.only("reference").first()
    if other is not None:
        raise ValidationError(
            {"dedupe_key": f"Open incident {other.reference} already has this dedupe key."}
        )


ASSIGNEE_REFUSED = "Only an MSP admin or an engineer assigned to this tenant can own it."


def assignable_staff(*, tenant: Tenant) -> models.QuerySet:
    """Who may own an incident of ``tenant``: active MSP admins, and engineers assigned to it."""
    return (
        User.objects.filter(is_active=True)
        .filter(
            Q(msp_role=MspRole.ADMIN)
            | Q(msp_role=MspRole.ENGINEER, staff_assignments__tenant=tenant)
        )
        .distinct()
    )


def incident_assignee_check(*, tenant: Tenant, assignee):
    """The user ``assignee`` (a user or a user id) if they may own an incident of ``tenant``
    (``assignable_staff``); None for None (unassigned). Otherwise a ValidationError on
    ``assignee``. The one rule behind the API, the console and ``incident_assign``."""
    if assignee is None:
        return None
    pk = assignee.pk if isinstance(assignee, models.Model) else assignee
    user = assignable_staff(tenant=tenant).filter(pk=pk).first()
    if user is None:
        raise ValidationError({"assignee": ASSIGNEE_REFUSED})
    return user


# --- Creating ------------------------------------------------------------------------------------


def _allocate_number(tenant: Tenant) -> int:
    """The next incident number of ``tenant``, race-free.

    The UPDATE takes the counter row's lock until the transaction ends, so two concurrent
    creations get consecutive numbers; the first incident of a tenant creates the row (a
    concurrent creator loses on the unique constraint and takes the UPDATE path instead).
    """
    for _ in range(3):
        updated = IncidentCounter.objects.filter(tenant=tenant).update(
            last_number=F("last_number") + 1
        )
        if updated:
            return IncidentCounter.objects.filter(tenant=tenant).values_list(
                "last_number", flat=True
            )[0]
        try:
            with transaction.atomic():
                IncidentCounter.objects.create(tenant=tenant, last_number=1)
            return 1
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate an incident number")  # pragma: no cover


def _set_affected(
    tenant: Tenant,
    incident: Incident,
    *,
    ai_systems: Iterable | None,
    deployments: Iterable | None,
    compute: Iterable | None,
) -> None:
    for name, values in (
        ("ai_systems", ai_systems),
        ("deployments", deployments),
        ("compute", compute),
    ):
        if values is None:
            continue
        values = _check_same_tenant(tenant, name, values)
        getattr(incident, name).set(values, through_defaults={"tenant": tenant})


@transaction.atomic
def incident_create(
    *,
    tenant: Tenant,
    title: str,
    category: str,
    severity: str = Severity.SEV3,
    description: str = "",
    source: str = IncidentSource.API,
    reporter=None,
    dedupe_key: str = "",
    ai_systems: Iterable | None = None,
    deployments: Iterable | None = None,
    compute: Iterable | None = None,
    at: dt.datetime | None = None,
) -> Incident:
    """Raise an incident in ``tenant``: number it, start its SLA clocks, record the event."""
    at = _now(at)
    _check_dedupe_key_free(tenant, dedupe_key)
    incident = Incident(
        tenant=tenant,
        title=title,
        description=description,
        severity=severity,
        category=category,
        source=source,
        dedupe_key=dedupe_key,
        reporter=reporter,
        reporter_label=user_display_name(reporter) or current_actor().label[:200],
        created_at=at,
        number=0,
        reference="-",
    )
    # Validate before taking a number, so bad input neither writes nor burns a number.
    incident.full_clean(exclude=["number", "reference"], validate_constraints=False)
    incident.number = _allocate_number(tenant)
    incident.reference = f"{tenant.slug.upper()}-{incident.number}"
    plan = _plan(tenant)
    _recompute_clocks(incident, plan, calendar_for_plan(plan))
    incident.save()
    _set_affected(tenant, incident, ai_systems=ai_systems, deployments=deployments, compute=compute)
    via = IncidentSource(source).label
    _entry(
        incident,
        kind=TimelineKind.CREATED,
        body=f"{incident.severity} incident raised by {incident.reporter_label} via {via}.",
        user=reporter,
        at=at,
    )
    audit_record(
        tenant=tenant,
        action=AuditAction.CREATE,
        instance=incident,
        changes=audit_changes({}, audit_snapshot(incident)),
    )
    _event(tenant, TOPIC_CREATED, incident)
    return incident


@transaction.atomic
def incident_open_or_append(
    *,
    tenant: Tenant,
    dedupe_key: str,
    title: str,
    category: str,
    severity: str,
    description: str = "",
    detail: str = "",
    source: str = IncidentSource.ALERT_RULE,
    at: dt.datetime | None = None,
    deployments: Iterable | None = None,
    compute: Iterable | None = None,
) -> tuple[Incident, bool]:
    """Open an incident for ``dedupe_key``, or add to the open one: ``(incident, created)``.

    A repeat adds an internal ``alert`` entry and raises the severity if the repeat is more
    severe (never lowers it). Safe under concurrency: the partial unique constraint on open
    incidents per dedupe key makes a racing second opener append instead. The affected
    ``deployments`` and ``compute`` are recorded on a new incident.
    """
    if not dedupe_key:
        raise ValidationError({"dedupe_key": "A dedupe key is needed to group repeats."})
    at = _now(at)
    for _ in range(2):
        existing = (
            Incident.objects.select_for_update()
            .filter(tenant=tenant, dedupe_key=dedupe_key, status__in=OPEN_STATUSES)
            .first()
        )
        if existing is not None:
            body = detail or f"Fired again: {title}"
            _entry(existing, kind=TimelineKind.ALERT, body=body, internal=True, at=at)
            if _SEVERITY_RANK[severity] < _SEVERITY_RANK[existing.severity]:
                existing = incident_change_severity(
                    tenant=tenant, incident=existing, severity=severity, at=at
                )
            return existing, False
        try:
            with transaction.atomic():
                incident = incident_create(
                    tenant=tenant,
                    title=title,
                    category=category,
                    severity=severity,
                    description=description,
                    source=source,
                    dedupe_key=dedupe_key,
                    deployments=deployments,
                    compute=compute,
                    at=at,
                )
        except IntegrityError:
            continue  # another opener won the race: append to theirs
        if detail:
            _entry(incident, kind=TimelineKind.ALERT, body=detail, internal=True, at=at)
        return incident, True
    raise RuntimeError("could not open or append to an incident")  # pragma: no cover


@transaction.atomic
def incident_auto_resolve(
    *, tenant: Tenant, dedupe_key: str, reason: str, at: dt.datetime | None = None
) -> Incident | None:
    """Resolve the open incident of ``dedupe_key`` because its condition cleared (or None)."""
    incident = Incident.objects.filter(
        tenant=tenant, dedupe_key=dedupe_key, status__in=OPEN_STATUSES
    ).first()
    if incident is None:
        return None
    return incident_transition(
        tenant=tenant, incident=incident, action="resolve", note=reason, note_internal=False, at=at
    )


# --- Lifecycle ------------------------------------------------------------------------------------


def _refuse(incident: Incident, action: str, allowed_from: tuple[str, ...]) -> ValidationError:
    moves = incident_moves(incident)
    possible = ", ".join(moves) if moves else "none (closed is final)"
    return ValidationError(
        {
            "status": (
                f"Cannot {action} an incident that is {incident.status}; it must be "
                f"{' or '.join(allowed_from)}. Possible now: {possible}."
            )
        }
    )


@transaction.atomic
def incident_transition(
    *,
    tenant: Tenant,
    incident: Incident,
    action: str,
    user=None,
    note: str = "",
    note_internal: bool = True,
    at: dt.datetime | None = None,
) -> Incident:
    """Move an incident along its lifecycle (see ``INCIDENT_ACTIONS``)."""
    if action not in INCIDENT_ACTIONS:
        raise ValidationError({"action": f"Unknown action '{action}'."})
    at = _now(at)
    incident = _locked(tenant, incident)
    allowed_from, target = INCIDENT_ACTIONS[action]
    if incident.status not in allowed_from:
        raise _refuse(incident, action, allowed_from)
    before = audit_snapshot(incident)
    _catch_up_breaches(tenant, incident, at)
    plan = _plan(tenant)
    calendar = calendar_for_plan(plan)
    previous = incident.status
    incident.status = target
    if action == "acknowledge":
        incident.acknowledged_at = at
    elif action == "mitigate":
        incident.mitigated_at = at
    elif action == "resolve":
        _pause_ends(incident, calendar, at)
        incident.resolved_at = at
    elif action == "close":
        incident.closed_at = at
    elif action == "reopen":
        # The time it stood resolved does not count against the resolve clock.
        incident.sla_paused += max(
            business_duration_between(incident.resolved_at, at, calendar), dt.timedelta(0)
        )
        incident.resolved_at = None
        incident.mitigated_at = None
    _recompute_clocks(incident, plan, calendar)
    incident.save()
    words = "Reopened" if action == "reopen" else f"Status changed from {previous} to {target}"
    _entry(
        incident,
        kind=TimelineKind.STATUS,
        body=f"{words}.",
        user=user,
        data={"from": previous, "to": target, "action": action},
        at=at,
    )
    if note:
        _entry(
            incident,
            kind=TimelineKind.COMMENT,
            body=note,
            internal=note_internal,
            user=user,
            at=at,
        )
    audit_since(tenant=tenant, instance=incident, before=before, action=AuditAction.TRANSITION)
    if action in _TOPIC_FOR_ACTION:
        _event(tenant, _TOPIC_FOR_ACTION[action], incident)
    return incident


def incident_acknowledge(*, tenant: Tenant, incident: Incident, **kwargs) -> Incident:
    return incident_transition(tenant=tenant, incident=incident, action="acknowledge", **kwargs)


def incident_resolve(*, tenant: Tenant, incident: Incident, **kwargs) -> Incident:
    return incident_transition(tenant=tenant, incident=incident, action="resolve", **kwargs)


@transaction.atomic
def incident_assign(
    *, tenant: Tenant, incident: Incident, assignee, user=None, at: dt.datetime | None = None
) -> Incident:
    """Give the incident an owner (MSP staff who can work on the tenant), or none."""
    assignee = incident_assignee_check(tenant=tenant, assignee=assignee)
    incident = _locked(tenant, incident)
    if incident.assignee_id == (assignee.pk if assignee else None):
        return incident
    before = audit_snapshot(incident)
    incident.assignee = assignee
    incident.save()
    body = f"Assigned to {user_display_name(assignee)}." if assignee else "Unassigned."
    _entry(
        incident,
        kind=TimelineKind.ASSIGNMENT,
        body=body,
        user=user,
        data={"assignee": assignee.pk if assignee else None},
        at=at,
    )
    audit_since(tenant=tenant, instance=incident, before=before, action=AuditAction.UPDATE)
    return incident


@transaction.atomic
def incident_comment(
    *,
    tenant: Tenant,
    incident: Incident,
    body: str,
    internal: bool,
    user=None,
    at: dt.datetime | None = None,
) -> TimelineEntry:
    """Add a comment: ``internal`` ones are for MSP staff only, the rest the client sees too."""
    if not body or not body.strip():
        raise ValidationError({"body": "Write something."})
    incident = _locked(tenant, incident)
    if incident.status == IncidentStatus.CLOSED:
        raise ValidationError({"status": "A closed incident takes no more comments."})
    entry = _entry(
        incident, kind=TimelineKind.COMMENT, body=body.strip(), internal=internal, user=user, at=at
    )
    audit_record(
        tenant=tenant,
        action=AuditAction.CREATE,
        instance=entry,
        changes={"incident": [None, incident.reference], "internal": [None, internal]},
    )
    return entry


def incident_note_internal(
    *, tenant: Tenant, incident: Incident, body: str, at: dt.datetime | None = None
) -> TimelineEntry:
    """An internal note from the system (attributed to the current actor) for MSP staff; it
    records no one's decision, so no audit event."""
    assert incident.tenant_id == tenant.id, "incident is not in this tenant"
    return _entry(incident, kind=TimelineKind.COMMENT, body=body, internal=True, at=at)


@transaction.atomic
def incident_change_severity(
    *,
    tenant: Tenant,
    incident: Incident,
    severity: str,
    reason: str = "",
    reason_internal: bool = True,
    user=None,
    at: dt.datetime | None = None,
) -> Incident:
    """Change the severity; the clocks still running are recomputed from the new targets."""
    if severity not in Severity.values:
        raise ValidationError({"severity": f"'{severity}' is not one of {Severity.values}."})
    at = _now(at)
    incident = _locked(tenant, incident)
    if incident.status == IncidentStatus.CLOSED:
        raise ValidationError({"severity": "A closed incident's severity no longer changes."})
    if incident.severity == severity:
        return incident
    before = audit_snapshot(incident)
    _catch_up_breaches(tenant, incident, at)
    previous = incident.severity
    incident.severity = severity
    plan = _plan(tenant)
    _recompute_clocks(incident, plan, calendar_for_plan(plan))
    incident.save()
    _entry(
        incident,
        kind=TimelineKind.SEVERITY,
        body=f"Severity changed from {previous} to {severity}.",
        user=user,
        data={"from": previous, "to": severity},
        at=at,
    )
    if reason:
        _entry(
            incident,
            kind=TimelineKind.COMMENT,
            body=reason,
            internal=reason_internal,
            user=user,
            at=at,
        )
    audit_since(tenant=tenant, instance=incident, before=before, action=AuditAction.UPDATE)
    return incident


@transaction.atomic
def incident_wait_on_client(
    *,
    tenant: Tenant,
    incident: Incident,
    reason: str = "",
    user=None,
    at: dt.datetime | None = None,
) -> Incident:
    """Pause the resolve clock while the MSP waits on the client (information, access, a test)."""
    at = _now(at)
    incident = _locked(tenant, incident)
    if incident.waiting_since is not None:
        raise ValidationError({"status": "The incident is already waiting on the client."})
    if incident.status not in WAITABLE_STATUSES:
        raise ValidationError(
            {
                "status": (
                    f"Only an acknowledged, open incident can wait on the client; this one is "
                    f"{incident.status}."
                )
            }
        )
    before = audit_snapshot(incident)
    _catch_up_breaches(tenant, incident, at)
    incident.waiting_since = at
    plan = _plan(tenant)
    _recompute_clocks(incident, plan, calendar_for_plan(plan))
    incident.save()
    body = "Waiting on the client; the resolve clock is paused."
    if reason:
        body = f"{body} {reason}"
    _entry(incident, kind=TimelineKind.PAUSED, body=body, user=user, at=at)
    audit_since(tenant=tenant, instance=incident, before=before, action=AuditAction.UPDATE)
    return incident


@transaction.atomic
def incident_resume(
    *, tenant: Tenant, incident: Incident, user=None, at: dt.datetime | None = None
) -> Incident:
    """End the wait on the client; the resolve clock runs again from where it stopped."""
    at = _now(at)
    incident = _locked(tenant, incident)
    if incident.waiting_since is None:
        raise ValidationError({"status": "The incident is not waiting on the client."})
    before = audit_snapshot(incident)
    plan = _plan(tenant)
    calendar = calendar_for_plan(plan)
    _pause_ends(incident, calendar, at)
    _recompute_clocks(incident, plan, calendar)
    incident.save()
    _entry(
        incident,
        kind=TimelineKind.RESUMED,
        body="No longer waiting on the client; the resolve clock runs again.",
        user=user,
        at=at,
    )
    audit_since(tenant=tenant, instance=incident, before=before, action=AuditAction.UPDATE)
    return incident


def incident_perform(
    *,
    tenant: Tenant,
    incident: Incident,
    action: str,
    user=None,
    note: str = "",
    note_internal: bool = True,
) -> Incident:
    """Any workflow button an engineer presses (``incident_allowed_actions``): a lifecycle move,
    ``wait-on-client`` (the note is its reason) or ``resume``; one door for portal and console."""
    if action == "wait-on-client":
        return incident_wait_on_client(tenant=tenant, incident=incident, reason=note, user=user)
    if action == "resume":
        return incident_resume(tenant=tenant, incident=incident, user=user)
    return incident_transition(
        tenant=tenant,
        incident=incident,
        action=action,
        user=user,
        note=note,
        note_internal=note_internal,
    )


# --- Editing and the regulator -----------------------------------------------------------------

EDITABLE_FIELDS = ("title", "description", "category", "dedupe_key")
SERIOUS_FIELDS = ("serious", "serious_kind", "aware_at", "regulator_notified_at")


def regulator_deadline_for(*, kind: str, aware_at: dt.datetime) -> dt.datetime:
    """EU AI Act Art. 73: 15 days after awareness; 10 if a death; 2 for critical disruption or
    widespread infringement."""
    return aware_at + dt.timedelta(days=REGULATOR_DEADLINE_DAYS[kind])


def serious_assessment_apply(incident: Incident, changes: dict, at: dt.datetime) -> str | None:
    """Apply the Art. 73 fields in ``changes`` to ``incident`` (not saved); return the words
    for the timeline when the assessment changed. Raises ValidationError naming the field."""
    was = (
        incident.serious,
        incident.serious_kind,
        incident.aware_at,
        incident.regulator_notified_at,
    )
    serious = changes.get("serious", incident.serious)
    if not serious:
        if any(changes.get(name) for name in SERIOUS_FIELDS[1:]):
            raise ValidationError({"serious": "Flag the incident as serious first."})
        incident.serious = False
        incident.serious_kind = ""
        incident.aware_at = incident.regulator_deadline = incident.regulator_notified_at = None
    else:
        kind = changes.get("serious_kind") or incident.serious_kind or SeriousIncidentKind.STANDARD
        if kind not in SeriousIncidentKind.values:
            raise ValidationError({"serious_kind": f"'{kind}' is not a serious-incident kind."})
        aware_at = changes.get("aware_at", incident.aware_at) or at
        notified_at = changes.get("regulator_notified_at", incident.regulator_notified_at)
        if aware_at > at + dt.timedelta(minutes=5):
            raise ValidationError({"aware_at": "The provider cannot become aware in the future."})
        if notified_at is not None and notified_at > at + dt.timedelta(minutes=5):
            raise ValidationError(
                {"regulator_notified_at": "The notification cannot be in the future."}
            )
        if notified_at is not None and notified_at < aware_at:
            raise ValidationError(
                {"regulator_notified_at": "The regulator cannot be notified before awareness."}
            )
        incident.serious = True
        incident.serious_kind = kind
        incident.aware_at = aware_at
        incident.regulator_deadline = regulator_deadline_for(kind=kind, aware_at=aware_at)
        incident.regulator_notified_at = notified_at
    now = (
        incident.serious,
        incident.serious_kind,
        incident.aware_at,
        incident.regulator_notified_at,
    )
    if now == was:
        return None
    if not incident.serious:
        return "No longer treated as a serious AI incident (EU AI Act Art. 73)."
    deadline = f"{incident.regulator_deadline:%Y-%m-%d %H:%M} UTC"
    if incident.regulator_notified_at is not None and was[3] is None:
        return f"Regulator notified at {incident.regulator_notified_at:%Y-%m-%d %H:%M} UTC."
    label = SeriousIncidentKind(incident.serious_kind).label
    return f"Serious AI incident (EU AI Act Art. 73): {label}. Notify the regulator by {deadline}."


@transaction.atomic
def incident_update(
    *,
    tenant: Tenant,
    incident: Incident,
    user=None,
    at: dt.datetime | None = None,
    ai_systems: Iterable | None = None,
    deployments: Iterable | None = None,
    compute: Iterable | None = None,
    **fields,
) -> Incident:
    """Edit the description, affected estate, dedupe key and the Art. 73 assessment.

    Status, severity and assignee have their own services (they move clocks and the timeline).
    """
    unknown = set(fields) - set(EDITABLE_FIELDS) - set(SERIOUS_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be changed here."))
    at = _now(at)
    incident = _locked(tenant, incident)
    before = audit_snapshot(incident)
    for name in EDITABLE_FIELDS:
        if name in fields:
            setattr(incident, name, fields[name])
    if "dedupe_key" in fields and incident.is_open:
        _check_dedupe_key_free(tenant, incident.dedupe_key, exclude_pk=incident.pk)
    serious_words = None
    if any(name in fields for name in SERIOUS_FIELDS):
        serious_words = serious_assessment_apply(
            incident, {k: v for k, v in fields.items() if k in SERIOUS_FIELDS}, at
        )
    incident.full_clean(validate_constraints=False)
    incident.save()
    _set_affected(tenant, incident, ai_systems=ai_systems, deployments=deployments, compute=compute)
    if serious_words:
        _entry(
            incident,
            kind=TimelineKind.SERIOUS,
            body=serious_words,
            user=user,
            data={
                "serious": incident.serious,
                "kind": incident.serious_kind,
                "regulator_deadline": incident.regulator_deadline.isoformat()
                if incident.regulator_deadline
                else None,
            },
            at=at,
        )
    audit_since(tenant=tenant, instance=incident, before=before, action=AuditAction.UPDATE)
    return incident


# --- Breaches ------------------------------------------------------------------------------------

_CLOCKS = {
    "acknowledge": {
        "field": "ack_breached_at",
        "due": "ack_due_at",
        "kind": TimelineKind.ACK_BREACH,
        "running": Q(status=IncidentStatus.TRIGGERED, acknowledged_at__isnull=True),
        "is_running": _ack_clock_running,
    },
    "resolve": {
        "field": "resolve_breached_at",
        "due": "resolve_due_at",
        "kind": TimelineKind.RESOLVE_BREACH,
        "running": Q(status__in=OPEN_STATUSES, waiting_since__isnull=True),
        "is_running": _resolve_clock_running,
    },
}


def _mark_breach(tenant: Tenant, pk: int, clock: str, now: dt.datetime) -> bool:
    spec = _CLOCKS[clock]
    with transaction.atomic():
        # The conditional UPDATE is the exactly-once gate: a concurrent run blocks on the row
        # lock, re-checks "not yet breached" after the winner commits, and updates nothing.
        won = (
            Incident.objects.filter(spec["running"], pk=pk, tenant=tenant)
            .filter(**{f"{spec['field']}__isnull": True, f"{spec['due']}__lte": now})
            .update(**{spec["field"]: F(spec["due"]), "updated_at": now})
        )
        if not won:
            return False
        incident = Incident.objects.get(pk=pk)
        due = getattr(incident, spec["due"])
        _entry(
            incident,
            kind=spec["kind"],
            body=f"The {clock} SLA was breached: it was due at {due:%Y-%m-%d %H:%M} UTC.",
            data={"clock": clock, "due_at": due.isoformat()},
            at=now,
        )
        audit_record(
            tenant=tenant,
            action=AuditAction.UPDATE,
            instance=incident,
            changes={spec["field"]: [None, due.isoformat()]},
        )
        _event(tenant, TOPIC_BREACHED, incident, clock=clock)
        return True


def _catch_up_breaches(tenant: Tenant, incident: Incident, at: dt.datetime) -> None:
    """Record breaches that happened before this change, between two runs of the breach job.

    Called with the incident row locked, so a concurrent job run finds them already recorded.
    """
    for clock, spec in _CLOCKS.items():
        due = getattr(incident, spec["due"])
        if due is None or due > at or getattr(incident, spec["field"]) is not None:
            continue
        if not spec["is_running"](incident):
            continue
        setattr(incident, spec["field"], due)  # saved with the caller's change
        _entry(
            incident,
            kind=spec["kind"],
            body=f"The {clock} SLA was breached: it was due at {due:%Y-%m-%d %H:%M} UTC.",
            data={"clock": clock, "due_at": due.isoformat()},
            at=due,
        )
        _event(tenant, TOPIC_BREACHED, incident, clock=clock)


def incident_sla_breaches_mark(*, tenant: Tenant, now: dt.datetime | None = None) -> int:
    """Mark the acknowledge and resolve breaches of ``tenant`` whose deadlines have passed.

    Each breach gets exactly one timeline entry and one outbox event, however many runs race.
    Returns how many breaches this run marked.
    """
    now = _now(now)
    marked = 0
    for clock, spec in _CLOCKS.items():
        candidates = (
            Incident.objects.filter(spec["running"], tenant=tenant)
            .filter(**{f"{spec['field']}__isnull": True, f"{spec['due']}__lte": now})
            .values_list("pk", flat=True)
        )
        for pk in list(candidates):
            marked += _mark_breach(tenant, pk, clock, now)
    return marked


# --- Postmortems ---------------------------------------------------------------------------------


def postmortem_check_eligible(incident: Incident) -> None:
    if incident.severity not in POSTMORTEM_SEVERITIES:
        raise ValidationError(
            {
                "severity": (
                    f"Postmortems are written for SEV1 and SEV2 incidents; "
                    f"{incident.reference} is {incident.severity}."
                )
            }
        )
    if incident.status not in POSTMORTEM_STATUSES:
        raise ValidationError(
            {
                "status": (
                    f"Postmortems are written once an incident is resolved; "
                    f"{incident.reference} is {incident.status}."
                )
            }
        )


@transaction.atomic
def postmortem_save(
    *,
    tenant: Tenant,
    incident: Incident,
    summary: str,
    impact: str = "",
    timeline_excerpt: str = "",
    root_cause: str = "",
    action_items: list[dict] | None = None,
    user=None,
) -> Postmortem:
    """Create or replace the postmortem of a resolved SEV1/SEV2 incident, action items included."""
    incident = _locked(tenant, incident)
    postmortem_check_eligible(incident)
    postmortem = Postmortem.objects.filter(incident=incident).first()
    created = postmortem is None
    if created:
        postmortem = Postmortem(tenant=tenant, incident=incident)
    before = {} if created else audit_snapshot(postmortem)
    postmortem.summary = summary
    postmortem.impact = impact
    postmortem.timeline_excerpt = timeline_excerpt
    postmortem.root_cause = root_cause
    postmortem.updated_by_label = _author(user)[1]
    postmortem.full_clean(exclude=["incident"])
    postmortem.save()
    items = []
    for position, item in enumerate(action_items or []):
        row = PostmortemActionItem(
            tenant=tenant,
            postmortem=postmortem,
            position=position,
            description=item.get("description", ""),
            owner=item.get("owner", ""),
            due_date=item.get("due_date"),
            done=bool(item.get("done", False)),
        )
        try:
            row.full_clean(exclude=["postmortem"])
        except ValidationError as error:
            raise ValidationError(
                {f"action_items.{position}.{k}": v for k, v in error.message_dict.items()}
            ) from error
        items.append(row)
    PostmortemActionItem.objects.filter(postmortem=postmortem).delete()
    PostmortemActionItem.objects.bulk_create(items)
    changes = audit_changes(before, audit_snapshot(postmortem))
    changes["action_items"] = [None, len(items)]
    audit_record(
        tenant=tenant,
        action=AuditAction.CREATE if created else AuditAction.UPDATE,
        instance=postmortem,
        changes=changes,
    )
    return postmortem
