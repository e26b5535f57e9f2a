from __future__ import annotations

from rest_framework import serializers

from msp.api.serializers import StrictSerializer
from operations.reports.models import Report, ReportFormat, ReportKind


class ReportSerializer(serializers.ModelSerializer):
    """A report version: what it covers, its state and its files' checksums (download them
    from ``…/download?format=pdf|html``)."""

    formats = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = [
            "id",
            "kind",
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
            "formats",
            "job_run_id",
            "generated_at",
            "published_at",
        ]
        read_only_fields = fields

    def get_formats(self, report: Report) -> list[str]:
        return [ReportFormat.HTML] + ([ReportFormat.PDF] if report.pdf_sha256 else [])


class ReportDetailSerializer(ReportSerializer):
    class Meta(ReportSerializer.Meta):
        fields = [*ReportSerializer.Meta.fields, "figures"]
        read_only_fields = fields


class ReportRequestSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=ReportKind.choices, default=ReportKind.MONTHLY)
    period = serializers.CharField(
        max_length=7, help_text="A past month (YYYY-MM) or quarter (YYYY-Qn)."
    )


class ReportDraftSerializer(StrictSerializer):
    summary = serializers.CharField(required=False, allow_blank=True, max_length=10000)
    proposals = serializers.CharField(required=False, allow_blank=True, max_length=10000)


class ReportRequestedSerializer(serializers.Serializer):
    job_run = serializers.IntegerField(help_text="The run that generates it: …/jobs/{id}/.")
    kind = serializers.CharField()
    period = serializers.CharField()
    status = serializers.CharField()
