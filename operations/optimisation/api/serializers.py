"""Recommendation API serializers: they validate and present; services write."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from msp.api.serializers import StrictSerializer
from operations.optimisation.models import (
    RECOMMENDATION_ACTIONS,
    Recommendation,
    RecommendationKind,
    RecommendationStatus,
    SubjectType,
)
from tenants.api.owned import TenantOwnedSerializer


@extend_schema_field(
    {"type": "string", "enum": RecommendationStatus.values},
    component_name="RecommendationStatusEnum",
)
class RecommendationStatusField(serializers.ChoiceField):
    # Its own schema component: "status" is a common field name with other choice sets.
    def __init__(self, **kwargs):
        super().__init__(choices=RecommendationStatus.choices, **kwargs)


@extend_schema_field(
    {"type": "string", "enum": SubjectType.values}, component_name="RecommendationSubjectTypeEnum"
)
class RecommendationSubjectTypeField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=SubjectType.choices, **kwargs)


@extend_schema_field(
    {"type": "string", "enum": RecommendationKind.values}, component_name="RecommendationKindEnum"
)
class RecommendationKindField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=RecommendationKind.choices, **kwargs)


class RecommendationSerializer(TenantOwnedSerializer):
    status = RecommendationStatusField(read_only=True)
    kind = RecommendationKindField(read_only=True)
    subject_type = RecommendationSubjectTypeField(read_only=True)
    subject = serializers.CharField(source="subject_key", read_only=True)
    allowed_actions = serializers.SerializerMethodField()

    class Meta:
        model = Recommendation
        fields = [
            "id",
            "kind",
            "subject",
            "subject_type",
            "subject_id",
            "subject_label",
            "title",
            "evidence",
            "estimated_monthly_saving",
            "currency",
            "status",
            "allowed_actions",
            "dismissed_reason",
            "accepted_at",
            "accepted_by_label",
            "implemented_at",
            "implemented_by_label",
            "dismissed_at",
            "dismissed_by_label",
            "first_seen",
            "last_seen",
            "refreshed_at",
            "resolved_at",
        ]
        read_only_fields = fields

    def get_allowed_actions(self, obj: Recommendation) -> list[str]:
        actions = RECOMMENDATION_ACTIONS.items()
        return [name for name, (sources, _target) in actions if obj.status in sources]


class EmptySerializer(StrictSerializer):
    """No body (unknown keys are refused)."""


class DismissSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000, help_text="Why it is dismissed (required).")


class SavingByKindSerializer(serializers.Serializer):
    kind = serializers.CharField()
    label = serializers.CharField()
    open = serializers.IntegerField()
    monthly_saving = serializers.DictField(child=serializers.CharField())


class RecommendationSummarySerializer(serializers.Serializer):
    open_monthly_saving = serializers.DictField(child=serializers.CharField())
    by_kind = SavingByKindSerializer(many=True)
    by_status = serializers.DictField(child=serializers.IntegerField())
