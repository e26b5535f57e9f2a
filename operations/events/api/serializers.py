from __future__ import annotations

from rest_framework import serializers

from msp.api.serializers import StrictModelSerializer, StrictSerializer
from operations.events.catalogue import CATALOGUE
from operations.events.models import (
    Delivery,
    EndpointKind,
    MspDelivery,
    MspWebhookEndpoint,
    Notification,
    NotificationPreference,
    WebhookEndpoint,
)

_ENDPOINT_FIELDS = [
    "id",
    "url",
    "kind",
    "description",
    "event_types",
    "is_active",
    "disabled_at",
    "disabled_reason",
    "secret_hint",
    "previous_secret_expires_at",
    "created_at",
    "updated_at",
]
_ENDPOINT_READ_ONLY = [
    "id",
    "disabled_at",
    "disabled_reason",
    "secret_hint",
    "previous_secret_expires_at",
    "created_at",
    "updated_at",
]


class EventTypeListField(serializers.ListField):
    child = serializers.ChoiceField(choices=sorted(CATALOGUE))

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text", "Event types to deliver (see /api/v1/events/catalogue/); empty: all."
        )
        super().__init__(**kwargs)


class WebhookEndpointSerializer(StrictModelSerializer):
    event_types = EventTypeListField()
    kind = serializers.ChoiceField(choices=EndpointKind.choices, required=False)
    secret_hint = serializers.CharField(read_only=True, help_text="The secret's first characters.")

    class Meta:
        model = WebhookEndpoint
        fields = _ENDPOINT_FIELDS
        read_only_fields = _ENDPOINT_READ_ONLY


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*_ENDPOINT_FIELDS, "secret"]
        read_only_fields = fields


class MspWebhookEndpointSerializer(WebhookEndpointSerializer):
    tenant_slugs = serializers.ListField(
        child=serializers.SlugField(),
        required=False,
        help_text="Only these tenants' events; empty: every tenant's.",
    )

    class Meta:
        model = MspWebhookEndpoint
        fields = [*_ENDPOINT_FIELDS, "tenant_slugs"]
        read_only_fields = _ENDPOINT_READ_ONLY


class MspWebhookEndpointCreatedSerializer(MspWebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(MspWebhookEndpointSerializer.Meta):
        fields = [*_ENDPOINT_FIELDS, "tenant_slugs", "secret"]
        read_only_fields = fields


class RotateSecretSerializer(StrictSerializer):
    overlap_seconds = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=7 * 24 * 3600,
        help_text="How long the old secret keeps signing beside the new one (default a day).",
    )


class EmptySerializer(StrictSerializer):
    pass


class RedeliveredSerializer(serializers.Serializer):
    redelivered = serializers.IntegerField()


_DELIVERY_FIELDS = [
    "id",
    "endpoint",
    "event_id",
    "message_id",
    "topic",
    "status",
    "attempts",
    "next_attempt_at",
    "last_attempt_at",
    "succeeded_at",
    "response_status",
    "response_excerpt",
    "error",
    "latency_ms",
    "created_at",
]


class DeliverySerializer(serializers.ModelSerializer):
    endpoint = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Delivery
        fields = _DELIVERY_FIELDS
        read_only_fields = fields


class DeliveryDetailSerializer(DeliverySerializer):
    class Meta(DeliverySerializer.Meta):
        fields = [*_DELIVERY_FIELDS, "body"]
        read_only_fields = fields


class MspDeliverySerializer(serializers.ModelSerializer):
    endpoint = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = MspDelivery
        fields = [*_DELIVERY_FIELDS, "tenant_slug"]
        read_only_fields = fields


class EventTypeSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()
    description = serializers.CharField()
    emitted = serializers.BooleanField(help_text="False: catalogued, not yet written by anything.")
    schema = serializers.JSONField(help_text="JSON schema of the payload (the envelope's data).")


class EventCatalogueSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    envelope = serializers.JSONField(help_text="JSON schema of every delivered body.")
    results = EventTypeSerializer(many=True)


class NotificationPreferenceSerializer(StrictModelSerializer):
    event_types = EventTypeListField(
        help_text="Event types to be emailed about in this tenant; empty: none."
    )

    class Meta:
        model = NotificationPreference
        fields = ["id", "event_types", "email", "updated_at"]
        read_only_fields = ["id", "updated_at"]


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = [
            "id",
            "topic",
            "subject_ref",
            "channel",
            "recipient",
            "subject",
            "status",
            "error",
            "created_at",
            "sent_at",
        ]
        read_only_fields = fields


class OnCallSerializer(serializers.Serializer):
    rotation = serializers.CharField()
    shift = serializers.CharField()
    user = serializers.CharField(allow_null=True, help_text="Username on call now (null: nobody).")
    name = serializers.CharField(allow_blank=True)
    email = serializers.CharField(allow_blank=True)
    until = serializers.DateTimeField(allow_null=True)
    override = serializers.BooleanField()


class OnCallListSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = OnCallSerializer(many=True)
