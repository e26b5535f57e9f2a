"""Inventory endpoints under ``/api/v1/tenants/{slug}/``: one resource per model, plus the bulk
import and export of the whole inventory. Viewsets are thin: writes go through services."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from msp.api.errors import Conflict
from msp.api.fields import max_list_length
from msp.api.parsers import CSVParser, JSONParser
from operations.inventory import bulk, selectors, services
from operations.inventory.api import serializers as s
from operations.inventory.filters import (
    AISystemDatasetFilter,
    AISystemFilter,
    CloudAccountFilter,
    ComputeFilter,
    DatasetFilter,
    DeploymentFilter,
    GpuDeviceFilter,
    LinkFilter,
    SiteFilter,
)
from operations.inventory.models import (
    AISystem,
    AISystemDataset,
    CloudAccount,
    ComputeResource,
    Dataset,
    Deployment,
    GpuDevice,
    Link,
    Site,
)
from operations.inventory.registry import inventory_writes
from tenants.api.base import TenantScopedAPIView, TenantScopedModelViewSet


class InventoryViewSet(TenantScopedModelViewSet):
    """CRUD through the services ``operations.inventory.registry`` names for ``model``."""

    def perform_create(self, serializer):
        writes = inventory_writes(self.model)
        serializer.instance = writes.create(tenant=self.tenant, **serializer.validated_data)

    def perform_update(self, serializer):
        writes = inventory_writes(self.model)
        serializer.instance = writes.update(
            tenant=self.tenant, instance=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        inventory_writes(self.model).delete(tenant=self.tenant, instance=instance)


class SiteViewSet(InventoryViewSet):
    """Sites: on-prem data centres, colocation, cloud regions and edge locations."""

    model = Site
    serializer_class = s.SiteSerializer
    filterset_class = SiteFilter
    search_fields = ["code", "name", "region", "provider"]
    ordering_fields = ["code", "name", "kind", "country", "created_at"]
    ordering = ["code"]


class LinkViewSet(InventoryViewSet):
    """Connectivity between two sites of the tenant."""

    model = Link
    serializer_class = s.LinkSerializer
    filterset_class = LinkFilter
    search_fields = ["site_a__code", "site_b__code", "provider"]
    ordering_fields = ["bandwidth_mbps", "latency_ms", "site_a__code", "site_b__code"]
    ordering = ["site_a__code", "site_b__code"]

    def filter_scoped_queryset(self, queryset):
        return selectors.links_with_sites(queryset)


class CloudAccountViewSet(InventoryViewSet):
    """Cloud accounts and subscriptions, with their monthly budgets."""

    model = CloudAccount
    serializer_class = s.CloudAccountSerializer
    filterset_class = CloudAccountFilter
    search_fields = ["account_id", "name"]
    ordering_fields = ["provider", "account_id", "name", "monthly_budget"]
    ordering = ["provider", "account_id"]


class ComputeViewSet(InventoryViewSet):
    """GPU clusters and nodes, CPU nodes and managed endpoints."""

    model = ComputeResource
    serializer_class = s.ComputeSerializer
    filterset_class = ComputeFilter
    search_fields = ["hostname", "gpu_model", "site__code", "cluster__hostname"]
    ordering_fields = [
        "hostname",
        "kind",
        "status",
        "gpu_count",
        "hourly_cost",
        "node_count",
        "created_at",
    ]
    ordering = ["hostname"]

    def filter_scoped_queryset(self, queryset):
        return selectors.compute_with_references(queryset)


class GpuDeviceViewSet(InventoryViewSet):
    """The GPUs (and MIG instances) of compute resources, one per telemetry series of a GPU.

    Telemetry learns a GPU the first time a scrape reports it (audited) and keeps
    ``last_seen_at`` current to the hour; staff may also enter or correct them here.
    ``?compute=<id>`` or ``?compute_hostname=`` lists one node's GPUs.
    """

    model = GpuDevice
    serializer_class = s.GpuDeviceSerializer
    filterset_class = GpuDeviceFilter
    search_fields = ["uuid", "model_name", "compute__hostname"]
    ordering_fields = ["index", "mig_instance", "compute__hostname", "last_seen_at", "created_at"]
    ordering = ["compute__hostname", "index", "mig_instance"]

    def filter_scoped_queryset(self, queryset):
        return selectors.gpus_with_compute(queryset)


class AISystemViewSet(InventoryViewSet):
    """The register of AI systems. ``stage`` moves along the lifecycle only
    (``POST …/{id}/transition``, or a PATCH that obeys the same rule)."""

    model = AISystem
    serializer_class = s.AISystemSerializer
    filterset_class = AISystemFilter
    search_fields = [
        "name",
        "purpose",
        "business_owner",
        "technical_owner",
        "vendor",
        "model_name",
    ]
    ordering_fields = [
        "name",
        "stage",
        "risk_tier",
        "risk_classified_at",
        "deployment_count",
        "created_at",
        "updated_at",
    ]
    ordering = ["name"]

    def filter_scoped_queryset(self, queryset):
        return selectors.ai_systems_with_usage(queryset)

    def perform_update(self, serializer):
        try:
            super().perform_update(serializer)
        except services.StageChangeRefused as refused:
            raise _stage_conflict(refused) from refused

    @extend_schema(request=s.AISystemTransitionSerializer, responses=s.AISystemSerializer)
    @action(detail=True, methods=["post"])
    def transition(self, request, tenant_slug=None, pk=None):
        """Move the system to another stage: proposed → pilot → production → retired.
        A move a guard refuses (pilot → production with failing readiness gates) is a 409
        naming each failing criterion in ``fields``."""
        ai_system = self.get_object()
        serializer = s.AISystemTransitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            ai_system = services.ai_system_transition(
                tenant=self.tenant, ai_system=ai_system, stage=serializer.validated_data["stage"]
            )
        except services.StageChangeRefused as refused:
            raise _stage_conflict(refused) from refused
        return Response(self.get_serializer(ai_system).data)


def _stage_conflict(refused: services.StageChangeRefused) -> Conflict:
    return Conflict(
        refused.refusal,
        code="stage_change_refused",
        fields={key: [message] for key, message in refused.failing.items()},
    )


class DeploymentViewSet(InventoryViewSet):
    """Model deployments: which version of which AI system runs where."""

    model = Deployment
    serializer_class = s.DeploymentSerializer
    filterset_class = DeploymentFilter
    search_fields = ["name", "model_version", "ai_system__name", "compute__hostname", "endpoint"]
    ordering_fields = ["name", "environment", "deployed_at", "created_at", "ai_system__name"]
    ordering = ["name"]

    def filter_scoped_queryset(self, queryset):
        return selectors.deployments_with_references(queryset)


class DatasetViewSet(InventoryViewSet):
    """Datasets: classification, personal data, residency, provenance, licence and quality."""

    model = Dataset
    serializer_class = s.DatasetSerializer
    filterset_class = DatasetFilter
    search_fields = ["name", "owner", "provenance", "licence"]
    ordering_fields = ["name", "classification", "quality_score", "last_validated_at"]
    ordering = ["name"]


class AISystemDatasetViewSet(InventoryViewSet):
    """Which datasets each AI system uses, and how (training, evaluation, inference)."""

    model = AISystemDataset
    serializer_class = s.AISystemDatasetSerializer
    filterset_class = AISystemDatasetFilter
    search_fields = ["ai_system__name", "dataset__name"]
    ordering_fields = ["ai_system__name", "dataset__name", "usage"]
    ordering = ["ai_system__name", "dataset__name", "usage"]

    def filter_scoped_queryset(self, queryset):
        return selectors.dataset_usage_with_names(queryset)


# --- Bulk import and export ---------------------------------------------------------------------


class ComputeCSVParser(CSVParser):
    """``Content-Type: text/csv``: compute rows with a header row of field names."""

    def document(self, rows: list[dict]) -> dict:
        return {"compute": bulk.compute_rows_from_csv(rows)}


class ComputeCSVRenderer(BaseRenderer):
    """``?format=csv`` on the export: the compute section as CSV. Errors stay JSON."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, list):
            return bulk.compute_csv(data).encode(self.charset)
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return JSONRenderer().render(data)


class InventoryExportView(TenantScopedAPIView):
    """The tenant's whole inventory as one import document (references by natural key)."""

    model = Site
    renderer_classes = [JSONRenderer, ComputeCSVRenderer]
    filter_backends: list = []
    pagination_class = None

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter(
                "format", str, enum=["json", "csv"], description="csv: compute rows only"
            )
        ],
    )
    def get(self, request, tenant_slug: str):
        document = bulk.inventory_export(tenant=self.tenant)
        if request.accepted_renderer.format == "csv":
            filename = f"{self.tenant.slug}-compute.csv"
            return Response(
                document["compute"],
                headers={"Content-Disposition": f'attachment; filename="{filename}"'},
            )
        return Response(document)


class InventoryImportView(TenantScopedAPIView):
    """Upsert a whole inventory document by natural key, all or nothing (``bulk.py``).

    ``Content-Type: text/csv`` imports compute rows. ``?dry_run=true`` validates and counts
    without writing. At most ``API_MAX_LIST_LENGTH`` rows in all per request. Answers the
    created / updated / unchanged counts of every section.
    """

    model = Site
    parser_classes = [JSONParser, ComputeCSVParser]
    filter_backends: list = []
    pagination_class = None

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT, "text/csv": OpenApiTypes.STR},
        responses={200: OpenApiTypes.OBJECT},
        parameters=[OpenApiParameter("dry_run", bool)],
    )
    def post(self, request, tenant_slug: str):
        dry_run = request.query_params.get("dry_run", "").lower() in ("1", "true", "yes")
        counts = bulk.inventory_import(
            tenant=self.tenant,
            document=request.data,
            dry_run=dry_run,
            max_rows=max_list_length(),
        )
        return Response({"dry_run": dry_run, "sections": counts}, status=status.HTTP_200_OK)
