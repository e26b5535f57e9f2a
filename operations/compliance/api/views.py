"""Compliance endpoints.

MSP-wide and read-only for any authenticated caller with the ``read`` scope (catalogues hold
no tenant data, so a tenant-bound token reads them too): the check catalogue
(``/api/v1/compliance/checks/``) and the frameworks with their controls
(``/api/v1/compliance/frameworks/``). Per tenant, under ``/api/v1/tenants/{slug}/compliance/``:
``findings/`` (read), ``waivers/`` (read; written by the tenant's admins and MSP staff) and
``scores/`` (history, and ``scores/latest/``).
"""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from msp.api.csv_download import CsvListMixin
from msp.api.schema import csv_list_schema
from operations.compliance import selectors, services
from operations.compliance.api import serializers as s
from operations.compliance.checks import all_checks
from operations.compliance.evidence import build_evidence_pack, evidence_pack_filename
from operations.compliance.exports import FINDING_CSV_COLUMNS, findings_csv_filename
from operations.compliance.filters import FindingFilter, ScoreFilter, WaiverFilter
from operations.compliance.models import Finding, Framework, Score, Waiver
from tenants.api.base import (
    MspWideAPIView,
    MspWideViewSet,
    TenantScopedAPIView,
    TenantScopedModelViewSet,
    TenantScopedViewSet,
)


def _check_rows(framework: str | None = None) -> list[dict]:
    rows = []
    for check in all_checks():
        if framework and not any(c.startswith(f"{framework}:") for c in check.controls):
            continue
        rows.append(
            {
                "code": check.code,
                "title": check.title,
                "description": check.description,
                "severity": check.severity,
                "subject_type": check.subject_type,
                "controls": list(check.controls),
                "waivable": check.waivable,
                "opens_incident": check.opens_incident,
            }
        )
    return rows


class CheckCatalogueView(MspWideAPIView):
    """``GET /api/v1/compliance/checks/``: every automated check, its severity, the subjects it
    judges and the controls it maps to. ``?framework=eu-ai-act`` keeps that framework's."""

    @extend_schema(
        parameters=[OpenApiParameter("framework", str)],
        responses=s.CheckCatalogueSerializer,
    )
    def get(self, request):
        rows = _check_rows(request.query_params.get("framework") or None)
        return Response({"count": len(rows), "results": s.CheckSerializer(rows, many=True).data})


class FrameworkViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, MspWideViewSet):
    """Loaded framework versions; the detail lists the controls and the checks mapped to them."""

    queryset = Framework.objects.annotate(control_count=Count("controls")).order_by(
        "code", "-loaded_at"
    )
    filterset_fields = ["code", "version"]
    search_fields = ["code", "title"]
    ordering_fields = ["code", "version", "loaded_at"]

    def get_serializer_class(self):
        return s.FrameworkDetailSerializer if self.action == "retrieve" else s.FrameworkSerializer

    def retrieve(self, request, *args, **kwargs):
        framework = (
            Framework.objects.annotate(control_count=Count("controls"))
            .prefetch_related("controls")
            .filter(pk=self.kwargs["pk"])
            .first()
            if str(self.kwargs["pk"]).isdigit()
            else None
        )
        if framework is None:
            raise exceptions.NotFound()
        checks_by_control: dict[str, list[str]] = defaultdict(list)
        for check in all_checks():
            for reference in check.controls:
                code, control = reference.split(":", 1)
                if code == framework.code:
                    checks_by_control[control].append(check.code)
        context = {**self.get_serializer_context(), "checks_by_control": checks_by_control}
        return Response(s.FrameworkDetailSerializer(framework, context=context).data)


@extend_schema_view(list=csv_list_schema("findings"))
class FindingViewSet(
    CsvListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet
):
    """The tenant's findings: one per check and subject, updated by every scan.

    ``?status=`` filters on the effective status: ``fail`` is an unwaived failure, ``waived``
    a failure an unexpired waiver covers.
    """

    model = Finding
    serializer_class = s.FindingSerializer
    filterset_class = FindingFilter
    search_fields = ["subject_label", "detail", "check_code"]
    ordering_fields = ["check_code", "severity", "status", "first_seen", "last_seen", "resolved_at"]
    ordering = ["check_code", "subject_type", "subject_id"]
    csv_columns = FINDING_CSV_COLUMNS

    def csv_filename(self) -> str:
        return findings_csv_filename(self.tenant)

    def filter_scoped_queryset(self, queryset):
        return selectors.findings_with_waiver_state(queryset)


class WaiverViewSet(TenantScopedModelViewSet):
    """Waivers: accept a check's failure for a subject (or all subjects) until it expires.
    Tenant admins and MSP staff write them; everyone in the tenant reads them."""

    model = Waiver
    serializer_class = s.WaiverSerializer
    filterset_class = WaiverFilter
    write_capability = "manage"
    search_fields = ["check_code", "reason", "approved_by"]
    ordering_fields = ["created_at", "expires_at", "check_code"]
    ordering = ["-created_at", "-id"]

    def filter_scoped_queryset(self, queryset):
        return queryset.select_related("created_by")

    def perform_create(self, serializer):
        user = self.request.user if self.request.user.is_authenticated else None
        serializer.instance = services.waiver_create(
            tenant=self.tenant, created_by=user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.waiver_update(
            tenant=self.tenant, waiver=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.waiver_delete(tenant=self.tenant, waiver=instance)


class ScoreViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Scores per framework after each scan, newest first: the history. ``latest/`` gives the
    newest score of each framework.

    score = controls passing / controls assessed × 100, where a control is assessed when one of
    its checks applied to a subject, and passes when none of those findings fails unwaived.
    """

    model = Score
    serializer_class = s.ScoreSerializer
    filterset_class = ScoreFilter
    ordering_fields = ["computed_at", "score"]
    ordering = ["-computed_at", "-id"]

    def filter_scoped_queryset(self, queryset):
        return queryset.select_related("framework")

    @extend_schema(responses=s.ScoreSerializer(many=True))
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def latest(self, request, tenant_slug=None):
        scores = selectors.scores_latest(self.get_queryset()).order_by("framework__code")
        return Response(s.ScoreSerializer(scores, many=True).data)


class EvidencePackView(TenantScopedAPIView):
    """``GET …/compliance/evidence-pack?framework=&from=&to=``: the compliance evidence pack
    (``operations.compliance.evidence``) as a zip. Tenant admins and MSP staff."""

    model = Finding
    filter_backends: list = []
    pagination_class = None

    def required_capability(self, request) -> str:
        return "audit"  # the pack carries the audit trail: whoever reads the audit log

    @extend_schema(
        parameters=[s.EvidencePackQuerySerializer],
        responses={(200, "application/zip"): OpenApiTypes.BINARY},
    )
    def get(self, request, tenant_slug: str):
        query = s.EvidencePackQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        pack = build_evidence_pack(
            tenant=self.tenant,
            framework_code=params["framework"],
            period_start=params["from"],
            period_end=params["to"],
        )
        filename = evidence_pack_filename(
            tenant=self.tenant,
            framework_code=params["framework"],
            period_start=params["from"],
            period_end=params["to"],
        )
        response = HttpResponse(pack, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
