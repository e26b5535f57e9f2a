"""Recommendation endpoints: ``/api/v1/tenants/{slug}/recommendations/…``.

Everyone who reaches the tenant reads; those who can write in it (tenant admins and members,
MSP admins and engineers) accept, implement and dismiss. Recommendations are made by the
``optimisation_scan`` job (trigger it at ``…/jobs/``), never typed in.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from msp.api.csv_download import CsvListMixin
from msp.api.errors import Conflict
from msp.api.schema import csv_list_schema
from operations.optimisation import services
from operations.optimisation.api import serializers as s
from operations.optimisation.exports import (
    RECOMMENDATION_CSV_COLUMNS,
    recommendations_csv_filename,
)
from operations.optimisation.filters import RecommendationFilter
from operations.optimisation.models import Recommendation
from operations.optimisation.selectors import recommendation_summary
from tenants.api.base import TenantScopedViewSet


@extend_schema_view(list=csv_list_schema("recommendations"))
class RecommendationViewSet(
    CsvListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet
):
    """Optimisation recommendations of a tenant, with evidence and an estimated monthly saving."""

    model = Recommendation
    serializer_class = s.RecommendationSerializer
    filterset_class = RecommendationFilter
    search_fields = ["title", "subject_label"]
    ordering_fields = [
        "estimated_monthly_saving",
        "first_seen",
        "last_seen",
        "kind",
        "status",
    ]
    ordering = ["-estimated_monthly_saving", "id"]
    lookup_value_regex = r"[0-9]+"
    csv_columns = RECOMMENDATION_CSV_COLUMNS

    def csv_filename(self) -> str:
        return recommendations_csv_filename(self.tenant)

    def _act(self, request, name: str, body_class, **extra) -> Response:
        recommendation = self.get_object()
        body = body_class(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        service = getattr(services, f"recommendation_{name}")
        try:
            updated = service(
                tenant=self.tenant,
                recommendation=recommendation,
                user=request.user,
                **body.validated_data,
            )
        except services.TransitionRefused as refused:
            raise Conflict(refused.messages[0]) from refused
        return Response(s.RecommendationSerializer(updated).data)

    @extend_schema(request=s.EmptySerializer, responses=s.RecommendationSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request, *args, **kwargs):
        """open → accepted (409 from any other status)."""
        return self._act(request, "accept", s.EmptySerializer)

    @extend_schema(request=s.EmptySerializer, responses=s.RecommendationSerializer)
    @action(detail=True, methods=["post"])
    def implement(self, request, *args, **kwargs):
        """accepted → implemented (409 from any other status)."""
        return self._act(request, "implement", s.EmptySerializer)

    @extend_schema(request=s.DismissSerializer, responses=s.RecommendationSerializer)
    @action(detail=True, methods=["post"])
    def dismiss(self, request, *args, **kwargs):
        """open or accepted → dismissed, with a reason. A later scan reopens it only when the
        evidence changes materially (the saving grows by half, or a forecast halves)."""
        return self._act(request, "dismiss", s.DismissSerializer)

    @extend_schema(responses=s.RecommendationSummarySerializer)
    @action(detail=False, methods=["get"])
    def summary(self, request, *args, **kwargs):
        """Open recommendations per kind with their total monthly saving, and counts per status."""
        return Response(recommendation_summary(tenant=self.tenant))
