from __future__ import annotations

from rest_framework import serializers

from msp.api.serializers import StrictSerializer
from operations.reports.models import Report, ReportKind
from operations.reports.selectors import report_formats


class ReportSerializer(serializers.ModelSerializer):
    """A report version: what it covers, its state and its files' checksums (download them
    from ``…/download?format=pdf|html``, an evidence pack's from ``…/download?format=zip``)."""

    formats = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = [
            "id",
            "kind",
            "framework",
            "period_label",
            "period_start",
            "period_end",
            "version",
            "status",
            "title",
            "time_zone",
            "summary",
            "proposals",
            "html_sha256",
            "html_size",
            "pdf_sha256",
            "pdf_size",
            "pdf_pages",
            "pdf_missing_reason",
            "zip_sha256",
            "zip_size",
            "formats",
            "job_run_id",
            "generated_at",
            "published_at",
        ]
        read_only_fields = fields

    def get_formats(self, report: Report) -> list[str]:
        return report_formats(report)


class ReportDetailSerializer(ReportSerializer):
    class Meta(ReportSerializer.Meta):
        fields = [*ReportSerializer.Meta.fields, "figures"]
        read_only_fields = fields


class ReportRequestSerializer(StrictSerializer):
    """A month's or quarter's report names ``period``; an evidence pack names ``framework``,
    ``from`` and ``to`` (days, inclusive, in the tenant's time zone)."""

    kind = serializers.ChoiceField(choices=ReportKind.choices, default=ReportKind.MONTHLY)
    period = serializers.CharField(
        max_length=7, required=False, help_text="A past month (YYYY-MM) or quarter (YYYY-Qn)."
    )
    framework = serializers.SlugField(
        max_length=50, required=False, help_text="An evidence pack's framework, e.g. eu-ai-act."
    )

    def get_fields(self):
        fields = super().get_fields()
        # "from" is a Python keyword: declared here rather than as a class attribute.
        fields["from"] = serializers.DateField(
            required=False, help_text="An evidence pack's first day (YYYY-MM-DD)."
        )
        fields["to"] = serializers.DateField(
            required=False, help_text="An evidence pack's last day, inclusive."
        )
        return fields

    def validate(self, attrs):
        needed = (
            ("framework", "from", "to")
            if attrs["kind"] == ReportKind.EVIDENCE_PACK
            else ("period",)
        )
        missing = {name: ["This field is required."] for name in needed if name not in attrs}
        if missing:
            raise serializers.ValidationError(missing)
        return attrs


class ReportDraftSerializer(StrictSerializer):
    summary = serializers.CharField(required=False, allow_blank=True, max_length=10000)
    proposals = serializers.CharField(required=False, allow_blank=True, max_length=10000)


class ReportRequestedSerializer(serializers.Serializer):
    job_run = serializers.IntegerField(help_text="The run that generates it: …/jobs/{id}/.")
    kind = serializers.CharField()
    period = serializers.CharField()
    status = serializers.CharField()
