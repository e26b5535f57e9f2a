"""Who is acting, and the append-only record of what they wrote.

Requests, jobs and commands set the actor once (``audit_actor``); services call
``audit_record`` for every create, update, delete and transition they perform.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace

from django.db import models

from msp.api.request_id import current_request_id
from tenants.models import AuditEvent


@dataclass(frozen=True)
class AuditActor:
    label: str
    source: str
    user: object | None = None
    token: object | None = None
    address: str | None = None


# What Groundwork does by itself (schedules, scans, clocks) is shown under this name.
AUTOMATIC_LABEL = "Groundwork (automatic)"
SYSTEM_ACTOR = AuditActor(label=AUTOMATIC_LABEL, source="service")
_actor: ContextVar[AuditActor] = ContextVar("audit_actor", default=SYSTEM_ACTOR)


def current_actor() -> AuditActor:
    return _actor.get()


@contextmanager
def audit_actor(actor: AuditActor) -> Iterator[AuditActor]:
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


@contextmanager
def audit_actor_unless_set(actor: AuditActor) -> Iterator[AuditActor]:
    """``audit_actor(actor)`` unless a caller (a command, a job) already named who acts."""
    current = _actor.get()
    if current is not SYSTEM_ACTOR:
        yield current
        return
    with audit_actor(actor) as chosen:
        yield chosen


def actor_for_user(user, *, source: str, token=None, address: str | None = None) -> AuditActor:
    label = user.get_username() if user is not None and user.is_authenticated else "anonymous"
    if token is not None:
        label = f"{label} (token {token.prefix})"
    authenticated = user if user is not None and user.is_authenticated else None
    return AuditActor(label=label, source=source, user=authenticated, token=token, address=address)


def set_actor_token(token) -> None:
    """Called once DRF has authenticated a bearer token inside a request."""
    _actor.set(actor_for_user(token.user, source="api", token=token, address=_actor.get().address))


def set_actor_source(source: str) -> None:
    _actor.set(replace(_actor.get(), source=source))


def _json_safe(value):
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()  # a reader of the log compares seconds
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    # Field values such as django-countries' Country: their text is what a reader wants.
    return str(value)


# Never copied into the audit log, whatever the model.
_REDACTED_FIELDS = {"password", "secret_hash", "secret", "previous_secret"}


def audit_snapshot(instance: models.Model) -> dict:
    """The instance's concrete field values, JSON-safe, secrets left out."""
    return {
        field.attname: _json_safe(getattr(instance, field.attname))
        for field in instance._meta.concrete_fields
        if field.name not in _REDACTED_FIELDS
    }


# Bookkeeping that changes on every save and says nothing about what changed.
_UNAUDITED_FIELDS = {"updated_at"}


def audit_changes(before: dict, after: dict) -> dict:
    """{field: [old, new]} for every field whose value changed (a missing side is None)."""
    keys = [key for key in {**before, **after} if key not in _UNAUDITED_FIELDS]
    return {
        key: [before.get(key), after.get(key)] for key in keys if before.get(key) != after.get(key)
    }


def audit_record(
    *,
    tenant,
    action: str,
    instance: models.Model,
    changes: dict | None = None,
    object_type: str | None = None,
) -> AuditEvent:
    """Append one event for a write to ``instance`` by the current actor."""
    actor = _actor.get()
    return AuditEvent.objects.create(
        tenant=tenant,
        actor_user=actor.user,
        actor_token=actor.token,
        actor_label=actor.label[:200],
        source=actor.source,
        action=action,
        object_type=object_type or instance._meta.label,
        object_id=str(instance.pk),
        object_repr=str(instance)[:200],
        changes=changes or {},
        request_id=current_request_id() or "",
        source_address=actor.address,
    )


def audited_create(*, tenant, instance: models.Model, validate: bool = True) -> models.Model:
    """Validate, save and record the creation of ``instance`` (``validate=False``: a form has
    already validated it)."""
    if validate:
        instance.full_clean()
    instance.save()
    audit_record(
        tenant=tenant,
        action="create",
        instance=instance,
        changes=audit_changes({}, audit_snapshot(instance)),
    )
    return instance


def audited_update(
    *,
    tenant,
    instance: models.Model,
    data: dict,
    before: dict | None = None,
    validate: bool = True,
) -> models.Model:
    """Apply ``data``, validate, save, and record what actually changed (nothing: no event).

    The one snapshot → save → audit sequence of every update. ``before``: the stored values,
    when ``instance`` was changed before the call (an admin form changes its instance);
    ``validate=False`` when a form has already validated it.
    """
    if before is None:
        before = audit_snapshot(instance)
    for name, value in data.items():
        setattr(instance, name, value)
    if validate:
        instance.full_clean()
    instance.save()
    audit_since(tenant=tenant, instance=instance, before=before)
    return instance


def audit_since(*, tenant, instance: models.Model, before: dict, action: str = "update") -> dict:
    """Record what changed on the saved ``instance`` since ``before`` (its ``audit_snapshot``),
    as one ``action`` event; nothing changed, no event. For services that change an instance
    in several steps (an incident's move) before they save it."""
    changes = audit_changes(before, audit_snapshot(instance))
    if changes:
        audit_record(tenant=tenant, action=action, instance=instance, changes=changes)
    return changes
