"""The integration-events outbox: one row per event, written in the transaction of the change."""

from __future__ import annotations

from django.db import models

from tenants.scoping import TenantOwnedModel


class OutboxEvent(TenantOwnedModel):
    """Something integrations may hear about (see ``catalogue.CATALOGUE``).

    ``payload`` holds client-visible data only: it is what a client's webhook will receive.
    ``published_at`` is set when the publisher has made its deliveries; pruned after retention.
    """

    topic = models.CharField(max_length=100, db_index=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["created_at", "id"],
                condition=models.Q(published_at__isnull=True),
                name="events_outbox_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk}"


class EndpointKind(models.TextChoices):
    WEBHOOK = "webhook", "Signed webhook (Standard Webhooks)"
    SLACK = "slack", "Slack incoming webhook"
    TEAMS = "teams", "Microsoft Teams incoming webhook"


class EndpointFields(models.Model):
    """What a tenant's and an MSP-wide endpoint share. The secrets sign every delivery; they are
    kept readable (signing needs them) and shown to people once, when made."""

    url = models.URLField(max_length=500)
    kind = models.CharField(
        max_length=10, choices=EndpointKind.choices, default=EndpointKind.WEBHOOK
    )
    description = models.CharField(max_length=200, blank=True)
    #: Event types delivered; empty means every type in the catalogue.
    event_types = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        "tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.description or self.url

    @property
    def secret_hint(self) -> str:
        return f"{self.secret[:10]}…" if self.secret else ""

    def wants(self, topic: str) -> bool:
        return not self.event_types or topic in self.event_types


class WebhookEndpoint(EndpointFields, TenantOwnedModel):
    """A tenant's endpoint: receives that tenant's events only; its tenant admins manage it."""

    class Meta:
        ordering = ["id"]


class MspWebhookEndpoint(EndpointFields):
    """An MSP-wide endpoint (the MSP's PSA or ticketing): receives every tenant's events it
    subscribes to, optionally only some tenants'. Staff manage it, outside any tenant."""

    #: Tenant slugs to hear from; empty means every tenant.
    tenant_slugs = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "MSP-wide webhook endpoint"

    def hears(self, tenant_slug: str) -> bool:
        return not self.tenant_slugs or tenant_slug in self.tenant_slugs


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (gave up)"


class DeliveryFields(models.Model):
    """One message to one endpoint, with its attempts. The body is kept whole (the envelope),
    so a delivery outlives the outbox row it came from and a redelivery sends the same bytes."""

    #: The outbox event it carries (no key: published outbox rows are pruned); null for tests.
    event_id = models.BigIntegerField(null=True, blank=True)
    #: What the event is about, e.g. ``incident:12``, so its page can list who was told.
    subject_ref = models.CharField(max_length=100, blank=True, db_index=True)
    message_id = models.CharField(max_length=64)
    topic = models.CharField(max_length=100)
    body = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=500, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    #: The worker's claim of this attempt (a conditional update sets it; the lease is
    #: ``next_attempt_at``), so two workers never send the same attempt.
    claimed_by = models.CharField(max_length=32, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.topic} → {self.endpoint_id} ({self.status})"


class Delivery(DeliveryFields, TenantOwnedModel):
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="events_delivery_once")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="events_delivery_due",
            )
        ]


class MspDelivery(DeliveryFields):
    endpoint = models.ForeignKey(
        MspWebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    tenant_slug = models.SlugField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "MSP-wide delivery"
        verbose_name_plural = "MSP-wide deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_id"], name="events_msp_delivery_once"
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="events_msp_delivery_due",
            )
        ]


class NotificationPreference(TenantOwnedModel):
    """Which events one person is emailed about in one tenant. Staff choose their tenants by
    having a row in each; without a row, the defaults of ``notify.DEFAULT_EVENTS`` apply."""

    user = models.ForeignKey("tenants.User", on_delete=models.CASCADE, related_name="+")
    #: Event types to email; empty means none (email off for this tenant).
    event_types = models.JSONField(default=list, blank=True)
    email = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="events_preference_once")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.tenant_id}"


class NotificationChannel(models.TextChoices):
    EMAIL = "email", "Email"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Notification(TenantOwnedModel):
    """One message to one person about one event (webhook and chat deliveries are
    ``Delivery`` rows): who was told, how and when."""

    event_id = models.BigIntegerField(null=True, blank=True)
    topic = models.CharField(max_length=100)
    #: What the event is about, e.g. ``incident:12``, so its page can list who was told.
    subject_ref = models.CharField(max_length=100, blank=True, db_index=True)
    channel = models.CharField(max_length=10, choices=NotificationChannel.choices)
    user = models.ForeignKey(
        "tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recipient = models.CharField(max_length=254)
    subject = models.CharField(max_length=200)
    status = models.CharField(
        max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event_id", "channel", "recipient"], name="events_notification_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.topic} → {self.recipient} ({self.status})"


# --- On call and escalation ------------------------------------------------------------------


class ShiftLength(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"


class OnCallRotation(models.Model):
    """MSP staff taking turns: ``members`` (user ids, in order) each hold one shift of
    ``shift`` length from ``starts_at``, round and round; overrides win over the turn."""

    name = models.CharField(max_length=100, unique=True)
    shift = models.CharField(max_length=10, choices=ShiftLength.choices, default=ShiftLength.WEEKLY)
    starts_at = models.DateTimeField(help_text="When the first member's first shift begins.")
    members = models.JSONField(default=list, help_text="Staff user ids, in turn order.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class OnCallOverride(models.Model):
    rotation = models.ForeignKey(OnCallRotation, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey("tenants.User", on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["starts_at", "id"]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.rotation_id} {self.starts_at:%Y-%m-%d %H:%M}"


class EscalationHours(models.TextChoices):
    ALWAYS = "always", "Around the clock"
    PLAN = "plan", "The tenant's plan hours (business hours for a business-hours plan)"


class EscalationPolicy(TenantOwnedModel):
    """Who is told while an incident of this tenant is unacknowledged.

    ``steps``: ``[{"after_minutes": 0, "notify": ["oncall:<rotation id>", "user:<id>",
    "assigned_staff", "tenant_admins"]}, …]``, each ``after_minutes`` after the previous step
    (the first after the incident opened). With ``repeat`` the steps start over after the last.
    With ``hours`` = plan the minutes count only inside the plan's working hours, as its SLA
    clocks do, so nobody is paged outside them: a step due overnight fires when they open.
    """

    name = models.CharField(max_length=100, default="Default")
    severities = models.JSONField(default=list, help_text="Severities it covers, e.g. SEV1.")
    steps = models.JSONField(default=list)
    repeat = models.BooleanField(default=False)
    #: How many times the steps run in all when they repeat.
    max_rounds = models.PositiveSmallIntegerField(default=3)
    hours = models.CharField(
        max_length=10,
        choices=EscalationHours.choices,
        default=EscalationHours.ALWAYS,
        help_text="When the steps' minutes run and pages go out.",
    )

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "escalation policies"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="events_policy_name")
        ]

    def __str__(self) -> str:
        return self.name


class IncidentSignal(TenantOwnedModel):
    """A step fired, or a warning sent, for an incident: the unique key makes it once only,
    however many scans race or re-run after a crash."""

    incident_id = models.BigIntegerField()
    #: ``escalation:<round>:<step>``, ``sla_at_risk:ack``, ``regulator_deadline_near`` …
    key = models.CharField(max_length=50)
    fired_at = models.DateTimeField()
    notified = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["fired_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "incident_id", "key"], name="events_signal_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.key}"
