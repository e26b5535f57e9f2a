from __future__ import annotations

from rest_framework import serializers

from msp.api.serializers import StrictSerializer
from operations.readiness.models import (
    Assessment,
    AssessmentAnswer,
    ReadinessFramework,
    ReadinessScore,
)
from operations.readiness.scoring import MAX_ANSWER
from tenants.api.owned import TenantOwnedSerializer


class ReadinessFrameworkSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReadinessFramework
        fields = ["id", "code", "version", "title", "checksum", "loaded_at"]
        read_only_fields = fields


class ReadinessFrameworkDetailSerializer(ReadinessFrameworkSerializer):
    class Meta(ReadinessFrameworkSerializer.Meta):
        fields = [*ReadinessFrameworkSerializer.Meta.fields, "definition"]
        read_only_fields = fields


class ReadinessAnswerSerializer(serializers.ModelSerializer):
    answered_by = serializers.CharField(source="answered_by.username", read_only=True, default=None)

    class Meta:
        model = AssessmentAnswer
        fields = ["question_key", "value", "note", "evidence_url", "answered_by", "answered_at"]
        read_only_fields = fields


class ReadinessAnswerWriteSerializer(StrictSerializer):
    """``PUT …/assessments/{id}/answers/{question_key}/``: the whole answer, saved as sent."""

    value = serializers.IntegerField(
        min_value=0, max_value=MAX_ANSWER, allow_null=True, help_text="A point of the scale, 0–4."
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")
    evidence_url = serializers.URLField(
        required=False, allow_blank=True, max_length=500, default=""
    )


class AssessmentSerializer(TenantOwnedSerializer):
    # Plain text, not an enum: the schema already has a "status" enum (the tenant's).
    status = serializers.CharField(read_only=True, help_text="draft or submitted")
    framework_version = serializers.CharField(source="framework.version", read_only=True)
    started_by = serializers.CharField(
        source="started_by.username", read_only=True, default=None, allow_null=True
    )
    submitted_by = serializers.CharField(
        source="submitted_by.username", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = Assessment
        fields = [
            "id",
            "framework",
            "framework_version",
            "status",
            "based_on",
            "started_by",
            "submitted_by",
            "submitted_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ReadinessProgressSerializer(StrictSerializer):
    questions = serializers.IntegerField()
    answered = serializers.IntegerField()
    unanswered = serializers.ListField(child=serializers.CharField())


class AssessmentDetailSerializer(AssessmentSerializer):
    answers = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta(AssessmentSerializer.Meta):
        fields = [*AssessmentSerializer.Meta.fields, "progress", "answers"]
        read_only_fields = fields

    def get_answers(self, assessment) -> list[dict]:
        return ReadinessAnswerSerializer(self.context["answers"], many=True).data

    def get_progress(self, assessment) -> dict:
        return ReadinessProgressSerializer(self.context["progress"]).data


class ReadinessScoreSerializer(serializers.ModelSerializer):
    """One point of the trend."""

    framework_version = serializers.CharField(source="framework.version", read_only=True)

    class Meta:
        model = ReadinessScore
        fields = [
            "id",
            "computed_at",
            "framework",
            "framework_version",
            "assessment",
            "overall",
            "level",
            "pillars",
            "job_run_id",
        ]
        read_only_fields = fields


class ReadinessLevelSerializer(StrictSerializer):
    level = serializers.IntegerField()
    name = serializers.CharField()
    meaning = serializers.CharField()


class ReadinessPillarScoreSerializer(StrictSerializer):
    key = serializers.CharField()
    title = serializers.CharField()
    weight = serializers.FloatField()
    score = serializers.FloatField(allow_null=True)
    from_answers = serializers.FloatField(allow_null=True)
    from_signals = serializers.FloatField(allow_null=True)


class ReadinessLinkSerializer(StrictSerializer):
    label = serializers.CharField()
    kind = serializers.CharField()
    id = serializers.CharField()


class ReadinessSignalSerializer(StrictSerializer):
    key = serializers.CharField()
    title = serializers.CharField()
    pillar = serializers.CharField()
    area = serializers.CharField(allow_blank=True)
    unit = serializers.CharField()
    value = serializers.FloatField(allow_null=True, help_text="null: no data")
    target = serializers.FloatField()
    floor = serializers.FloatField()
    weight = serializers.FloatField()
    points = serializers.FloatField(allow_null=True)
    explanation = serializers.CharField(allow_blank=True)
    links = ReadinessLinkSerializer(many=True)


class ReadinessActionSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=["signal", "question", "assessment"])
    key = serializers.CharField()
    pillar = serializers.CharField(allow_null=True)
    title = serializers.CharField()
    text = serializers.CharField()
    current = serializers.FloatField(allow_null=True)
    target = serializers.FloatField(allow_null=True)
    gain = serializers.FloatField(allow_null=True, help_text="Overall points gained")
    level_after = serializers.IntegerField(allow_null=True)
    links = ReadinessLinkSerializer(many=True)


class ReadinessFrameworkRefSerializer(StrictSerializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    version = serializers.CharField()


class ReadinessScoreReportSerializer(StrictSerializer):
    """A snapshot explained: level, pillars, signals against targets, top actions."""

    id = serializers.IntegerField()
    computed_at = serializers.DateTimeField()
    framework = ReadinessFrameworkRefSerializer()
    assessment = serializers.IntegerField(allow_null=True)
    overall = serializers.DecimalField(max_digits=5, decimal_places=1)
    level = ReadinessLevelSerializer()
    pillars = ReadinessPillarScoreSerializer(many=True)
    signals = ReadinessSignalSerializer(many=True)
    actions = ReadinessActionSerializer(many=True)


class ReadinessBandSerializer(StrictSerializer):
    p25 = serializers.IntegerField()
    median = serializers.IntegerField()
    p75 = serializers.IntegerField()


class ReadinessBenchmarkPillarSerializer(StrictSerializer):
    key = serializers.CharField()
    title = serializers.CharField()
    score = serializers.FloatField(allow_null=True)
    peers = ReadinessBandSerializer(allow_null=True, help_text="null: fewer than the minimum peers")


class ReadinessBenchmarkSerializer(StrictSerializer):
    industry = serializers.CharField(allow_blank=True)
    minimum_peers = serializers.IntegerField()
    band_points = serializers.IntegerField()
    available = serializers.BooleanField()
    pillars = ReadinessBenchmarkPillarSerializer(many=True)


class ReadinessRescoreSerializer(StrictSerializer):
    job_run = serializers.IntegerField()
    status = serializers.CharField()
