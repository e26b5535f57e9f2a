"""Filters of the webhook delivery logs (API)."""

from __future__ import annotations

import django_filters

from msp.api.filters import FilterSet
from operations.events.models import Delivery, DeliveryStatus, MspDelivery


class DeliveryFilter(FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=DeliveryStatus.choices)
    endpoint = django_filters.NumberFilter(field_name="endpoint_id", min_value=1)
    topic = django_filters.CharFilter()

    class Meta:
        model = Delivery
        fields = ["status", "endpoint", "topic"]


class MspDeliveryFilter(DeliveryFilter):
    tenant = django_filters.CharFilter(field_name="tenant_slug")

    class Meta:
        model = MspDelivery
        fields = ["status", "endpoint", "topic", "tenant"]
