from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from msp.api.serializers import StrictModelSerializer, StrictSerializer
from tenants.models import (
    ApiToken,
    AuditEvent,
    Membership,
    OnboardingStep,
    ServicePlan,
    StaffAssignment,
    Tenant,
    TenantRole,
    TenantStatus,
    TokenScope,
)

User = get_user_model()


class TenantSerializer(StrictModelSerializer):
    allowed_transitions = serializers.SerializerMethodField()

    class Meta:
        model = Tenant
        fields = [
            "id",
            "slug",
            "name",
            "status",
            "industry",
            "region",
            "data_residency",
            "allowed_transitions",
            "created_at",
            "updated_at",
            "status_changed_at",
        ]
        read_only_fields = ["id", "status", "created_at", "updated_at", "status_changed_at"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_allowed_transitions(self, tenant: Tenant) -> list[str]:
        return list(tenant.allowed_transitions())


class TenantUpdateSerializer(TenantSerializer):
    class Meta(TenantSerializer.Meta):
        read_only_fields = [*TenantSerializer.Meta.read_only_fields, "slug"]


class TenantTransitionSerializer(StrictSerializer):
    status = serializers.ChoiceField(choices=TenantStatus.choices)


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$",
        "example": "08:00:00",
        "description": "Local time of day, HH:MM[:SS] (no offset: the plan's time zone applies).",
    }
)
class ClockTimeField(serializers.TimeField):
    """A time of day without an offset, which OpenAPI's ``format: time`` would require."""


class ServicePlanSerializer(StrictModelSerializer):
    serializer_field_mapping = {
        **StrictModelSerializer.serializer_field_mapping,
        models.TimeField: ClockTimeField,
    }

    class Meta:
        model = ServicePlan
        exclude = ["id", "tenant"]


class UserBriefSerializer(serializers.ModelSerializer):
    email = serializers.CharField(read_only=True, help_text="Blank when the user has none.")

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name"]
        read_only_fields = fields


class MembershipSerializer(StrictModelSerializer):
    user = UserBriefSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]
        read_only_fields = ["id", "user", "created_at"]


class MembershipCreateSerializer(StrictSerializer):
    username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=150, default="")
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=150, default="")
    role = serializers.ChoiceField(choices=TenantRole.choices, default=TenantRole.MEMBER)
    password = serializers.CharField(
        required=False,
        write_only=True,
        min_length=10,
        max_length=128,
        style={"input_type": "password"},
    )


class StaffAssignmentSerializer(StrictModelSerializer):
    user = UserBriefSerializer(read_only=True)
    username = serializers.CharField(write_only=True, max_length=150)
    msp_role = serializers.CharField(source="user.msp_role", read_only=True)

    class Meta:
        model = StaffAssignment
        fields = ["id", "user", "username", "msp_role", "created_at"]
        read_only_fields = ["id", "user", "msp_role", "created_at"]


class OnboardingStepSerializer(StrictModelSerializer):
    done = serializers.BooleanField(read_only=True)
    completed_by = serializers.CharField(
        source="completed_by.username", read_only=True, default=None
    )

    class Meta:
        model = OnboardingStep
        fields = [
            "id",
            "key",
            "title",
            "required",
            "position",
            "done",
            "completed_at",
            "completed_by",
            "notes",
        ]
        read_only_fields = ["id", "key", "title", "required", "position", "completed_at"]


class OnboardingStepDoneSerializer(StrictSerializer):
    notes = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ApiTokenSerializer(StrictModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)
    status = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "user",
            "scopes",
            "status",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        ]
        read_only_fields = fields

    def get_status(self, token: ApiToken) -> str:
        if token.revoked_at:
            return "revoked"
        return "expired" if token.is_expired else "active"


class ApiTokenCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=TokenScope.choices),
        min_length=1,
        max_length=3,
        default=lambda: [TokenScope.READ],
    )
    expires_in_days = serializers.IntegerField(
        required=False, min_value=1, max_value=3650, allow_null=True
    )


class ApiTokenIssuedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class AuditEventSerializer(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "occurred_at",
            "tenant",
            "actor_label",
            "source",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
            "request_id",
            "source_address",
        ]
        read_only_fields = fields


class MeTenantSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    role = serializers.CharField()


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    msp_role = serializers.CharField()
    tenants = MeTenantSerializer(many=True)
