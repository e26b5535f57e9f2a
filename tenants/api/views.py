from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import F
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from msp.api.csv_download import CsvListMixin
from msp.api.errors import NOT_FOUND_MESSAGE
from msp.api.schema import csv_list_schema
from tenants import services
from tenants.api import serializers as s
from tenants.api.base import (
    MspWideAPIView,
    MspWideViewSet,
    TenantScopedAPIView,
    TenantScopedViewSet,
)
from tenants.exports import AUDIT_CSV_COLUMNS, AUDIT_CSV_STAFF_ONLY
from tenants.filters import (
    ApiTokenFilter,
    AuditEventFilter,
    MembershipFilter,
    OnboardingStepFilter,
    TenantFilter,
)
from tenants.models import (
    ApiToken,
    AuditEvent,
    Membership,
    OnboardingStep,
    ServicePlan,
    StaffAssignment,
    Tenant,
)
from tenants.selectors import (
    api_tokens_with_users,
    audit_events_visible_to,
    memberships_with_users,
    onboarding_steps_with_completer,
    tenant_access_for,
)

User = get_user_model()


class TenantViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    MspWideViewSet,
):
    """Tenants themselves. Staff list and create; anyone reads the tenants they can reach.

    This resolves the tenant from the URL with the same selector (and the same 404) as
    ``TenantScopedViewSet``; the tenant row is the boundary, not a tenant-owned row. A token
    bound to a tenant lists and reaches that tenant only, and cannot create tenants.
    """

    bound_token_refused_actions = frozenset({"create"})
    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    filterset_class = TenantFilter
    search_fields = ["name", "slug", "industry"]
    ordering_fields = ["name", "slug", "status", "created_at"]
    ordering = ["name"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Tenant.objects.none()
        return self.visible_tenants()

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return s.TenantUpdateSerializer
        if self.action == "transition":
            return s.TenantTransitionSerializer
        return s.TenantSerializer

    def get_object(self):
        access = tenant_access_for(
            user=self.request.user, slug=self.kwargs["slug"], token=self.token
        )
        if access is None:
            raise exceptions.NotFound(NOT_FOUND_MESSAGE)
        unsafe = self.request.method not in ("GET", "HEAD", "OPTIONS")
        if unsafe and not access.allows("staff_write"):
            raise exceptions.PermissionDenied("Only MSP staff can change a tenant.")
        return access.tenant

    def create(self, request, *args, **kwargs):
        if not request.user.can_write_as_staff:
            raise exceptions.PermissionDenied("Only MSP admins and engineers create tenants.")
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = services.tenant_create(**serializer.validated_data)
        if not request.user.is_msp_admin:
            services.staff_assign(tenant=tenant, user=request.user)
        return Response(s.TenantSerializer(tenant).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = services.tenant_update(
            tenant=serializer.instance, **serializer.validated_data
        )

    @extend_schema(request=s.TenantTransitionSerializer, responses=s.TenantSerializer)
    @action(detail=True, methods=["post"])
    def transition(self, request, slug=None):
        """Move the tenant along prospect → onboarding → active → suspended → offboarded."""
        tenant = self.get_object()
        serializer = s.TenantTransitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = services.tenant_transition(
            tenant=tenant, to_status=serializer.validated_data["status"]
        )
        return Response(s.TenantSerializer(tenant).data)


class ServicePlanView(TenantScopedAPIView):
    """The tenant's contract: SLA targets per severity and coverage hours."""

    model = ServicePlan
    serializer_class = s.ServicePlanSerializer
    write_capability = "staff_write"
    pagination_class = None

    def get(self, request, tenant_slug: str):
        return Response(self.get_serializer(self.get_queryset().get()).data)

    def patch(self, request, tenant_slug: str):
        serializer = self.get_serializer(self.get_queryset().get(), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        plan = services.service_plan_update(tenant=self.tenant, **serializer.validated_data)
        return Response(self.get_serializer(plan).data)


class MembershipViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantScopedViewSet,
):
    """Client users of the tenant. Tenant admins (and MSP staff) manage them."""

    model = Membership
    serializer_class = s.MembershipSerializer
    write_capability = "manage"
    filterset_class = MembershipFilter
    search_fields = ["user__username", "user__email", "user__first_name", "user__last_name"]
    ordering_fields = ["user__username", "role", "created_at"]
    ordering = ["user__username"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def filter_scoped_queryset(self, queryset):
        return memberships_with_users(queryset)

    @extend_schema(request=s.MembershipCreateSerializer, responses=s.MembershipSerializer)
    def create(self, request, *args, **kwargs):
        serializer = s.MembershipCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.membership_create(tenant=self.tenant, **serializer.validated_data)
        return Response(s.MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = services.membership_update(
            tenant=self.tenant, membership=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        if instance.user_id == self.request.user.pk:
            raise exceptions.ValidationError({"user": "You cannot remove yourself."})
        services.membership_remove(tenant=self.tenant, membership=instance)


class StaffAssignmentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    TenantScopedViewSet,
):
    """The MSP account team on this tenant. Only MSP admins change it."""

    model = StaffAssignment
    serializer_class = s.StaffAssignmentSerializer
    write_capability = "msp_admin"
    ordering = ["user__username"]
    ordering_fields = ["user__username", "created_at"]

    def filter_scoped_queryset(self, queryset):
        return queryset.select_related("user")

    def perform_create(self, serializer):
        username = serializer.validated_data["username"]
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise exceptions.ValidationError({"username": "No active user with that username."})
        serializer.instance = services.staff_assign(tenant=self.tenant, user=user)

    def perform_destroy(self, instance):
        services.staff_unassign(tenant=self.tenant, assignment=instance)


class OnboardingStepViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The tenant's onboarding checklist; activation waits for its required steps."""

    model = OnboardingStep
    serializer_class = s.OnboardingStepSerializer
    filterset_class = OnboardingStepFilter
    ordering_fields = ["position"]
    ordering = ["position"]

    def filter_scoped_queryset(self, queryset):
        return onboarding_steps_with_completer(queryset)

    def _set_done(self, request, done: bool):
        step = self.get_object()
        serializer = s.OnboardingStepDoneSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        step = services.onboarding_step_set_done(
            tenant=self.tenant,
            step=step,
            done=done,
            user=request.user,
            notes=serializer.validated_data.get("notes"),
        )
        return Response(s.OnboardingStepSerializer(step).data)

    @extend_schema(request=s.OnboardingStepDoneSerializer, responses=s.OnboardingStepSerializer)
    @action(detail=True, methods=["post"])
    def complete(self, request, tenant_slug=None, pk=None):
        return self._set_done(request, done=True)

    @extend_schema(request=s.OnboardingStepDoneSerializer, responses=s.OnboardingStepSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, tenant_slug=None, pk=None):
        return self._set_done(request, done=False)


class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """API tokens bound to this tenant. The secret is shown once, at creation.

    Only a signed-in person creates tokens: a token never mints another, so a leaked one
    cannot widen its scopes or outlive its expiry.
    """

    model = ApiToken
    serializer_class = s.ApiTokenSerializer
    write_capability = "manage"
    session_only_actions = frozenset({"create"})
    session_only_message = (
        "An API token cannot create tokens. Sign in to the portal, or run `manage.py issue_token`."
    )
    filterset_class = ApiTokenFilter
    search_fields = ["name", "prefix"]
    ordering_fields = ["created_at", "name", "last_used_at"]
    ordering = ["-created_at"]

    def filter_scoped_queryset(self, queryset):
        return api_tokens_with_users(queryset)

    @extend_schema(request=s.ApiTokenCreateSerializer, responses=s.ApiTokenIssuedSerializer)
    def create(self, request, *args, **kwargs):
        """Issue a token for yourself in this tenant."""
        serializer = s.ApiTokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, plaintext = services.token_issue(
            user=request.user,
            tenant=self.tenant,
            created_by=request.user,
            **serializer.validated_data,
        )
        token.token = plaintext
        return Response(s.ApiTokenIssuedSerializer(token).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.ApiTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, tenant_slug=None, pk=None):
        token = services.token_revoke(token=self.get_object())
        return Response(s.ApiTokenSerializer(token).data)


@extend_schema_view(list=csv_list_schema("audit events (MSP staff only)"))
class TenantAuditEventViewSet(
    CsvListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet
):
    """This tenant's audit log (tenant admins and MSP staff; as CSV, MSP staff only).
    Read-only by design."""

    model = AuditEvent
    serializer_class = s.AuditEventSerializer
    action_capabilities = {"list": "audit", "retrieve": "audit"}
    filterset_class = AuditEventFilter
    search_fields = ["object_repr", "actor_label"]
    ordering_fields = ["occurred_at"]
    ordering = ["-occurred_at", "-id"]

    csv_columns = AUDIT_CSV_COLUMNS

    def csv_filename(self) -> str:
        return f"{self.tenant.slug}-audit.csv"

    def filter_scoped_queryset(self, queryset):
        return queryset.select_related("tenant")

    def list(self, request, *args, **kwargs):
        if self.wants_csv(request) and not self.access.is_staff:
            raise exceptions.PermissionDenied(AUDIT_CSV_STAFF_ONLY)
        return super().list(request, *args, **kwargs)


@extend_schema_view(list=csv_list_schema("audit events (MSP staff only)"))
class AuditEventViewSet(
    CsvListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, MspWideViewSet
):
    """The MSP-wide audit log, limited to the tenants the staff member is assigned to (and to
    its tenant for a bound token)."""

    serializer_class = s.AuditEventSerializer
    filterset_class = AuditEventFilter
    search_fields = ["object_repr", "actor_label"]
    ordering_fields = ["occurred_at"]
    ordering = ["-occurred_at", "-id"]

    csv_columns = AUDIT_CSV_COLUMNS

    def csv_filename(self) -> str:
        return "audit.csv"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AuditEvent.objects.none()
        return audit_events_visible_to(self.request.user, token=self.token)

    def list(self, request, *args, **kwargs):
        if self.wants_csv(request) and not request.user.msp_role:
            raise exceptions.PermissionDenied(AUDIT_CSV_STAFF_ONLY)
        return super().list(request, *args, **kwargs)


class MeView(MspWideAPIView):
    """Who the caller is and which tenants they reach, with their role in each."""

    @extend_schema(responses=s.MeSerializer)
    def get(self, request):
        user = request.user
        tenants = self.visible_tenants()
        if not user.msp_role:
            tenants = tenants.annotate(role=F("memberships__role"))
        rows = [
            {
                "slug": t.slug,
                "name": t.name,
                "status": t.status,
                "role": getattr(t, "role", None) or user.msp_role,
            }
            for t in tenants
        ]
        return Response(
            s.MeSerializer(
                {"username": user.username, "msp_role": user.msp_role, "tenants": rows}
            ).data
        )
