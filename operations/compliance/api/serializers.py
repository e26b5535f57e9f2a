from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from msp.api.serializers import StrictSerializer
from operations.compliance.checks import get_check
from operations.compliance.evidence import evidence_framework, evidence_period_check
from operations.compliance.models import (
    Control,
    Finding,
    Framework,
    Score,
    SubjectType,
    Waiver,
)
from tenants.api.owned import TenantOwnedSerializer


class CheckSerializer(StrictSerializer):
    """A check of the catalogue (served from the registry in ``checks.py``)."""

    code = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    severity = serializers.CharField()
    subject_type = serializers.CharField()
    controls = serializers.ListField(
        child=serializers.CharField(), help_text='"<framework>:<control>" references'
    )
    waivable = serializers.BooleanField()
    opens_incident = serializers.BooleanField()


class ControlSerializer(serializers.ModelSerializer):
    checks = serializers.SerializerMethodField()

    class Meta:
        model = Control
        fields = ["code", "group", "title", "summary", "checks"]

    def get_checks(self, control) -> list[str]:
        return self.context.get("checks_by_control", {}).get(control.code, [])


class FrameworkSerializer(serializers.ModelSerializer):
    control_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Framework
        fields = [
            "id",
            "code",
            "version",
            "title",
            "publisher",
            "url",
            "loaded_at",
            "control_count",
        ]
        read_only_fields = fields


class FrameworkDetailSerializer(FrameworkSerializer):
    controls = ControlSerializer(many=True, read_only=True)

    class Meta(FrameworkSerializer.Meta):
        fields = [*FrameworkSerializer.Meta.fields, "controls"]
        read_only_fields = fields


class FindingSerializer(serializers.ModelSerializer):
    check = serializers.CharField(source="check_code")
    # Plain strings in the schema: "severity" and "status" name other choice sets elsewhere.
    severity = serializers.CharField(read_only=True, help_text="critical, high, medium or low")
    status = serializers.CharField(read_only=True, help_text="pass, fail or not_applicable")
    check_title = serializers.SerializerMethodField()
    controls = serializers.SerializerMethodField()
    waived = serializers.BooleanField(read_only=True, default=False)
    effective_status = serializers.SerializerMethodField(
        help_text="pass, fail, not_applicable, or waived (a failure an unexpired waiver covers)"
    )

    class Meta:
        model = Finding
        fields = [
            "id",
            "check",
            "check_title",
            "controls",
            "severity",
            "subject_type",
            "subject_id",
            "subject_label",
            "status",
            "waived",
            "effective_status",
            "detail",
            "first_seen",
            "last_seen",
            "failing_since",
            "resolved_at",
            "last_scan",
        ]
        read_only_fields = fields

    def get_check_title(self, finding) -> str:
        check = get_check(finding.check_code)
        return check.title if check else ""

    def get_controls(self, finding) -> list[str]:
        check = get_check(finding.check_code)
        return list(check.controls) if check else []

    def get_effective_status(self, finding) -> str:
        return "waived" if getattr(finding, "waived", False) else finding.status


class CheckCatalogueSerializer(serializers.Serializer):
    """Documents ``GET /api/v1/compliance/checks/``: every check at once, not paginated."""

    count = serializers.IntegerField()
    results = CheckSerializer(many=True)


class WaiverSerializer(TenantOwnedSerializer):
    check = serializers.CharField(source="check_code", max_length=100)
    subject_type = serializers.ChoiceField(
        choices=SubjectType.choices, required=False, allow_blank=True
    )
    active = serializers.BooleanField(source="is_active", read_only=True)
    # A related field, not "created_by.username": a PATCH (partial) would drop a null one.
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Waiver
        fields = [
            "id",
            "check",
            "subject_type",
            "subject_id",
            "reason",
            "approved_by",
            "expires_at",
            "active",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["active", "created_by", "created_at", "updated_at"]


class ScoreSerializer(serializers.ModelSerializer):
    framework = serializers.CharField(source="framework.code", read_only=True)
    framework_version = serializers.CharField(source="framework.version", read_only=True)
    framework_title = serializers.CharField(source="framework.title", read_only=True)

    class Meta:
        model = Score
        fields = [
            "id",
            "framework",
            "framework_version",
            "framework_title",
            "scan",
            "computed_at",
            "score",
            "pass_rate",
            "controls_total",
            "controls_assessed",
            "controls_passed",
            "controls_failed",
            "controls_not_assessed",
            "failed_controls",
        ]
        read_only_fields = fields


class EvidencePackQuerySerializer(StrictSerializer):
    """``?framework=eu-ai-act&from=2026-10-01&to=2026-12-31`` (days inclusive, tenant's zone)."""

    framework = serializers.SlugField(max_length=50, help_text="Framework code, e.g. eu-ai-act.")

    def get_fields(self):
        fields = super().get_fields()
        # "from" is a Python keyword: declared here rather than as a class attribute.
        fields["from"] = serializers.DateField(help_text="First day of the period (YYYY-MM-DD).")
        fields["to"] = serializers.DateField(help_text="Last day of the period, inclusive.")
        return fields

    def validate(self, attrs):
        try:
            evidence_period_check(period_start=attrs["from"], period_end=attrs["to"])
            evidence_framework(attrs["framework"])
        except DjangoValidationError as refused:
            raise serializers.ValidationError(refused.message_dict) from None
        return attrs
