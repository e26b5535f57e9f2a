"""Gate endpoints of an AI system: ``GET …/ai-systems/{id}/gates`` (everyone who reaches the
tenant) and ``POST …/ai-systems/{id}/gates/override`` (msp_admin only); and the MSP's pipeline,
``GET /api/v1/readiness/pipeline`` (staff only)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from msp.api.pagination import StandardPagination
from operations.inventory.models import AISystem, Stage
from operations.readiness import gates
from operations.readiness.api import gate_serializers as s
from operations.readiness.pipeline import pipeline_rows_filtered, readiness_pipeline
from tenants.api.base import MspWideAPIView, TenantScopedViewSet


class AISystemGatesViewSet(TenantScopedViewSet):
    """Pilot → production gates of one AI system, and an MSP admin's override."""

    model = AISystem
    lookup_value_regex = r"[0-9]+"
    action_capabilities = {"override": "msp_admin"}
    serializer_class = s.GateReportSerializer
    filter_backends: list = []
    pagination_class = None

    @extend_schema(responses=s.GateReportSerializer)
    @action(detail=True, methods=["get"], url_path="gates")
    def gates(self, request, tenant_slug=None, pk=None):
        """Each criterion passed or failed, with the detail and the objects behind it."""
        ai_system = self.get_object()
        report = gates.ai_system_gates(tenant=self.tenant, ai_system=ai_system)
        return Response(s.gate_report_data(ai_system=ai_system, report=report))

    @extend_schema(request=s.GateOverrideRequestSerializer, responses={201: s.GateReportSerializer})
    @action(detail=True, methods=["post"], url_path="gates/override")
    def override(self, request, tenant_slug=None, pk=None):
        """Let the pilot into production despite its failing gates, with a reason (audited).
        It covers the criteria failing now, during this pilot."""
        ai_system = self.get_object()
        body = s.GateOverrideRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        gates.ai_system_gate_override(
            tenant=self.tenant,
            ai_system=ai_system,
            user=request.user,
            reason=body.validated_data["reason"],
        )
        report = gates.ai_system_gates(tenant=self.tenant, ai_system=ai_system)
        return Response(
            s.gate_report_data(ai_system=ai_system, report=report), status=status.HTTP_201_CREATED
        )


class PipelineQuerySerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=Stage.choices, required=False)
    gate_status = serializers.ChoiceField(choices=gates.GATE_STATUSES, required=False)
    tenant = serializers.SlugField(required=False, help_text="A tenant's slug.")
    stalled = serializers.BooleanField(required=False, allow_null=True, default=None)


class ReadinessPipelineView(MspWideAPIView):
    """``GET /api/v1/readiness/pipeline``: every AI system of the tenants the staff member can
    see (all for msp_admin, assigned ones otherwise; a bound token's tenant only), by stage,
    with gate status, blocking criteria and days in pilot; ``figures`` are over all of them,
    whatever the filters. Not for client users."""

    pagination_class = StandardPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("stage", str, enum=Stage.values),
            OpenApiParameter("gate_status", str, enum=list(gates.GATE_STATUSES)),
            OpenApiParameter("tenant", str, description="A tenant's slug"),
            OpenApiParameter("stalled", bool, description="In pilot over 90 days"),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses=s.PipelineSerializer,
    )
    def get(self, request):
        if not request.user.is_msp_staff:
            raise exceptions.PermissionDenied("The readiness pipeline is for MSP staff.")
        query = PipelineQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = query.validated_data
        pipeline = readiness_pipeline(tenants=self.visible_tenants())
        rows = pipeline_rows_filtered(
            pipeline.rows,
            stage=filters.get("stage", ""),
            gate_status=filters.get("gate_status", ""),
            tenant_slug=filters.get("tenant", ""),
            stalled=filters.get("stalled"),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, request, view=self)
        response = paginator.get_paginated_response(
            s.PipelineRowSerializer([row.as_dict() for row in page], many=True).data
        )
        response.data = {
            "figures": pipeline.figures,
            "tenants": [{"slug": t.slug, "name": t.name} for t in pipeline.tenants],
            **response.data,
        }
        return response
