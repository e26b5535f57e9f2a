"""On call and escalation: who holds a rotation now, and the scan that escalates unacknowledged
incidents, warns at 75 % of an SLA clock and a day before a regulator deadline.

Each step or warning is an ``IncidentSignal`` row inserted with ``ignore_conflicts`` on its
unique key, in one transaction with its event and emails: a scan that races another, or runs
again after a killed worker, fires nothing twice. Only ``triggered`` incidents escalate, so an
acknowledgement stops the steps at the next scan. A policy on the plan's hours counts its
minutes in the plan's working calendar (``incidents.sla``), as the SLA clocks do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from operations.events.models import (
    EscalationHours,
    EscalationPolicy,
    IncidentSignal,
    Notification,
    NotificationChannel,
    OnCallOverride,
    OnCallRotation,
    ShiftLength,
)
from operations.events.notify import email_subject
from operations.events.services import event_record
from operations.incidents.selectors import incident_event_payload, incidents_for_escalation
from operations.incidents.sla import WorkingCalendar, add_business_minutes, calendar_for_plan
from tenants.models import Membership, TenantRole, User
from tenants.scoping import tenant_scope
from tenants.selectors import service_plan_get

AT_RISK_FRACTION = 0.75
REGULATOR_WARNING = dt.timedelta(days=1)


# --- On call ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnCallNow:
    rotation: OnCallRotation
    user_id: int | None
    until: dt.datetime | None
    override: bool


def on_call_now(rotation: OnCallRotation, *, now: dt.datetime | None = None) -> OnCallNow:
    """Who holds ``rotation`` at ``now``: an override covering it, else the member whose turn
    it is (shifts of a day or a week from ``starts_at``)."""
    now = now or timezone.now()
    override = (
        OnCallOverride.objects.filter(rotation=rotation, starts_at__lte=now, ends_at__gt=now)
        .order_by("-starts_at", "-id")
        .first()
    )
    if override is not None:
        return OnCallNow(rotation, override.user_id, override.ends_at, True)
    members = list(rotation.members or [])
    if not members or now < rotation.starts_at:
        return OnCallNow(rotation, None, None, False)
    length = dt.timedelta(days=7 if rotation.shift == ShiftLength.WEEKLY else 1)
    turns = int((now - rotation.starts_at) / length)
    until = rotation.starts_at + (turns + 1) * length
    return OnCallNow(rotation, int(members[turns % len(members)]), until, False)


def on_call_all(*, now: dt.datetime | None = None) -> list[OnCallNow]:
    return [on_call_now(rotation, now=now) for rotation in OnCallRotation.objects.order_by("name")]


# --- Escalation -----------------------------------------------------------------------------------


def _targets(tenant, incident, notify: list[str], now: dt.datetime) -> list[tuple[int, str]]:
    """(user id, email) of everyone a step names, each once."""
    user_ids: list[int] = []
    for target in notify:
        kind, _sep, value = str(target).partition(":")
        if kind == "oncall" and value.isdigit():
            rotation = OnCallRotation.objects.filter(pk=int(value)).first()
            holder = on_call_now(rotation, now=now).user_id if rotation else None
            if holder:
                user_ids.append(holder)
        elif kind == "user" and value.isdigit():
            user_ids.append(int(value))
        elif kind == "assigned_staff":
            user_ids += list(
                User.objects.filter(staff_assignments__tenant=tenant).values_list("id", flat=True)
            )
        elif kind == "tenant_admins":
            user_ids += list(
                Membership.objects.filter(tenant=tenant, role=TenantRole.ADMIN).values_list(
                    "user_id", flat=True
                )
            )
        elif kind == "assignee" and incident.assignee_id:
            user_ids.append(incident.assignee_id)
    people = dict(
        User.objects.filter(pk__in=user_ids, is_active=True)
        .exclude(email="")
        .values_list("id", "email")
    )
    return [(uid, people[uid]) for uid in dict.fromkeys(user_ids) if uid in people]


def _step_due(at: dt.datetime, minutes: int, calendar: WorkingCalendar) -> dt.datetime:
    """``minutes`` of the policy's clock after ``at``; on working hours, never outside them
    (no delay outside hours waits for the next window to open)."""
    if calendar.always:
        return at + dt.timedelta(minutes=minutes)
    if minutes:
        return add_business_minutes(at, minutes, calendar)
    begin, _finish = next((b, f) for b, f in calendar.windows_from(at) if f > at)
    return max(begin, at)


def _due_steps(
    policy: EscalationPolicy, opened: dt.datetime, now: dt.datetime, calendar: WorkingCalendar
):
    """(round, step index, due time) of every step due by ``now``."""
    steps = [step for step in policy.steps if isinstance(step, dict)]
    if not steps:
        return
    rounds = max(1, policy.max_rounds) if policy.repeat else 1
    at = opened
    for round_ in range(rounds):
        for index, step in enumerate(steps):
            at = _step_due(at, max(0, int(step.get("after_minutes", 0) or 0)), calendar)
            if at > now:
                return
            yield round_, index, at
        if sum(int(s.get("after_minutes", 0) or 0) for s in steps) <= 0:
            return  # steps with no delay would repeat at once: once is enough


def _policy_calendar(policy: EscalationPolicy, plan_calendar: WorkingCalendar) -> WorkingCalendar:
    if policy.hours == EscalationHours.PLAN:
        return plan_calendar
    return WorkingCalendar.always_on()


def _fire(
    tenant,
    incident,
    *,
    key: str,
    now: dt.datetime,
    topic: str,
    extra: dict,
    recipients: list[tuple[int, str]],
) -> bool:
    """Insert the signal; if this call made it, write the event and the emails with it."""
    with transaction.atomic():
        try:
            # The unique key decides: a racing scan waits for this row and then fails here.
            with transaction.atomic():
                IncidentSignal.objects.create(
                    tenant=tenant,
                    incident_id=incident.pk,
                    key=key,
                    fired_at=now,
                    notified=[email for _uid, email in recipients],
                )
        except IntegrityError:
            return False
        payload = {**incident_event_payload(incident), **extra}
        event = event_record(tenant=tenant, topic=topic, payload=payload)
        Notification.objects.bulk_create(
            [
                Notification(
                    tenant=tenant,
                    event_id=event.pk,
                    topic=topic,
                    subject_ref=f"incident:{incident.pk}",
                    channel=NotificationChannel.EMAIL,
                    user_id=uid,
                    recipient=email,
                    subject=email_subject(topic, payload, tenant.name),
                )
                for uid, email in recipients
            ],
            ignore_conflicts=True,
        )
    return True


def _fraction_passed(start, due, now) -> bool:
    return (
        due is not None
        and start is not None
        and due > start
        and (now >= start + (due - start) * AT_RISK_FRACTION)
    )


def escalations_run_for_tenant(*, tenant, now: dt.datetime | None = None) -> dict:
    """Fire every due escalation step and warning of ``tenant``'s open incidents, once each."""
    now = now or timezone.now()
    fired = {"escalated": 0, "sla_at_risk": 0, "regulator_deadline_near": 0}
    with tenant_scope(tenant.id):
        policies = list(EscalationPolicy.objects.filter(tenant=tenant).order_by("id"))
        plan_calendar = (
            calendar_for_plan(service_plan_get(tenant=tenant))
            if any(p.hours == EscalationHours.PLAN for p in policies)
            else WorkingCalendar.always_on()
        )
        incidents = incidents_for_escalation(tenant=tenant)
        done = set(
            IncidentSignal.objects.filter(incident_id__in=[i.pk for i in incidents]).values_list(
                "incident_id", "key"
            )
        )
        for incident in incidents:
            if incident.status == "triggered":
                for policy in policies:
                    if policy.severities and incident.severity not in policy.severities:
                        continue
                    calendar = _policy_calendar(policy, plan_calendar)
                    steps_due = _due_steps(policy, incident.created_at, now, calendar)
                    for round_, index, _due in steps_due:
                        key = f"escalation:{policy.pk}:{round_}:{index}"
                        if (incident.pk, key) in done:
                            continue
                        notify = policy.steps[index].get("notify", [])
                        recipients = _targets(tenant, incident, notify, now)
                        if _fire(
                            tenant,
                            incident,
                            key=key,
                            now=now,
                            topic="incident.escalated",
                            extra={"step": index + 1, "notified": [e for _u, e in recipients]},
                            recipients=recipients,
                        ):
                            fired["escalated"] += 1
                if (
                    incident.ack_breached_at is None
                    and _fraction_passed(incident.created_at, incident.ack_due_at, now)
                    and (incident.pk, "sla_at_risk:ack") not in done
                ) and _fire(
                    tenant,
                    incident,
                    key="sla_at_risk:ack",
                    now=now,
                    topic="incident.sla_at_risk",
                    extra={"clock": "ack"},
                    recipients=[],
                ):
                    fired["sla_at_risk"] += 1
            if (
                incident.waiting_since is None
                and incident.resolve_breached_at is None
                and _fraction_passed(incident.created_at, incident.resolve_due_at, now)
                and (incident.pk, "sla_at_risk:resolve") not in done
            ) and _fire(
                tenant,
                incident,
                key="sla_at_risk:resolve",
                now=now,
                topic="incident.sla_at_risk",
                extra={"clock": "resolve"},
                recipients=[],
            ):
                fired["sla_at_risk"] += 1
            deadline = incident.regulator_deadline
            if (
                incident.serious
                and deadline is not None
                and incident.regulator_notified_at is None
                and deadline - REGULATOR_WARNING <= now
                and (incident.pk, "regulator_deadline_near") not in done
            ) and _fire(
                tenant,
                incident,
                key="regulator_deadline_near",
                now=now,
                topic="incident.regulator_deadline_near",
                extra={},
                recipients=[],
            ):
                fired["regulator_deadline_near"] += 1
    return fired
