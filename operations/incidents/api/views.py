"""Incident endpoints: ``/api/v1/tenants/{slug}/incidents/…`` and the MSP-wide metrics.

Who may do what (the capability each action needs; see ``tenants.selectors.TenantAccess``):

- everyone who reaches the tenant reads incidents, their visible timeline, postmortems, metrics;
- clients who can write (tenant admins and members) raise incidents, comment (client-visible
  only), and confirm (``close``) or dispute (``reopen``) a resolution;
- MSP admins and engineers assigned to the tenant do everything; analysts read;
- internal timeline entries are shown to MSP staff only, through every door.
"""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.generics import ListAPIView
from rest_framework.response import Response

from msp.api.csv_download import CsvListMixin
from msp.api.errors import NOT_FOUND_MESSAGE
from msp.api.schema import csv_list_schema
from operations.incidents import alerting, services
from operations.incidents.api import serializers as s
from operations.incidents.exports import (
    INCIDENT_CSV_COLUMNS,
    incidents_csv_filename,
    timeline_csv,
    timeline_csv_filename,
)
from operations.incidents.filters import AlertRuleFilter, IncidentFilter
from operations.incidents.models import (
    AlertRule,
    AlertRuleDefault,
    Incident,
    IncidentSource,
    Postmortem,
)
from operations.incidents.selectors import (
    CLIENT_INCIDENT_ACTIONS,
    alert_rules_effective,
    client_timeline_excerpt,
    fleet_incident_metrics,
    incident_list_queryset,
    incident_metrics,
    timeline_visible,
)
from tenants.api.base import (
    MspWideAPIView,
    MspWideMixin,
    TenantScopedModelViewSet,
    TenantScopedViewSet,
)

_WINDOW_PARAMETERS = [
    OpenApiParameter("from", str, description="ISO date or date-time (default: to − 30 days)"),
    OpenApiParameter("to", str, description="ISO date or date-time, exclusive (default: now)"),
]


@extend_schema_view(list=csv_list_schema("incidents"))
class IncidentViewSet(
    CsvListMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    TenantScopedViewSet,
):
    """Incidents of a tenant: raise, follow, act on, write up and measure them."""

    model = Incident
    serializer_class = s.IncidentSerializer
    filterset_class = IncidentFilter
    search_fields = ["reference", "title"]
    ordering_fields = [
        "created_at",
        "number",
        "severity",
        "status",
        "ack_due_at",
        "resolve_due_at",
        "regulator_deadline",
    ]
    ordering = ["-created_at", "-id"]
    lookup_value_regex = r"[0-9]+"
    write_capability = "staff_write"
    action_capabilities = {"create": "write", **dict.fromkeys(CLIENT_INCIDENT_ACTIONS, "write")}
    csv_columns = INCIDENT_CSV_COLUMNS
    csv_actions = frozenset({"list", "export_list"})

    def csv_filename(self) -> str:
        return incidents_csv_filename(self.tenant)

    def filter_scoped_queryset(self, queryset):
        return incident_list_queryset(queryset, staff=self.access.is_staff)

    def get_serializer_class(self):
        return {
            "create": s.IncidentCreateSerializer,
            "partial_update": s.IncidentUpdateSerializer,
            "retrieve": s.IncidentDetailSerializer,
        }.get(self.action, s.IncidentSerializer)

    # --- helpers ----------------------------------------------------------------------------

    def _present(self, pk: int, *, status_code: int = status.HTTP_200_OK) -> Response:
        """The incident as the list shows it, read again after a write."""
        incident = self.get_queryset().get(pk=pk)
        return Response(
            s.IncidentSerializer(incident, context=self.get_serializer_context()).data,
            status=status_code,
        )

    def _body(self, serializer_class, request, *, partial: bool = False):
        serializer = serializer_class(
            data=request.data, partial=partial, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        return serializer

    def _transition(self, request, name: str) -> Response:
        incident = self.get_object()
        body = self._body(s.TransitionSerializer, request)
        services.incident_transition(
            tenant=self.tenant,
            incident=incident,
            action=name,
            user=request.user,
            note=body.validated_data.get("note", ""),
            note_internal=body.resolved_internal(),
        )
        return self._present(incident.pk)

    # --- resource ---------------------------------------------------------------------------

    def create(self, request, *args, **kwargs):
        """Raise an incident (clients and MSP staff)."""
        body = self._body(s.IncidentCreateSerializer, request)
        incident = services.incident_create(
            tenant=self.tenant,
            source=IncidentSource.API,
            reporter=request.user,
            **body.validated_data,
        )
        return self._present(incident.pk, status_code=status.HTTP_201_CREATED)

    def retrieve(self, request, *args, **kwargs):
        """The incident with the timeline the caller may see."""
        incident = self.get_object()
        context = self.get_serializer_context()
        context["timeline"] = timeline_visible(incident=incident, staff=self.access.is_staff)
        return Response(s.IncidentDetailSerializer(incident, context=context).data)

    @extend_schema(request=s.IncidentUpdateSerializer, responses=s.IncidentSerializer)
    def partial_update(self, request, *args, **kwargs):
        """Edit title, description, category, dedupe key, affected estate, Art. 73 fields."""
        incident = self.get_object()
        body = self._body(s.IncidentUpdateSerializer, request, partial=True)
        services.incident_update(
            tenant=self.tenant, incident=incident, user=request.user, **body.validated_data
        )
        return self._present(incident.pk)

    # --- lifecycle --------------------------------------------------------------------------

    @extend_schema(request=s.TransitionSerializer, responses=s.IncidentSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, *args, **kwargs):
        """triggered → acknowledged (stops the acknowledge clock)."""
        return self._transition(request, "acknowledge")

    @extend_schema(request=s.TransitionSerializer, responses=s.IncidentSerializer)
    @action(detail=True, methods=["post"])
    def investigate(self, request, *args, **kwargs):
        """acknowledged or mitigated → investigating."""
        return self._transition(request, "investigate")

    @extend_schema(request=s.TransitionSerializer, responses=s.IncidentSerializer)
    @action(detail=True, methods=["post"])
    def mitigate(self, request, *args, **kwargs):
        """acknowledged or investigating → mitigated."""
        return self._transition(request, "mitigate")

    @extend_schema(request=s.TransitionSerializer, responses=s.IncidentSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, *args, **kwargs):
        """Any open status → resolved (stops the resolve clock)."""
        return self._transition(request, "resolve")

    @extend_schema(request=s.TransitionSerializer, responses=s.IncidentSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, *args, **kwargs):
        """resolved → closed (final). Clients may confirm a resolution this way."""
        return self._transition(request, "close")

    @extend_schema(request=s.TransitionSerializer, responses=s.IncidentSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, *args, **kwargs):
        """resolved → investigating. Clients may dispute a resolution this way."""
        return self._transition(request, "reopen")

    @extend_schema(request=s.AssignSerializer, responses=s.IncidentSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request, *args, **kwargs):
        """Give the incident an owner: an MSP admin or an engineer assigned to the tenant."""
        incident = self.get_object()
        body = self._body(s.AssignSerializer, request)
        services.incident_assign(
            tenant=self.tenant,
            incident=incident,
            assignee=body.validated_data["assignee"],
            user=request.user,
        )
        return self._present(incident.pk)

    @extend_schema(request=s.SeveritySerializer, responses=s.IncidentSerializer)
    @action(detail=True, methods=["post"])
    def severity(self, request, *args, **kwargs):
        """Change the severity; running SLA clocks are recomputed."""
        incident = self.get_object()
        body = self._body(s.SeveritySerializer, request)
        services.incident_change_severity(
            tenant=self.tenant,
            incident=incident,
            severity=body.validated_data["severity"],
            reason=body.validated_data.get("reason", ""),
            reason_internal=body.resolved_internal(),
            user=request.user,
        )
        return self._present(incident.pk)

    @extend_schema(request=s.WaitOnClientSerializer, responses=s.IncidentSerializer)
    @action(detail=True, methods=["post"], url_path="wait-on-client")
    def wait_on_client(self, request, *args, **kwargs):
        """Pause the resolve clock while waiting on the client."""
        incident = self.get_object()
        body = self._body(s.WaitOnClientSerializer, request)
        services.incident_wait_on_client(
            tenant=self.tenant,
            incident=incident,
            reason=body.validated_data.get("reason", ""),
            user=request.user,
        )
        return self._present(incident.pk)

    @extend_schema(request=s.EmptySerializer, responses=s.IncidentSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, *args, **kwargs):
        """End the wait on the client; the resolve clock runs again."""
        incident = self.get_object()
        self._body(s.EmptySerializer, request)
        services.incident_resume(tenant=self.tenant, incident=incident, user=request.user)
        return self._present(incident.pk)

    # --- timeline ---------------------------------------------------------------------------

    @extend_schema(request=s.CommentSerializer, responses={201: s.TimelineEntrySerializer})
    @action(detail=True, methods=["post"])
    def comment(self, request, *args, **kwargs):
        """Add a comment. MSP staff default to internal; clients write client-visible only."""
        incident = self.get_object()
        body = self._body(s.CommentSerializer, request)
        entry = services.incident_comment(
            tenant=self.tenant,
            incident=incident,
            body=body.validated_data["body"],
            internal=body.resolved_internal(),
            user=request.user,
        )
        return Response(s.TimelineEntrySerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=s.TimelineEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def timeline(self, request, *args, **kwargs):
        """The timeline the caller may see, oldest first, paginated."""
        incident = self.get_object()
        entries = timeline_visible(incident=incident, staff=self.access.is_staff)
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(s.TimelineEntrySerializer(page, many=True).data)

    @extend_schema(responses={(200, "text/csv"): str})
    @action(detail=True, methods=["get"])
    def export(self, request, *args, **kwargs):
        """The visible timeline as CSV."""
        incident = self.get_object()
        entries = timeline_visible(incident=incident, staff=self.access.is_staff)
        response = HttpResponse(
            timeline_csv(incident=incident, entries=entries), content_type="text/csv"
        )
        response["Content-Disposition"] = (
            f'attachment; filename="{timeline_csv_filename(incident)}"'
        )
        return response

    @extend_schema(
        operation_id="v1_tenants_incidents_export_list",
        filters=True,
        responses={(200, "text/csv"): str},
        description=(
            "The incidents the list shows (same filters, search and ordering), every page, "
            "streamed as CSV: the same as the list with `?format=csv`."
        ),
    )
    @action(detail=False, methods=["get"], url_path="export", url_name="export-list")
    def export_list(self, request, *args, **kwargs):
        """The list as CSV (kept for clients of the first release; the list answers CSV too)."""
        return self.csv_response(self.filter_queryset(self.get_queryset()))

    # --- postmortem -------------------------------------------------------------------------

    @extend_schema(methods=["GET"], request=None, responses=s.PostmortemOutSerializer)
    @extend_schema(
        methods=["PUT"], request=s.PostmortemSerializer, responses=s.PostmortemOutSerializer
    )
    @action(detail=True, methods=["get", "put"])
    def postmortem(self, request, *args, **kwargs):
        """The postmortem of a resolved SEV1/SEV2 incident: read by all, written by MSP staff."""
        incident = self.get_object()
        existing = (
            Postmortem.objects.filter(incident=incident)
            .select_related("incident")
            .prefetch_related("action_items")
            .first()
        )
        if request.method == "GET":
            if existing is None:
                raise exceptions.NotFound(NOT_FOUND_MESSAGE)
            return Response(s.PostmortemOutSerializer(existing).data)
        services.postmortem_check_eligible(incident)
        data = dict(self._body(s.PostmortemSerializer, request).validated_data)
        if "timeline_excerpt" not in data:
            # Kept when rewriting; drafted from the client-visible timeline the first time.
            data["timeline_excerpt"] = (
                existing.timeline_excerpt
                if existing
                else client_timeline_excerpt(incident=incident)
            )
        postmortem = services.postmortem_save(
            tenant=self.tenant, incident=incident, user=request.user, **data
        )
        postmortem = (
            Postmortem.objects.select_related("incident")
            .prefetch_related("action_items")
            .get(pk=postmortem.pk)
        )
        return Response(
            s.PostmortemOutSerializer(postmortem).data,
            status=status.HTTP_200_OK if existing else status.HTTP_201_CREATED,
        )

    # --- metrics ----------------------------------------------------------------------------

    @extend_schema(parameters=_WINDOW_PARAMETERS, responses=s.TenantMetricsSerializer)
    @action(detail=False, methods=["get"])
    def metrics(self, request, *args, **kwargs):
        """MTTA, MTTR and SLA attainment per severity of the incidents raised in the window."""
        window = s.MetricsWindowSerializer(data=request.query_params)
        window.is_valid(raise_exception=True)
        start, end = window.validated_data["from"], window.validated_data["to"]
        return Response(incident_metrics(tenant=self.tenant, start=start, end=end))


class FleetIncidentMetricsView(MspWideAPIView):
    """``GET /api/v1/incidents/metrics``: the metrics per tenant across the tenants the staff
    member can see (all for msp_admin, assigned ones otherwise; a bound token's tenant only).
    Not for client users."""

    @extend_schema(parameters=_WINDOW_PARAMETERS, responses=s.FleetMetricsSerializer)
    def get(self, request):
        if not request.user.is_msp_staff:
            raise exceptions.PermissionDenied("Fleet metrics are for MSP staff.")
        window = s.MetricsWindowSerializer(data=request.query_params)
        window.is_valid(raise_exception=True)
        start, end = window.validated_data["from"], window.validated_data["to"]
        tenants = self.visible_tenants()
        return Response(
            {
                "from": start,
                "to": end,
                "results": fleet_incident_metrics(tenants=tenants, start=start, end=end),
            }
        )


class AlertRuleViewSet(TenantScopedModelViewSet):
    """Alert rules on a tenant's telemetry: ``/api/v1/tenants/{slug}/alert-rules/…``.

    Everyone who reaches the tenant reads them; tenant admins and MSP admins and engineers
    assigned to it write them and run ``evaluate``. A rule with ``default_rule`` overrides that
    MSP-wide default for this tenant (``"enabled": false`` switches it off); ``in-force`` lists
    what is evaluated: the tenant's enabled rules and the defaults it has not replaced.
    """

    model = AlertRule
    serializer_class = s.AlertRuleSerializer
    filterset_class = AlertRuleFilter
    search_fields = ["name", "description", "resource_pattern"]
    ordering_fields = ["name", "metric", "severity", "threshold", "window_minutes", "created_at"]
    ordering = ["name", "id"]
    lookup_value_regex = r"[0-9]+"
    write_capability = "manage"

    def perform_create(self, serializer):
        serializer.instance = alerting.alert_rule_create(
            tenant=self.tenant, **serializer.validated_data
        )

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        if "default_rule" in data and data["default_rule"] == serializer.instance.default_rule:
            del data["default_rule"]  # echoed back unchanged (PUT); changing it is refused
        serializer.instance = alerting.alert_rule_update(
            tenant=self.tenant, rule=serializer.instance, **data
        )

    def perform_destroy(self, instance):
        alerting.alert_rule_delete(tenant=self.tenant, rule=instance)

    @extend_schema(responses=s.AlertRuleInForceSerializer(many=True))
    @action(detail=False, methods=["get"], url_path="in-force")
    def in_force(self, request, *args, **kwargs):
        """The rules evaluated for this tenant, its own first, then the MSP-wide defaults."""
        page = self.paginate_queryset(alert_rules_effective(tenant=self.tenant))
        return self.get_paginated_response(s.AlertRuleInForceSerializer(page, many=True).data)

    @extend_schema(request=s.AlertEvaluateSerializer, responses=s.AlertEvaluationSerializer)
    @action(detail=False, methods=["post"])
    def evaluate(self, request, *args, **kwargs):
        """Evaluate the rules in force now (as the scheduled job does every minute) and say
        what fired, grouped, cleared and auto-resolved; ``dry_run`` writes nothing."""
        body = s.AlertEvaluateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        evaluation = alerting.alert_rules_evaluate(
            tenant=self.tenant, dry_run=body.validated_data["dry_run"]
        )
        return Response(s.AlertEvaluationSerializer(evaluation.as_dict()).data)


class AlertRuleDefaultListView(MspWideMixin, ListAPIView):
    """``GET /api/v1/alert-rules/defaults``: the MSP-wide default rules every tenant gets unless
    it overrides them. Read-only here; MSP admins edit them in the admin. A catalogue: no
    tenant data, so a bound token reads it too (with its ``read`` scope)."""

    serializer_class = s.AlertRuleDefaultSerializer
    filter_backends: list = []

    def get_queryset(self):
        return AlertRuleDefault.objects.order_by("name", "id")
