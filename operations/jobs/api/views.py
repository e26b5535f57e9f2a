from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from msp.api.errors import Conflict
from operations.jobs import selectors, services
from operations.jobs.api import serializers as s
from operations.jobs.conf import engine_settings
from operations.jobs.exceptions import JobStateConflict, UnknownJobKind
from operations.jobs.filters import JobRunFilter
from operations.jobs.models import JobRun, JobTrigger
from operations.jobs.registry import get_job_kind, job_kinds
from tenants.api.base import TenantScopedViewSet
from tenants.models import ApiToken

MAX_LOG_PAGE = 1000


class JobRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Background job runs of the tenant: watch them, trigger one by kind, cancel one."""

    model = JobRun
    serializer_class = s.JobRunSerializer
    filterset_class = JobRunFilter
    search_fields = ["kind", "progress_message", "triggered_by_label"]
    ordering_fields = ["created_at", "started_at", "finished_at", "status", "kind", "progress"]
    ordering = ["-created_at", "-id"]

    def get_serializer_class(self):
        if self.action == "retrieve":
            return s.JobRunDetailSerializer
        return s.JobRunSerializer

    def retrieve(self, request, *args, **kwargs):
        run = self.get_object()
        tail = selectors.job_run_log_tail(run=run, limit=engine_settings().detail_log_limit)
        context = {**self.get_serializer_context(), "log_tail": tail}
        return Response(s.JobRunDetailSerializer(run, context=context).data)

    def _token(self, request):
        return request.auth if isinstance(request.auth, ApiToken) else None

    def _require(self, capability: str) -> None:
        if not self.access.allows(capability):
            raise exceptions.PermissionDenied(
                f"Your role ({self.access.role}) cannot run this kind of job here."
            )

    @extend_schema(request=s.JobTriggerSerializer, responses={201: s.JobRunDetailSerializer})
    def create(self, request, *args, **kwargs):
        """Trigger a run of ``kind`` with ``parameters``; answers with the queued run."""
        serializer = s.JobTriggerSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        name = serializer.validated_data["kind"]
        try:
            kind = get_job_kind(name)
        except UnknownJobKind:
            raise exceptions.ValidationError({"kind": [f"Unknown job kind '{name}'."]}) from None
        if not kind.tenant_scoped:
            raise exceptions.ValidationError({"kind": [f"'{name}' is not run per tenant."]})
        self._require(kind.trigger_capability)
        run = services.job_submit(
            tenant=self.tenant,
            kind=name,
            parameters=serializer.validated_data["parameters"],
            trigger=JobTrigger.USER,
            user=request.user,
            token=self._token(request),
        )
        context = {**self.get_serializer_context(), "log_tail": ([], False)}
        return Response(
            s.JobRunDetailSerializer(run, context=context).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=None, responses=s.JobRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, tenant_slug=None, pk=None):
        """Cancel a queued run, or ask a running one to stop at its next progress point."""
        run = self.get_object()
        try:
            kind = get_job_kind(run.kind)
        except UnknownJobKind:
            kind = None
        if kind is not None:
            self._require(kind.trigger_capability)
        try:
            run = services.job_cancel(run=run, user=request.user, token=self._token(request))
        except JobStateConflict as exc:
            raise Conflict(str(exc)) from exc
        return Response(s.JobRunSerializer(run, context=self.get_serializer_context()).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("after", int, description="Only lines after this log line id."),
            OpenApiParameter("limit", int, description=f"At most this many (≤ {MAX_LOG_PAGE})."),
        ],
        responses=s.JobLogPageSerializer,
    )
    @action(detail=True, methods=["get"])
    def logs(self, request, tenant_slug=None, pk=None):
        """The run's log lines, oldest first; poll with ``after`` set to ``next_after``."""
        run = self.get_object()
        try:
            after = max(0, int(request.query_params.get("after", 0)))
            limit = min(MAX_LOG_PAGE, max(1, int(request.query_params.get("limit", 500))))
        except ValueError:
            raise exceptions.ValidationError({"after": ["Give whole numbers."]}) from None
        lines = selectors.job_run_logs_after(run=run, after_id=after, limit=limit)
        return Response(
            {
                "results": s.JobLogSerializer(lines, many=True).data,
                "next_after": lines[-1].pk if lines else after,
            }
        )

    @extend_schema(responses=s.JobKindSerializer(many=True))
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def kinds(self, request, tenant_slug=None):
        """The kinds of job that run per tenant, their parameters, and whether you may run them."""
        data = [
            {
                "name": kind.name,
                "title": kind.title or kind.name,
                "description": kind.description,
                "parameters": kind.parameter_fields(),
                "can_trigger": self.access.allows(kind.trigger_capability),
            }
            for kind in job_kinds()
            if kind.tenant_scoped
        ]
        return Response(data)
