"""The delivery context's knobs, from Django settings (``WEBHOOKS_*``, ``EVENTS_*``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.core.signals import setting_changed


@dataclass(frozen=True)
class EventsSettings:
    #: Let endpoints point at loopback, link-local and private addresses (tests, labs).
    allow_private_addresses: bool
    connect_timeout: float
    read_timeout: float
    #: Retries: base * 2^(attempt-1), capped, with ±20 % jitter, while within the window.
    retry_base_seconds: float
    retry_cap_seconds: float
    retry_window_seconds: float
    #: How long a claimed attempt is held before another worker may send it.
    claim_lease_seconds: int
    #: How long a rotated-out secret keeps signing beside the new one.
    secret_overlap_seconds: int
    #: Published outbox rows and finished deliveries are deleted after these.
    outbox_retention_days: int
    delivery_retention_days: int
    #: Events published, and deliveries sent, per task run.
    batch_size: int
    #: The portal's public address, for links in emails and chat messages.
    site_url: str


@cache
def events_settings() -> EventsSettings:
    def value(name, default):
        return getattr(settings, name, default)

    return EventsSettings(
        allow_private_addresses=value("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", False),
        connect_timeout=value("WEBHOOKS_CONNECT_TIMEOUT_SECONDS", 3.0),
        read_timeout=value("WEBHOOKS_READ_TIMEOUT_SECONDS", 10.0),
        retry_base_seconds=value("WEBHOOKS_RETRY_BASE_SECONDS", 30.0),
        retry_cap_seconds=value("WEBHOOKS_RETRY_CAP_SECONDS", 6 * 3600.0),
        retry_window_seconds=value("WEBHOOKS_RETRY_WINDOW_SECONDS", 24 * 3600.0),
        claim_lease_seconds=value("WEBHOOKS_CLAIM_LEASE_SECONDS", 60),
        secret_overlap_seconds=value("WEBHOOKS_SECRET_OVERLAP_SECONDS", 24 * 3600),
        outbox_retention_days=value("EVENTS_OUTBOX_RETENTION_DAYS", 7),
        delivery_retention_days=value("EVENTS_DELIVERY_RETENTION_DAYS", 30),
        batch_size=value("EVENTS_BATCH_SIZE", 200),
        site_url=value("SITE_URL", "http://localhost:8000").rstrip("/"),
    )


def _forget(**kwargs) -> None:
    events_settings.cache_clear()


setting_changed.connect(_forget)
