"""Writes to the outbox. Call them inside the transaction of the change they describe."""

from __future__ import annotations

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection

from operations.events.models import OutboxEvent


class OutboxOutsideTransaction(RuntimeError):
    """An event was recorded outside a transaction, so it could outlive a rolled-back change."""


def event_record(*, tenant, topic: str, payload: dict) -> OutboxEvent:
    """Append one event for ``tenant`` to the outbox, in the caller's transaction.

    The payload is normalised through JSON (datetimes become ISO strings) so that what is stored
    is exactly what a publisher will send.
    """
    if not connection.in_atomic_block:
        raise OutboxOutsideTransaction(
            f"event_record({topic!r}) must run inside the transaction of the change it describes."
        )
    normalised = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    return OutboxEvent.objects.create(tenant=tenant, topic=topic, payload=normalised)
