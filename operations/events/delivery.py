"""The worker's side of delivery: publish the outbox into deliveries, send them, retry them.

Publishing turns a tenant's unpublished outbox rows into one delivery per interested endpoint
(the tenant's own and the MSP-wide ones) and stamps the rows published, in one transaction.
Sending claims due deliveries with a conditional update (so two workers never send the same
attempt), posts them signed, and records each outcome. A failure is retried with capped
exponential backoff and jitter until the retry window (about a day) has passed; then the
delivery fails, its endpoint is disabled and its owner told.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from requests.adapters import HTTPAdapter
from standardwebhooks.webhooks import Webhook

from operations.events.catalogue import CATALOGUE
from operations.events.conf import events_settings
from operations.events.models import (
    Delivery,
    DeliveryStatus,
    EndpointKind,
    MspDelivery,
    MspWebhookEndpoint,
    Notification,
    NotificationStatus,
    OutboxEvent,
    WebhookEndpoint,
)
from operations.events.notify import notifications_for, subject_ref_of
from operations.events.services import (
    endpoint_address_resolve,
    endpoint_disable_for_failures,
    endpoint_signing_secrets,
)
from tenants.models import Tenant
from tenants.scoping import scoped_atomic, tenant_scope

logger = logging.getLogger(__name__)

USER_AGENT = "Groundwork-Webhooks/1"
EXCERPT_CHARS = 500


def envelope(event: OutboxEvent, tenant_slug: str) -> dict:
    """The body every endpoint receives for ``event`` (chat endpoints get it reshaped)."""
    known = CATALOGUE.get(event.topic)
    return {
        "type": event.topic,
        "version": known.version if known else 1,
        "timestamp": event.created_at.isoformat(),
        "tenant": tenant_slug,
        "data": event.payload,
    }


# --- Publishing ---------------------------------------------------------------------------------


def outbox_publish_tenant(*, tenant_id: int, limit: int | None = None) -> int:
    """Publish up to ``limit`` of the tenant's pending events; returns how many."""
    limit = limit or events_settings().batch_size
    tenant = Tenant.objects.get(pk=tenant_id)
    with scoped_atomic(tenant_id):
        pending = OutboxEvent.objects.filter(published_at__isnull=True).order_by("created_at", "id")
        # Two publishers of one tenant take disjoint rows on PostgreSQL; SQLite has one writer.
        events = list(pending.select_for_update(skip_locked=True)[:limit])
        if not events:
            return 0
        endpoints = list(WebhookEndpoint.objects.filter(is_active=True))
        msp_endpoints = [
            endpoint
            for endpoint in MspWebhookEndpoint.objects.filter(is_active=True)
            if endpoint.hears(tenant.slug)
        ]
        now = timezone.now()
        deliveries: list[Delivery] = []
        msp_deliveries: list[MspDelivery] = []
        for event in events:
            body = envelope(event, tenant.slug)
            common = {
                "event_id": event.pk,
                "subject_ref": subject_ref_of(event.topic, event.payload),
                "message_id": f"msg_{event.pk}",
                "topic": event.topic,
                "body": body,
                "next_attempt_at": now,
            }
            deliveries += [
                Delivery(tenant_id=tenant_id, endpoint=endpoint, **common)
                for endpoint in endpoints
                if endpoint.wants(event.topic)
            ]
            msp_deliveries += [
                MspDelivery(endpoint=endpoint, tenant_slug=tenant.slug, **common)
                for endpoint in msp_endpoints
                if endpoint.wants(event.topic)
            ]
        # ignore_conflicts: a re-publish after a crash between insert and stamp adds nothing.
        Delivery.objects.bulk_create(deliveries, batch_size=500, ignore_conflicts=True)
        MspDelivery.objects.bulk_create(msp_deliveries, batch_size=500, ignore_conflicts=True)
        Notification.objects.bulk_create(
            notifications_for(tenant=tenant, events=events), batch_size=500, ignore_conflicts=True
        )
        OutboxEvent.objects.filter(pk__in=[event.pk for event in events]).update(published_at=now)
    return len(events)


def _prune_cutoffs(now: dt.datetime) -> tuple[dt.datetime, dt.datetime, Q]:
    """(outbox rows published before, deliveries created before, finished deliveries)."""
    config = events_settings()
    return (
        now - dt.timedelta(days=config.outbox_retention_days),
        now - dt.timedelta(days=config.delivery_retention_days),
        Q(status__in=[DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED]),
    )


def outbox_prune_tenant(*, tenant_id: int, now: dt.datetime | None = None) -> dict:
    """Delete one tenant's published outbox rows and finished deliveries past retention."""
    outbox_before, delivery_before, finished = _prune_cutoffs(now or timezone.now())
    with tenant_scope(tenant_id), transaction.atomic():
        return {
            "outbox": OutboxEvent.objects.filter(
                published_at__isnull=False, published_at__lt=outbox_before
            ).delete()[0],
            "deliveries": Delivery.objects.filter(
                finished, created_at__lt=delivery_before
            ).delete()[0],
        }


def msp_deliveries_prune(*, now: dt.datetime | None = None) -> int:
    """Delete finished deliveries to MSP-wide endpoints past retention."""
    _outbox_before, delivery_before, finished = _prune_cutoffs(now or timezone.now())
    return MspDelivery.objects.filter(finished, created_at__lt=delivery_before).delete()[0]


def outbox_prune(*, now: dt.datetime | None = None) -> dict:
    """Prune everything at once, tenant by tenant (``events.prune`` spreads the tenants over
    chunk tasks instead)."""
    now = now or timezone.now()
    pruned = {"outbox": 0, "deliveries": msp_deliveries_prune(now=now)}
    for tenant_id in Tenant.objects.order_by("pk").values_list("pk", flat=True):
        for key, count in outbox_prune_tenant(tenant_id=tenant_id, now=now).items():
            pruned[key] += count
    return pruned


# --- Sending ------------------------------------------------------------------------------------


def retry_delay(attempt: int, *, rng: random.Random | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: base·2^(attempt−1), capped, ±20 % jitter."""
    config = events_settings()
    delay = min(config.retry_cap_seconds, config.retry_base_seconds * 2 ** (attempt - 1))
    return delay * (rng or random).uniform(0.8, 1.2)


def chat_body(body: dict, kind: str) -> dict:
    """A Slack or Teams incoming-webhook message for an envelope."""
    data = body.get("data") or {}
    known = CATALOGUE.get(body.get("type", ""))
    title = data.get("title") or data.get("subject_label") or data.get("slug") or body.get("type")
    reference = data.get("reference")
    headline = f"[{body.get('tenant')}] {body.get('type')}: " + (
        f"{reference} {title}" if reference else str(title)
    )
    facts = {
        key: str(data[key])
        for key in ("severity", "status", "clock", "check", "kind", "step")
        if data.get(key) not in (None, "")
    }
    link = event_link(body)
    if kind == EndpointKind.SLACK:
        text = headline + (f"\n<{link}|Open in Groundwork>" if link else "")
        fields = [{"type": "mrkdwn", "text": f"*{k}*: {v}"} for k, v in facts.items()]
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
        if fields:
            blocks.append({"type": "section", "fields": fields[:10]})
        return {"text": headline, "blocks": blocks}
    # Microsoft Teams: an Adaptive Card in a message (Workflows and connector webhooks).
    card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": headline, "weight": "Bolder", "wrap": True},
            {"type": "TextBlock", "text": known.description if known else "", "wrap": True},
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts.items()]},
        ],
        "actions": (
            [{"type": "Action.OpenUrl", "title": "Open in Groundwork", "url": link}] if link else []
        ),
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def event_link(body: dict) -> str:
    """The portal address of the event's object, or ''."""
    known = CATALOGUE.get(body.get("type", ""))
    if known is None or not known.link:
        return ""
    try:
        # The envelope's tenant wins over a payload field of the same name (report.ready).
        fields = {**(body.get("data") or {}), "tenant": body.get("tenant", "")}
        path = known.link.format(**fields)
    except (KeyError, IndexError, ValueError):
        return ""
    return events_settings().site_url + path


@dataclass
class Outcome:
    ok: bool
    status: int | None = None
    excerpt: str = ""
    error: str = ""
    latency_ms: int | None = None


def _checked_address(endpoint) -> tuple[str, str]:
    """(address to connect to, '') or ('', why refused): the endpoint's host resolved and
    checked once per endpoint object (a batch shares its endpoint objects, so one lookup
    serves the batch, and every send of the batch goes to the address that was checked)."""
    cached = getattr(endpoint, "_checked_address", None)
    if cached is None:
        try:
            cached = (endpoint_address_resolve(endpoint.url), "")
        except ValidationError as refused:
            cached = ("", "; ".join(refused.message_dict.get("url", ["refused"])))
        endpoint._checked_address = cached
    return cached


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to the address a request carries as ``pinned_address`` (the one the SSRF check
    approved) instead of resolving the URL's host again; the Host header, TLS SNI and the
    certificate check keep the URL's name. Connections are pooled per address and name."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        address = getattr(request, "pinned_address", None)
        if address:
            name = host_params["host"]
            host_params["host"] = address
            if host_params["scheme"] == "https":
                pool_kwargs["server_hostname"] = name
                pool_kwargs["assert_hostname"] = name
        return host_params, pool_kwargs


def _host_header(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2]


def send_one(session: requests.Session, endpoint, delivery, *, now: dt.datetime) -> Outcome:
    """POST one delivery to its endpoint, signed; never raises."""
    address, refusal = _checked_address(endpoint)
    if refusal:
        return Outcome(False, error=refusal)
    if endpoint.kind == EndpointKind.WEBHOOK:
        payload = json.dumps(delivery.body, separators=(",", ":"))
    else:
        payload = json.dumps(chat_body(delivery.body, endpoint.kind), separators=(",", ":"))
    timestamp = timezone.now()
    signatures = " ".join(
        Webhook(secret).sign(delivery.message_id, timestamp, payload)
        for secret in endpoint_signing_secrets(endpoint, now=now)
    )
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
        "host": _host_header(endpoint.url),  # the name, though the address is connected to
    }
    config = events_settings()
    started = time.perf_counter()
    try:
        request = session.prepare_request(
            requests.Request("POST", endpoint.url, data=payload.encode(), headers=headers)
        )
        request.pinned_address = address
        response = session.send(
            request,
            timeout=(config.connect_timeout, config.read_timeout),
            allow_redirects=False,  # a redirect could lead anywhere, past the address check
            stream=True,
        )
        try:
            excerpt = response.raw.read(EXCERPT_CHARS, decode_content=True) or b""
        finally:
            # A body read to its end leaves the connection for the next send (keep-alive);
            # one longer than the excerpt is not read further: the connection is dropped.
            if response.raw.length_remaining == 0:
                response.raw.release_conn()
            else:
                response.close()
    except requests.RequestException as exc:
        return Outcome(
            False,
            error=f"{type(exc).__name__}: {exc}"[:500],
            latency_ms=int((time.perf_counter() - started) * 1000),
        )
    latency_ms = int((time.perf_counter() - started) * 1000)
    return Outcome(
        200 <= response.status_code < 300,
        status=response.status_code,
        excerpt=excerpt.decode("utf-8", "replace")[:EXCERPT_CHARS],
        latency_ms=latency_ms,
    )


def _claim(model, base_filter: Q, *, now: dt.datetime, limit: int) -> list:
    """Claim up to ``limit`` due deliveries of active endpoints for this worker."""
    manager = model.objects.unscoped() if model is Delivery else model.objects
    due = Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__is_active=True)
    ids = list(
        manager.filter(base_filter & due)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return []
    token = secrets.token_hex(8)
    lease = now + dt.timedelta(seconds=events_settings().claim_lease_seconds)
    # Conditional on still being due: a concurrent worker's claim wins the row, not both.
    manager.filter(due, pk__in=ids).update(
        claimed_by=token, next_attempt_at=lease, attempts=F("attempts") + 1
    )
    claimed = list(manager.filter(pk__in=ids, claimed_by=token).select_related("endpoint"))
    # One endpoint object per endpoint, so the batch checks each URL once.
    shared: dict[int, object] = {}
    for delivery in claimed:
        delivery.endpoint = shared.setdefault(delivery.endpoint_id, delivery.endpoint)
    return claimed


def _record(model, delivery, outcome: Outcome, *, now: dt.datetime) -> str | None:
    """Store an attempt's outcome; returns a reason when the endpoint must be disabled."""
    config = events_settings()
    delivery.last_attempt_at = now
    delivery.response_status = outcome.status
    delivery.response_excerpt = outcome.excerpt
    delivery.error = outcome.error
    delivery.latency_ms = outcome.latency_ms
    delivery.claimed_by = ""
    disable_reason = None
    if outcome.ok:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.succeeded_at = now
        delivery.next_attempt_at = None
    else:
        next_at = now + dt.timedelta(seconds=retry_delay(delivery.attempts))
        if next_at - delivery.created_at > dt.timedelta(seconds=config.retry_window_seconds):
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
            disable_reason = (
                f"Delivery {delivery.message_id} failed {delivery.attempts} times over "
                f"{config.retry_window_seconds / 3600:g} h; last: "
                f"{outcome.error or f'HTTP {outcome.status}'}"
            )
        else:
            delivery.next_attempt_at = next_at
    return disable_reason


_RECORDED_FIELDS = (
    "status",
    "last_attempt_at",
    "response_status",
    "response_excerpt",
    "error",
    "latency_ms",
    "claimed_by",
    "succeeded_at",
    "next_attempt_at",
)


def _store_outcomes(model, deliveries: list, token: str) -> None:
    """One parameterised UPDATE per delivery, sent as one batch (psycopg pipelines
    ``executemany``): Django's ``bulk_update`` builds a CASE per field and row, which costs
    more than the sends. Our own table, our own columns."""
    fields = [model._meta.get_field(name) for name in _RECORDED_FIELDS]
    assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
    sql = (
        f"UPDATE {connection.ops.quote_name(model._meta.db_table)} SET {assignments} "  # noqa: S608
        "WHERE id = %s AND claimed_by = %s"
    )
    rows = [
        [f.get_db_prep_save(getattr(d, f.attname), connection) for f in fields] + [d.pk, token]
        for d in deliveries
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def delivery_session() -> requests.Session:
    """The HTTP client deliveries use. Proxy settings from the environment are ignored: a
    proxy would reach addresses the SSRF check refused; each request goes to the address that
    was checked (``PinnedAddressAdapter``)."""
    session = requests.Session()
    session.trust_env = False
    pinned = PinnedAddressAdapter()
    session.mount("http://", pinned)
    session.mount("https://", pinned)
    return session


# Outcomes are stored in one transaction per this many sends (or this many seconds): a crash
# before a flush re-sends those few after their lease (receivers dedupe on webhook-id).
FLUSH_EVERY = 50
FLUSH_SECONDS = 1.0


def _send_claimed(model, claimed: list, *, tenant_id, session, now_fn) -> dict:
    from operations.events.notify import endpoint_disabled_notify

    counts = {"sent": 0, "succeeded": 0, "failed": 0, "gave_up": 0}
    own_session = session is None
    session = session or delivery_session()
    manager = model.objects.unscoped() if model is Delivery else model.objects
    unflushed: list[tuple[object, str, str | None]] = []

    def flush():
        with scoped_atomic(tenant_id):
            # Guarded by the claim: a worker that overran its lease does not overwrite the
            # attempt that took over. One statement for the plain outcomes of one claim.
            plain: dict[str, list] = {}
            for delivery, token, reason in unflushed:
                if not reason:
                    plain.setdefault(token, []).append(delivery)
                    continue
                stored = manager.filter(pk=delivery.pk, claimed_by=token).update(
                    **{name: getattr(delivery, name) for name in _RECORDED_FIELDS}
                )
                if stored:
                    counts["gave_up"] += 1
                    endpoint = delivery.endpoint
                    if endpoint_disable_for_failures(
                        endpoint=endpoint, reason=reason, now=now_fn()
                    ):
                        transaction.on_commit(
                            lambda e=endpoint, r=reason: endpoint_disabled_notify(
                                endpoint=e, reason=r
                            )
                        )
            for token, deliveries in plain.items():
                _store_outcomes(model, deliveries, token)
        unflushed.clear()

    last_flush = time.monotonic()
    try:
        for delivery in claimed:
            now = now_fn()
            token = delivery.claimed_by
            outcome = send_one(session, delivery.endpoint, delivery, now=now)
            unflushed.append((delivery, token, _record(model, delivery, outcome, now=now)))
            counts["sent"] += 1
            counts["succeeded" if outcome.ok else "failed"] += 1
            if len(unflushed) >= FLUSH_EVERY or time.monotonic() - last_flush >= FLUSH_SECONDS:
                flush()
                last_flush = time.monotonic()
    finally:
        if unflushed:
            flush()
        if own_session:
            session.close()
    return counts


def deliveries_send_due(
    *,
    tenant_id: int,
    now: dt.datetime | None = None,
    limit: int | None = None,
    session: requests.Session | None = None,
) -> dict:
    """Send the tenant's due deliveries (first attempts and retries); returns counts."""
    limit = limit or events_settings().batch_size

    def now_fn():
        return now or timezone.now()

    with tenant_scope(tenant_id):
        with transaction.atomic():
            claimed = _claim(Delivery, Q(tenant_id=tenant_id), now=now_fn(), limit=limit)
        if not claimed:
            return {"sent": 0, "succeeded": 0, "failed": 0, "gave_up": 0}
    # Sent outside any transaction: a slow receiver holds no lock and no connection state.
    return _send_claimed(Delivery, claimed, tenant_id=tenant_id, session=session, now_fn=now_fn)


def msp_deliveries_send_due(
    *,
    tenant_slug: str | None = None,
    now: dt.datetime | None = None,
    limit: int | None = None,
    session: requests.Session | None = None,
) -> dict:
    """Send due deliveries of MSP-wide endpoints (one tenant's events only, if named)."""
    limit = limit or events_settings().batch_size

    def now_fn():
        return now or timezone.now()

    base = Q(tenant_slug=tenant_slug) if tenant_slug else Q()
    with transaction.atomic():
        claimed = _claim(MspDelivery, base, now=now_fn(), limit=limit)
    if not claimed:
        return {"sent": 0, "succeeded": 0, "failed": 0, "gave_up": 0}
    return _send_claimed(MspDelivery, claimed, tenant_id=None, session=session, now_fn=now_fn)


def tenants_with_pending_events() -> list[int]:
    from tenants.scoping import all_tenants_scope

    with all_tenants_scope() as tenant_ids:
        if not tenant_ids:
            return []
        pending = OutboxEvent.objects.filter(published_at__isnull=True).order_by()
        return sorted(set(pending.values_list("tenant_id", flat=True).distinct()))


def tenants_with_due_deliveries(now: dt.datetime | None = None) -> list[int]:
    from tenants.scoping import all_tenants_scope

    now = now or timezone.now()
    with all_tenants_scope() as tenant_ids:
        if not tenant_ids:
            return []
        due = Delivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__is_active=True
        ).order_by()
        # Emails left pending (a worker died after publishing): the send task sends them.
        unsent = Notification.objects.filter(
            status=NotificationStatus.PENDING, created_at__lte=now - dt.timedelta(minutes=1)
        ).order_by()
        return sorted(
            set(due.values_list("tenant_id", flat=True).distinct())
            | set(unsent.values_list("tenant_id", flat=True).distinct())
        )


def msp_deliveries_due(now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    return MspDelivery.objects.filter(
        status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__is_active=True
    ).exists()
