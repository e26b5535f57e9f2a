"""Readiness endpoints.

MSP-wide and read-only (a catalogue, no tenant data): ``/api/v1/readiness/frameworks/``. Per
tenant, under ``/api/v1/tenants/{slug}/readiness/``: ``assessments/`` (list, detail with
answers and progress, POST to start a draft, ``{id}/submit/``, and
``PUT {id}/answers/{question_key}/``), ``scores/`` (the trend; a detail or ``latest/``
explained; ``rescore/`` enqueues a scan), and ``benchmark/``.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from msp.api.errors import NOT_FOUND_MESSAGE, Conflict
from operations.readiness import selectors, services
from operations.readiness.api import serializers as s
from operations.readiness.filters import AssessmentFilter, ReadinessScoreFilter
from operations.readiness.models import Assessment, ReadinessScore
from tenants.api.base import MspWideViewSet, TenantScopedAPIView, TenantScopedViewSet, request_token


def _user(request):
    return request.user if request.user.is_authenticated else None


class FrameworkViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, MspWideViewSet):
    """Loaded readiness framework versions; the detail holds the whole definition (pillars,
    questions with their scales, signals with targets, levels)."""

    queryset = selectors.readiness_framework_list()
    filterset_fields = ["code", "version"]
    ordering_fields = ["code", "version", "loaded_at"]

    def get_serializer_class(self):
        if self.action == "retrieve":
            return s.ReadinessFrameworkDetailSerializer
        return s.ReadinessFrameworkSerializer


class AssessmentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, TenantScopedViewSet
):
    """The tenant's assessments. POST starts the one draft (from the last submitted answers);
    answers are saved one question at a time; ``submit`` locks the draft for good and scores
    it. Tenant admins, members and MSP staff write; viewers and analysts read."""

    model = Assessment
    serializer_class = s.AssessmentSerializer
    filterset_class = AssessmentFilter
    ordering_fields = ["created_at", "submitted_at"]
    ordering = ["-created_at", "-id"]

    def filter_scoped_queryset(self, queryset):
        return queryset.select_related("framework", "started_by", "submitted_by")

    def _detail(self, assessment) -> dict:
        context = {
            **self.get_serializer_context(),
            "answers": selectors.assessment_answers(tenant=self.tenant, assessment=assessment),
            "progress": selectors.assessment_progress(tenant=self.tenant, assessment=assessment),
        }
        return s.AssessmentDetailSerializer(assessment, context=context).data

    @extend_schema(responses=s.AssessmentDetailSerializer)
    def retrieve(self, request, *args, **kwargs):
        return Response(self._detail(self.get_object()))

    @extend_schema(
        request=None,
        responses={201: s.AssessmentDetailSerializer},
    )
    def create(self, request, *args, **kwargs):
        self.get_serializer(data=request.data).is_valid(raise_exception=True)
        try:
            assessment = services.assessment_start(tenant=self.tenant, user=_user(request))
        except services.ReadinessConflict as exc:
            raise Conflict(str(exc)) from exc
        return Response(self._detail(assessment), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={200: s.AssessmentDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def submit(self, request, tenant_slug=None, pk=None):
        try:
            assessment = services.assessment_submit(
                tenant=self.tenant, assessment=self.get_object(), user=_user(request)
            )
        except services.ReadinessConflict as exc:
            raise Conflict(str(exc)) from exc
        return Response(self._detail(assessment))

    @extend_schema(
        request=s.ReadinessAnswerWriteSerializer,
        responses={200: s.ReadinessAnswerSerializer},
    )
    @action(detail=True, methods=["put"], url_path=r"answers/(?P<question_key>[a-z0-9_.]+)")
    def answer(self, request, tenant_slug=None, pk=None, question_key=None):
        assessment = self.get_object()
        serializer = s.ReadinessAnswerWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            answer = services.assessment_answer(
                tenant=self.tenant,
                assessment=assessment,
                question_key=question_key,
                user=_user(request),
                **serializer.validated_data,
            )
        except services.ReadinessConflict as exc:
            raise Conflict(str(exc)) from exc
        return Response(s.ReadinessAnswerSerializer(answer).data)


class ScoreViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Score snapshots, newest first: the trend. A detail, or ``latest/``, explains one: the
    level, each pillar (from answers and from signals), each signal against its target with
    the objects behind it, and the five actions that would raise the score most."""

    model = ReadinessScore
    serializer_class = s.ReadinessScoreSerializer
    filterset_class = ReadinessScoreFilter
    ordering_fields = ["computed_at", "overall"]
    ordering = ["-computed_at", "-id"]

    def filter_scoped_queryset(self, queryset):
        return queryset.select_related("framework")

    @extend_schema(responses=s.ReadinessScoreReportSerializer)
    def retrieve(self, request, *args, **kwargs):
        report = selectors.readiness_score_report(score=self.get_object())
        return Response(s.ReadinessScoreReportSerializer(report).data)

    @extend_schema(responses=s.ReadinessScoreReportSerializer)
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def latest(self, request, tenant_slug=None):
        score = selectors.readiness_score_latest(tenant=self.tenant)
        if score is None:
            raise exceptions.NotFound(NOT_FOUND_MESSAGE)
        report = selectors.readiness_score_report(score=score)
        return Response(s.ReadinessScoreReportSerializer(report).data)

    @extend_schema(request=None, responses={202: s.ReadinessRescoreSerializer})
    @action(detail=False, methods=["post"], pagination_class=None, filter_backends=[])
    def rescore(self, request, tenant_slug=None):
        """Rescore now: a readiness scan of this tenant on the job engine."""
        run = services.readiness_rescore_request(
            tenant=self.tenant, user=_user(request), token=request_token(request)
        )
        return Response(
            s.ReadinessRescoreSerializer({"job_run": run.pk, "status": run.status}).data,
            status=status.HTTP_202_ACCEPTED,
        )


class BenchmarkView(TenantScopedAPIView):
    """Each pillar of the latest score beside the band (p25–p75, median) of the latest scores
    of the MSP's other tenants in the same industry; only with at least five of them, rounded
    to 5-point bands, never naming one."""

    model = ReadinessScore
    serializer_class = s.ReadinessBenchmarkSerializer

    @extend_schema(responses=s.ReadinessBenchmarkSerializer)
    def get(self, request, tenant_slug=None):
        report = selectors.readiness_benchmark(tenant=self.tenant)
        return Response(s.ReadinessBenchmarkSerializer(report).data)
