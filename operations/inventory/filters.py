"""Filters for the inventory lists.

References to other rows filter by id (a number: an id from another tenant simply matches
nothing, and no lookup runs outside the request's scope) or by natural key (``site_code``,
``cluster_hostname``, ``ai_system_name``…).
"""

from __future__ import annotations

import django_filters
from django.db.models import Q

from msp.api.filters import FilterSet
from operations.inventory.models import (
    AISystem,
    AISystemDataset,
    CloudAccount,
    ComputeResource,
    Dataset,
    Deployment,
    GpuDevice,
    Link,
    Site,
)


class CharInFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    """``?stage__in=pilot,production``"""


class SiteFilter(FilterSet):
    kind__in = CharInFilter(field_name="kind", lookup_expr="in")
    country__in = CharInFilter(field_name="country", lookup_expr="in")

    class Meta:
        model = Site
        fields = ["kind", "country", "region", "provider", "code"]


class LinkFilter(FilterSet):
    site = django_filters.NumberFilter(method="filter_site", label="Site id at either end")
    site_code = django_filters.CharFilter(
        method="filter_site_code", label="Site code at either end"
    )
    site_a = django_filters.NumberFilter(field_name="site_a_id")
    site_b = django_filters.NumberFilter(field_name="site_b_id")
    min_bandwidth_mbps = django_filters.NumberFilter(field_name="bandwidth_mbps", lookup_expr="gte")
    max_latency_ms = django_filters.NumberFilter(field_name="latency_ms", lookup_expr="lte")

    class Meta:
        model = Link
        fields = ["redundancy", "provider"]

    def filter_site(self, queryset, name, value):
        return queryset.filter(Q(site_a_id=value) | Q(site_b_id=value))

    def filter_site_code(self, queryset, name, value):
        return queryset.filter(Q(site_a__code=value) | Q(site_b__code=value))


class CloudAccountFilter(FilterSet):
    class Meta:
        model = CloudAccount
        fields = ["provider", "currency", "account_id"]


class ComputeFilter(FilterSet):
    kind__in = CharInFilter(field_name="kind", lookup_expr="in")
    status__in = CharInFilter(field_name="status", lookup_expr="in")
    site = django_filters.NumberFilter(field_name="site_id")
    site_code = django_filters.CharFilter(field_name="site__code")
    cluster = django_filters.NumberFilter(field_name="cluster_id")
    cluster_hostname = django_filters.CharFilter(field_name="cluster__hostname")
    cloud_account = django_filters.NumberFilter(field_name="cloud_account_id")
    provider = django_filters.CharFilter(field_name="cloud_account__provider")
    gpu_model = django_filters.CharFilter(lookup_expr="iexact")
    gpu_model__icontains = django_filters.CharFilter(
        field_name="gpu_model", lookup_expr="icontains"
    )
    has_gpus = django_filters.BooleanFilter(method="filter_has_gpus")
    country = django_filters.CharFilter(field_name="site__country")

    class Meta:
        model = ComputeResource
        fields = ["kind", "status", "hostname"]

    def filter_has_gpus(self, queryset, name, value):
        return queryset.filter(gpu_count__gt=0) if value else queryset.filter(gpu_count=0)


class GpuDeviceFilter(FilterSet):
    compute = django_filters.NumberFilter(field_name="compute_id")
    compute_hostname = django_filters.CharFilter(field_name="compute__hostname")
    model_name = django_filters.CharFilter(lookup_expr="iexact")
    is_mig = django_filters.BooleanFilter(method="filter_is_mig", label="MIG instances only")

    class Meta:
        model = GpuDevice
        fields = ["index", "uuid", "mig_instance", "mig_profile"]

    def filter_is_mig(self, queryset, name, value):
        return queryset.exclude(mig_instance="") if value else queryset.filter(mig_instance="")


class AISystemFilter(FilterSet):
    stage__in = CharInFilter(field_name="stage", lookup_expr="in")
    risk_tier__in = CharInFilter(field_name="risk_tier", lookup_expr="in")
    dataset = django_filters.NumberFilter(field_name="dataset_usage__dataset_id", distinct=True)

    class Meta:
        model = AISystem
        fields = [
            "stage",
            "risk_tier",
            "provenance",
            "personal_data",
            "human_oversight",
            "user_facing",
            "generative",
            "vendor",
            "annex_iii_area",
            "fria_required",
            "ai_disclosure",
        ]


class DeploymentFilter(FilterSet):
    ai_system = django_filters.NumberFilter(field_name="ai_system_id")
    ai_system_name = django_filters.CharFilter(field_name="ai_system__name")
    stage = django_filters.CharFilter(field_name="ai_system__stage")
    risk_tier = django_filters.CharFilter(field_name="ai_system__risk_tier")
    compute = django_filters.NumberFilter(field_name="compute_id")
    compute_hostname = django_filters.CharFilter(field_name="compute__hostname")
    site = django_filters.NumberFilter(field_name="compute__site_id")
    has_runbook = django_filters.BooleanFilter(method="filter_has_runbook")

    class Meta:
        model = Deployment
        fields = ["environment", "monitoring_enabled", "logging_enabled", "model_version"]

    def filter_has_runbook(self, queryset, name, value):
        return queryset.exclude(runbook_url="") if value else queryset.filter(runbook_url="")


class DatasetFilter(FilterSet):
    classification__in = CharInFilter(field_name="classification", lookup_expr="in")
    used_by = django_filters.NumberFilter(method="filter_used_by", label="AI system id")

    class Meta:
        model = Dataset
        fields = ["classification", "personal_data", "residency_country", "owner", "licence"]

    def filter_used_by(self, queryset, name, value):
        used = AISystemDataset.objects.filter(ai_system_id=value).values("dataset_id")
        return queryset.filter(pk__in=used)


class AISystemDatasetFilter(FilterSet):
    ai_system = django_filters.NumberFilter(field_name="ai_system_id")
    dataset = django_filters.NumberFilter(field_name="dataset_id")

    class Meta:
        model = AISystemDataset
        fields = ["usage"]
