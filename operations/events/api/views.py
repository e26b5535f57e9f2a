"""Event and webhook endpoints.

- ``GET /api/v1/events/catalogue/``: the event types, versions and payload schemas.
- ``/api/v1/tenants/{slug}/webhooks/``: a tenant's endpoints (tenant admins, MSP admins);
  ``…/webhook-deliveries/``: their delivery log, with redelivery.
- ``/api/v1/webhooks/``, ``/api/v1/webhook-deliveries/``: MSP-wide endpoints (MSP admins),
  refused to a tenant-bound token.

The signing secret is in the response of a create and of ``rotate-secret`` only.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from operations.events import services
from operations.events.api import serializers as s
from operations.events.catalogue import CATALOGUE, envelope_schema
from operations.events.filters import DeliveryFilter, MspDeliveryFilter
from operations.events.models import (
    Delivery,
    MspDelivery,
    MspWebhookEndpoint,
    Notification,
    NotificationPreference,
    WebhookEndpoint,
)
from operations.events.selectors import deliveries_with_endpoints, on_call_rows
from tenants.api.base import MspWideAPIView, MspWideViewSet, TenantScopedViewSet


class EventCatalogueView(MspWideAPIView):
    """``GET /api/v1/events/catalogue/``: every event type a webhook may receive, its version,
    what it means and the JSON schema of its payload. A catalogue: no tenant data."""

    @extend_schema(responses=s.EventCatalogueSerializer)
    def get(self, request):
        rows = [
            {
                "name": event.name,
                "version": event.version,
                "description": event.description,
                "emitted": event.emitted,
                "schema": event.schema,
            }
            for event in CATALOGUE.values()
        ]
        return Response({"count": len(rows), "envelope": envelope_schema(), "results": rows})


class OnCallView(MspWideAPIView):
    """``GET /api/v1/oncall/``: who is on call now in each rotation, until when. MSP staff
    only; a token bound to a tenant is refused (rotations are the MSP's, not a tenant's)."""

    bound_token_refused_actions = frozenset({"get"})

    @extend_schema(responses=s.OnCallListSerializer)
    def get(self, request):
        if not request.user.is_msp_staff:
            raise exceptions.PermissionDenied("On-call rotations are for MSP staff.")
        rows = on_call_rows()
        return Response({"count": len(rows), "results": rows})


class _EndpointActions:
    """The actions both endpoint viewsets share; ``endpoint_tenant`` is None for MSP-wide."""

    created_serializer_class: type
    ordering_fields = ["id", "url", "created_at"]
    ordering = ["id"]
    search_fields = ["url", "description"]
    lookup_value_regex = r"[0-9]+"

    def endpoint_tenant(self):
        raise NotImplementedError

    def create(self, request, *args, **kwargs):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint, secret = services.endpoint_create(
            tenant=self.endpoint_tenant(), created_by=request.user, **body.validated_data
        )
        endpoint.secret = secret
        return Response(
            self.created_serializer_class(endpoint).data, status=status.HTTP_201_CREATED
        )

    def perform_update(self, serializer):
        serializer.instance = services.endpoint_update(
            tenant=self.endpoint_tenant(), endpoint=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.endpoint_delete(tenant=self.endpoint_tenant(), endpoint=instance)

    def _rotate(self, request):
        body = s.RotateSecretSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint, secret = services.endpoint_rotate_secret(
            tenant=self.endpoint_tenant(), endpoint=self.get_object(), **body.validated_data
        )
        endpoint.secret = secret
        return Response(self.created_serializer_class(endpoint).data)

    def _send_test(self, request):
        body = s.EmptySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint = self.get_object()
        if not endpoint.is_active:
            raise exceptions.ValidationError({"is_active": ["Enable the endpoint first."]})
        delivery = services.endpoint_send_test(
            tenant=self.endpoint_tenant(), endpoint=endpoint, user=request.user
        )
        return delivery

    def _redeliver_failed(self, request):
        body = s.EmptySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        count = services.endpoint_redeliver_failed(
            tenant=self.endpoint_tenant(), endpoint=self.get_object()
        )
        return Response({"redelivered": count})


class WebhookEndpointViewSet(
    _EndpointActions,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantScopedViewSet,
):
    """This tenant's webhook endpoints: they receive this tenant's events only."""

    model = WebhookEndpoint
    serializer_class = s.WebhookEndpointSerializer
    created_serializer_class = s.WebhookEndpointCreatedSerializer
    write_capability = "manage"
    action_capabilities = {"list": "manage", "retrieve": "manage"}

    def endpoint_tenant(self):
        return self.tenant

    @extend_schema(
        request=s.WebhookEndpointSerializer, responses={201: s.WebhookEndpointCreatedSerializer}
    )
    def create(self, request, *args, **kwargs):
        """Add an endpoint; the response holds its signing secret, shown once."""
        return super().create(request, *args, **kwargs)

    @extend_schema(request=s.RotateSecretSerializer, responses=s.WebhookEndpointCreatedSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, *args, **kwargs):
        """A new secret (shown once); the old one signs beside it during the overlap."""
        return self._rotate(request)

    @extend_schema(request=s.EmptySerializer, responses={202: s.DeliverySerializer})
    @action(detail=True, methods=["post"], url_path="send-test")
    def send_test(self, request, *args, **kwargs):
        """Queue a ``webhook.test`` message to this endpoint alone."""
        delivery = self._send_test(request)
        return Response(s.DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.EmptySerializer, responses=s.RedeliveredSerializer)
    @action(detail=True, methods=["post"], url_path="redeliver-failed")
    def redeliver_failed(self, request, *args, **kwargs):
        """Send every failed delivery of this endpoint again."""
        return self._redeliver_failed(request)


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The delivery log of this tenant's endpoints: one row per message and endpoint."""

    model = Delivery
    serializer_class = s.DeliverySerializer
    action_capabilities = {"list": "manage", "retrieve": "manage", "redeliver": "manage"}
    filterset_class = DeliveryFilter
    ordering_fields = ["created_at", "last_attempt_at", "latency_ms"]
    ordering = ["-created_at", "-id"]
    lookup_value_regex = r"[0-9]+"

    def get_serializer_class(self):
        return s.DeliveryDetailSerializer if self.action == "retrieve" else s.DeliverySerializer

    def filter_scoped_queryset(self, queryset):
        return deliveries_with_endpoints(queryset)

    @extend_schema(request=s.EmptySerializer, responses=s.DeliverySerializer)
    @action(detail=True, methods=["post"])
    def redeliver(self, request, *args, **kwargs):
        """Send this message again (same id and body), with a fresh retry budget."""
        body = s.EmptySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        delivery = services.delivery_redeliver(tenant=self.tenant, delivery=self.get_object())
        return Response(s.DeliverySerializer(delivery).data)


class NotificationPreferenceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantScopedViewSet,
):
    """Your own email settings in this tenant: which event types you are emailed about.
    Without a row the defaults apply (incident events for assigned staff and tenant admins).
    Staff choose their tenants by keeping a row in each."""

    model = NotificationPreference
    serializer_class = s.NotificationPreferenceSerializer
    # Everyone who reaches the tenant sets their own; a token still needs ``write``.
    write_capability = "read"
    ordering = ["id"]
    lookup_value_regex = r"[0-9]+"

    def filter_scoped_queryset(self, queryset):
        return queryset.filter(user=self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.notification_preference_set(
            tenant=self.tenant, user=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.notification_preference_set(
            tenant=self.tenant, user=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.notification_preference_delete(tenant=self.tenant, preference=instance)


class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Who was emailed about this tenant's events, and when (``?subject_ref=incident:12``)."""

    model = Notification
    serializer_class = s.NotificationSerializer
    action_capabilities = {"list": "manage", "retrieve": "manage"}
    filterset_fields = ["topic", "subject_ref", "status"]
    ordering = ["-created_at", "-id"]
    lookup_value_regex = r"[0-9]+"


class _MspAdminOnly:
    def require_msp_admin(self, request):
        if not getattr(request.user, "is_msp_admin", False):
            raise exceptions.PermissionDenied("MSP-wide webhooks are managed by MSP admins.")


class MspWebhookEndpointViewSet(
    _EndpointActions,
    _MspAdminOnly,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    MspWideViewSet,
):
    """MSP-wide endpoints (the MSP's PSA or ticketing): every tenant's events they subscribe
    to. MSP admins only; a token bound to a tenant is refused every action."""

    queryset = MspWebhookEndpoint.objects.order_by("id")
    serializer_class = s.MspWebhookEndpointSerializer
    created_serializer_class = s.MspWebhookEndpointCreatedSerializer
    bound_token_refused_actions = frozenset(
        {
            "list",
            "retrieve",
            "create",
            "update",
            "partial_update",
            "destroy",
            "rotate_secret",
            "send_test",
            "redeliver_failed",
        }
    )

    def endpoint_tenant(self):
        return None

    def check_permissions(self, request):
        super().check_permissions(request)
        self.require_msp_admin(request)

    @extend_schema(
        request=s.MspWebhookEndpointSerializer,
        responses={201: s.MspWebhookEndpointCreatedSerializer},
    )
    def create(self, request, *args, **kwargs):
        """Add an MSP-wide endpoint; the response holds its signing secret, shown once."""
        return super().create(request, *args, **kwargs)

    @extend_schema(
        request=s.RotateSecretSerializer, responses=s.MspWebhookEndpointCreatedSerializer
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, *args, **kwargs):
        """A new secret (shown once); the old one signs beside it during the overlap."""
        return self._rotate(request)

    @extend_schema(request=s.EmptySerializer, responses={202: s.MspDeliverySerializer})
    @action(detail=True, methods=["post"], url_path="send-test")
    def send_test(self, request, *args, **kwargs):
        """Queue a ``webhook.test`` message to this endpoint alone."""
        delivery = self._send_test(request)
        return Response(s.MspDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.EmptySerializer, responses=s.RedeliveredSerializer)
    @action(detail=True, methods=["post"], url_path="redeliver-failed")
    def redeliver_failed(self, request, *args, **kwargs):
        """Send every failed delivery of this endpoint again."""
        return self._redeliver_failed(request)


class MspDeliveryViewSet(
    _MspAdminOnly, mixins.ListModelMixin, mixins.RetrieveModelMixin, MspWideViewSet
):
    """The delivery log of the MSP-wide endpoints (MSP admins; refused to a bound token)."""

    queryset = MspDelivery.objects.select_related("endpoint").order_by("-created_at", "-id")
    serializer_class = s.MspDeliverySerializer
    filterset_class = MspDeliveryFilter
    ordering_fields = ["created_at", "last_attempt_at", "latency_ms"]
    lookup_value_regex = r"[0-9]+"
    bound_token_refused_actions = frozenset({"list", "retrieve", "redeliver"})

    def check_permissions(self, request):
        super().check_permissions(request)
        self.require_msp_admin(request)

    @extend_schema(request=s.EmptySerializer, responses=s.MspDeliverySerializer)
    @action(detail=True, methods=["post"])
    def redeliver(self, request, *args, **kwargs):
        """Send this message again (same id and body), with a fresh retry budget."""
        body = s.EmptySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        delivery = services.delivery_redeliver(tenant=None, delivery=self.get_object())
        return Response(s.MspDeliverySerializer(delivery).data)
