"""Inventory serializers. Foreign keys resolve inside the request's tenant (an id from another
tenant "does not exist"); the ``*_code`` / ``*_name`` fields are read-only conveniences that the
views load with ``select_related`` / ``prefetch_related`` (no query per row)."""

from __future__ import annotations

from django_countries.serializer_fields import CountryField
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from msp.api.serializers import StrictSerializer
from msp.api.values import ComputedField
from operations.inventory.models import (
    AISystem,
    AISystemDataset,
    CloudAccount,
    ComputeResource,
    ComputeStatus,
    Dataset,
    Deployment,
    GpuDevice,
    Link,
    Site,
    Stage,
    cloud_account_key,
)
from tenants.api.owned import TenantOwnedSerializer, TenantScopedSlugRelatedField

TIMESTAMPS = ["created_at", "updated_at"]


def _name_of(source: str) -> serializers.CharField:
    return serializers.CharField(source=source, read_only=True, allow_null=True)


@extend_schema_field(
    {"type": "string", "pattern": "^[A-Z]{2}$", "description": "ISO 3166-1 alpha-2 code"}
)
class CountryCodeField(CountryField):
    """A country as its two-letter code (names such as "Germany" are accepted on input)."""


@extend_schema_field(
    {"type": "string", "enum": ComputeStatus.values}, component_name="ComputeStatusEnum"
)
class ComputeStatusField(serializers.ChoiceField):
    # Its own schema component: "status" is a common field name with other choice sets.
    def __init__(self, **kwargs):
        super().__init__(choices=ComputeStatus.choices, **kwargs)


class SiteSerializer(TenantOwnedSerializer):
    country = CountryCodeField()

    class Meta:
        model = Site
        fields = ["id", "code", "name", "kind", "country", "region", "provider", *TIMESTAMPS]
        read_only_fields = TIMESTAMPS


class LinkSerializer(TenantOwnedSerializer):
    site_a_code = _name_of("site_a.code")
    site_b_code = _name_of("site_b.code")

    class Meta:
        model = Link
        fields = [
            "id",
            "site_a",
            "site_a_code",
            "site_b",
            "site_b_code",
            "bandwidth_mbps",
            "latency_ms",
            "redundancy",
            "provider",
            *TIMESTAMPS,
        ]
        read_only_fields = TIMESTAMPS


class CloudAccountSerializer(TenantOwnedSerializer):
    class Meta:
        model = CloudAccount
        fields = [
            "id",
            "provider",
            "account_id",
            "name",
            "monthly_budget",
            "currency",
            *TIMESTAMPS,
        ]
        read_only_fields = TIMESTAMPS


class ComputeSerializer(TenantOwnedSerializer):
    # Writable like the import's ``site``: name the site by id (``site``) or by code.
    site_code = TenantScopedSlugRelatedField(
        model=Site,
        slug_field="code",
        source="site",
        required=False,
        allow_null=True,
        help_text="The site by its code; on write, instead of (or agreeing with) 'site'.",
    )
    cluster_hostname = _name_of("cluster.hostname")
    cloud_account_key = ComputedField(
        paths=("cloud_account__provider", "cloud_account__account_id"),
        function=cloud_account_key,
        help_text="The cloud account as provider:account_id, as imports and exports name it.",
    )
    node_count = serializers.IntegerField(read_only=True, default=0)
    status = ComputeStatusField(required=False)

    class Meta:
        model = ComputeResource
        fields = [
            "id",
            "hostname",
            "kind",
            "status",
            "site",
            "site_code",
            "cluster",
            "cluster_hostname",
            "node_count",
            "cloud_account",
            "cloud_account_key",
            "gpu_model",
            "gpu_count",
            "gpu_memory_gb",
            "hourly_cost",
            "gpu_uuids",
            *TIMESTAMPS,
        ]
        read_only_fields = TIMESTAMPS

    def validate(self, attrs):
        given = getattr(self, "initial_data", {})
        if "site" in given and "site_code" in given:
            # Both write ``site``: the second would silently win, so they must agree.
            by_id = self.fields["site"].run_validation(given["site"])
            if by_id != attrs.get("site"):
                raise serializers.ValidationError(
                    {"site_code": ["Names another site than 'site'; give one of them."]}
                )
        return super().validate(attrs)


class GpuDeviceSerializer(TenantOwnedSerializer):
    compute_hostname = _name_of("compute.hostname")

    class Meta:
        model = GpuDevice
        fields = [
            "id",
            "compute",
            "compute_hostname",
            "index",
            "uuid",
            "mig_instance",
            "mig_profile",
            "model_name",
            "first_seen_at",
            "last_seen_at",
            *TIMESTAMPS,
        ]
        # Seen times are telemetry's: set when a scrape reports the GPU.
        read_only_fields = ["first_seen_at", "last_seen_at", *TIMESTAMPS]


class DatasetUsageSummarySerializer(serializers.ModelSerializer):
    """One line of an AI system's ``datasets`` (read-only; write through ai-system-datasets)."""

    dataset_name = _name_of("dataset.name")

    class Meta:
        model = AISystemDataset
        fields = ["id", "dataset", "dataset_name", "usage"]
        read_only_fields = fields


class AISystemSerializer(TenantOwnedSerializer):
    datasets = DatasetUsageSummarySerializer(
        source="dataset_usage", many=True, read_only=True, help_text="Datasets and their usage."
    )
    deployment_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = AISystem
        fields = [
            "id",
            "name",
            "purpose",
            "business_owner",
            "technical_owner",
            "stage",
            "risk_tier",
            "risk_classified_at",
            "provenance",
            "vendor",
            "model_name",
            "model_version",
            "personal_data",
            "human_oversight",
            "human_overseer",
            "user_facing",
            "generative",
            "annex_iii_area",
            "risk_reviewed_at",
            "technical_documentation_url",
            "fria_required",
            "fria_completed_at",
            "eu_database_id",
            "vendor_assessed_at",
            "ai_disclosure",
            "datasets",
            "deployment_count",
            *TIMESTAMPS,
        ]
        read_only_fields = TIMESTAMPS


class AISystemTransitionSerializer(StrictSerializer):
    stage = serializers.ChoiceField(choices=Stage.choices)


class DeploymentSerializer(TenantOwnedSerializer):
    ai_system_name = _name_of("ai_system.name")
    ai_system_stage = _name_of("ai_system.stage")
    compute_hostname = _name_of("compute.hostname")

    class Meta:
        model = Deployment
        fields = [
            "id",
            "name",
            "ai_system",
            "ai_system_name",
            "ai_system_stage",
            "model_version",
            "compute",
            "compute_hostname",
            "endpoint",
            "environment",
            "monitoring_enabled",
            "logging_enabled",
            "log_retention_days",
            "runbook_url",
            "deployed_at",
            "approved_by",
            *TIMESTAMPS,
        ]
        read_only_fields = TIMESTAMPS


class DatasetSerializer(TenantOwnedSerializer):
    residency_country = CountryCodeField(required=False, allow_blank=True)

    class Meta:
        model = Dataset
        fields = [
            "id",
            "name",
            "classification",
            "personal_data",
            "owner",
            "retention_days",
            "residency_country",
            "provenance",
            "licence",
            "quality_score",
            "last_validated_at",
            *TIMESTAMPS,
        ]
        read_only_fields = TIMESTAMPS


class AISystemDatasetSerializer(TenantOwnedSerializer):
    ai_system_name = _name_of("ai_system.name")
    dataset_name = _name_of("dataset.name")

    class Meta:
        model = AISystemDataset
        fields = ["id", "ai_system", "ai_system_name", "dataset", "dataset_name", "usage"]
