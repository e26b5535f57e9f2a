"""Reports of a tenant under ``/api/v1/tenants/{slug}/reports/``: the list and a version
(drafts for MSP staff only; evidence packs for those who read the audit log),
``{id}/download?format=pdf|html|zip``, ``POST`` to ask the job engine for a past month's report
or an evidence pack (tenant admins and MSP engineers; a quarterly review: MSP staff), and for
staff the draft review's ``PATCH`` (summary, proposals) and ``{id}/publish``."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from msp.api.errors import Conflict
from operations.reports import services
from operations.reports.api import serializers as s
from operations.reports.filters import ReportFilter
from operations.reports.models import Report, ReportFormat, ReportKind
from operations.reports.selectors import (
    ReportFileUnavailable,
    report_file_name,
    report_file_read,
    reports_visible,
)
from tenants.api.base import TenantScopedViewSet, request_token

CONTENT_TYPES = {
    ReportFormat.PDF: "application/pdf",
    ReportFormat.HTML: "text/html",
    ReportFormat.ZIP: "application/zip",
}


class _Settings:
    """DRF's settings, except that ``?format=`` is left to the view (the download's file
    format) instead of choosing a renderer."""

    URL_FORMAT_OVERRIDE = None

    def __getattr__(self, name):
        from rest_framework.settings import api_settings

        return getattr(api_settings, name)


class FormatIsTheFileFormat(DefaultContentNegotiation):
    settings = _Settings()


class ReportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    model = Report
    content_negotiation_class = FormatIsTheFileFormat
    filterset_class = ReportFilter
    ordering_fields = ["period_start", "generated_at", "version"]
    action_capabilities = {
        "create": "manage",
        "partial_update": "staff_write",
        "publish": "staff_write",
    }

    def get_serializer_class(self):
        return s.ReportDetailSerializer if self.action == "retrieve" else s.ReportSerializer

    def filter_scoped_queryset(self, queryset):
        queryset = reports_visible(queryset, access=self.access)
        if self.action != "list":
            queryset = queryset.defer(None)
        return queryset.order_by("-period_start", "kind", "-version")

    @extend_schema(request=s.ReportRequestSerializer, responses={202: s.ReportRequestedSerializer})
    def create(self, request, *args, **kwargs):
        body = s.ReportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        kind = body.validated_data["kind"]
        if kind == ReportKind.QUARTERLY and not self.access.allows("staff_write"):
            raise exceptions.PermissionDenied("Quarterly reviews are prepared by MSP staff.")
        if kind == ReportKind.EVIDENCE_PACK:
            return self._request_evidence_pack(request, body.validated_data)
        run = services.report_request(
            tenant=self.tenant,
            kind=kind,
            period_label=body.validated_data["period"],
            user=request.user,
            token=request_token(request),
        )
        data = {"job_run": run.pk, "kind": kind, "period": run.parameters["period"]}
        data["status"] = run.status
        return Response(s.ReportRequestedSerializer(data).data, status=status.HTTP_202_ACCEPTED)

    def _request_evidence_pack(self, request, params: dict) -> Response:
        run = services.evidence_pack_request(
            tenant=self.tenant,
            framework_code=params["framework"],
            period_start=params["from"],
            period_end=params["to"],
            user=request.user,
            token=request_token(request),
        )
        period = f"{run.parameters['from']}..{run.parameters['to']}"
        data = {"job_run": run.pk, "kind": ReportKind.EVIDENCE_PACK, "period": period}
        data["status"] = run.status
        return Response(s.ReportRequestedSerializer(data).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.ReportDraftSerializer, responses=s.ReportSerializer)
    def partial_update(self, request, *args, **kwargs):
        report = self.get_object()
        body = s.ReportDraftSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if report.is_published:
            raise Conflict("This report is published and cannot change; generate a new version.")
        report = services.report_draft_update(report=report, **body.validated_data)
        return Response(s.ReportSerializer(report).data)

    @extend_schema(request=None, responses=s.ReportSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request, *args, **kwargs):
        report = self.get_object()
        if report.is_published:
            raise Conflict("This report is published already.")
        report = services.report_publish(report=report, by_label=request.user.get_username())
        return Response(s.ReportSerializer(report).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=[f.value for f in ReportFormat],
                description="pdf or html; zip for an evidence pack (the default for one).",
            )
        ],
        responses={
            (200, "application/pdf"): OpenApiTypes.BINARY,
            (200, "text/html"): OpenApiTypes.STR,
            (200, "application/zip"): OpenApiTypes.BINARY,
        },
    )
    @action(detail=True, methods=["get"])
    def download(self, request, *args, **kwargs):
        fmt = request.query_params.get("format")
        if fmt is not None and fmt not in CONTENT_TYPES:
            raise exceptions.ValidationError({"format": ["Choose pdf, html or zip."]})
        report = self.get_object()
        # A report's first stored format by default: the PDF, or an evidence pack's zip.
        fmt = fmt or (ReportFormat.ZIP if report.zip_sha256 else ReportFormat.PDF)
        try:
            data = report_file_read(report=report, fmt=fmt)
        except ReportFileUnavailable as exc:
            raise Conflict(exc.reason) from None
        response = HttpResponse(data, content_type=CONTENT_TYPES[fmt])
        disposition = "inline" if fmt == ReportFormat.HTML else "attachment"
        response["Content-Disposition"] = (
            f'{disposition}; filename="{report_file_name(report, fmt)}"'
        )
        response["X-Content-Type-Options"] = "nosniff"
        # The HTML document is self-contained: it may load nothing, run nothing.
        response["Content-Security-Policy"] = (
            "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
        )
        response["X-Checksum-SHA256"] = getattr(report, f"{fmt}_sha256")
        return response
