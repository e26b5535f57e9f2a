"""The two bases every API endpoint stands on.

``TenantScopedMixin`` serves everything under ``/api/v1/tenants/{slug}/``. It resolves the
tenant from the URL (never from the body), checks membership or staff assignment, checks the
token's scope and the role's capability, and runs the whole request inside the tenant scope.
Subclasses declare ``model``, ``serializer_class`` and filters; they cannot override the
scoping methods (``get_queryset``, ``get_object``, ``initial``, ``dispatch``): the class
refuses to be defined if they try. To add joins or annotations, override
``filter_scoped_queryset``.

``MspWideMixin`` serves every other route under ``/api/v1/`` (tenants, me, audit, fleet
metrics, catalogues). It applies the token's scope the same way, and its tenant binding: a
bound token reads only its tenant's data (``visible_tenants``) or is refused.
"""

from __future__ import annotations

from contextlib import ExitStack, nullcontext

from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from rest_framework import exceptions, mixins, viewsets
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import SAFE_METHODS
from rest_framework.views import APIView

from msp.api.errors import NOT_FOUND_MESSAGE
from msp.api.values import ValuesListModelMixin
from tenants.api.owned import split_many_to_many
from tenants.models import ApiToken, Tenant, TokenScope
from tenants.owned import owned_object_create, owned_object_delete, owned_object_update
from tenants.scoping import TenantOwnedModel, tenant_scope
from tenants.selectors import TenantAccess, tenant_access_for, tenants_visible_to

_SEALED = (
    "get_queryset",
    "get_object",
    "initial",
    "dispatch",
    "resolve_tenant_access",
    "stream_scope",
)
_MSP_SEALED = ("initial", "check_token")


def _defined_by(cls: type, name: str) -> type | None:
    """The class whose definition of ``name`` wins in ``cls``'s MRO."""
    return next((klass for klass in cls.__mro__ if name in klass.__dict__), None)


def _overridden(cls: type, base: type, names: tuple[str, ...]) -> list[str]:
    return [name for name in names if _defined_by(cls, name) is not base]


def request_token(request) -> ApiToken | None:
    """The API token that authenticated ``request``; None for a signed-in session."""
    return request.auth if isinstance(request.auth, ApiToken) else None


def token_scope_check(token: ApiToken | None, needed: str) -> None:
    if token is not None and not token.has_scope(needed):
        raise exceptions.PermissionDenied(f"This API token lacks the '{needed}' scope.")


def _unscoped(model: type[models.Model]):
    return (
        model.objects.unscoped()
        if issubclass(model, TenantOwnedModel)
        else model._default_manager.all()
    )


class TenantScopedMixin:
    """Scoping for tenant-bound API views. See the module docstring."""

    model: type[models.Model]
    tenant_url_kwarg = "tenant_slug"
    # Capability (read / write / manage) needed for unsafe methods, and per action if set.
    write_capability = "write"
    action_capabilities: dict[str, str] = {}
    # Token scope needed for unsafe methods (``ingest`` for telemetry endpoints).
    write_token_scope = TokenScope.WRITE
    # Actions only a signed-in person may take: an API token is refused whatever its scopes.
    session_only_actions: frozenset[str] = frozenset()
    session_only_message = "Only a signed-in person can do this, not an API token."

    access: TenantAccess

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        overridden = _overridden(cls, TenantScopedMixin, _SEALED)
        if overridden:
            raise ImproperlyConfigured(
                f"{cls.__name__} overrides {', '.join(overridden)}: tenant-scoped views may "
                "not re-implement scoping. Override filter_scoped_queryset instead."
            )

    @property
    def tenant(self):
        return self.access.tenant

    def dispatch(self, request, *args, **kwargs):
        # The stack holds the tenant scope (and its transaction) for the whole request,
        # including error handling, and is always closed.
        self._scope_stack = ExitStack()
        with self._scope_stack:
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.access = self.resolve_tenant_access(request, kwargs.get(self.tenant_url_kwarg, ""))
        self._check_capability(request)
        if not self.uses_tenant_rows(request):
            return
        if request.method not in SAFE_METHODS:
            self._scope_stack.enter_context(transaction.atomic())
        self._scope_stack.enter_context(tenant_scope(self.access.tenant.id))

    def uses_tenant_rows(self, request) -> bool:
        """Whether the request reads or writes the database past the access check: then it runs
        in the tenant scope (and a write in one transaction). A view that only passes a body on
        (forwarding ingest) says no and pays for neither; a tenant-owned query there fails
        closed, as outside any scope."""
        return True

    def stream_scope(self):
        """The tenant scope again, for a body read after the view returns (a streamed CSV)."""
        return tenant_scope(self.access.tenant.id)

    def resolve_tenant_access(self, request, slug: str) -> TenantAccess:
        access = tenant_access_for(user=request.user, slug=slug, token=request_token(request))
        if access is None:
            # Same answer for a tenant that does not exist and one the caller may not see.
            raise exceptions.NotFound(NOT_FOUND_MESSAGE)
        return access

    def required_capability(self, request) -> str:
        action = getattr(self, "action", None)
        if action in self.action_capabilities:
            return self.action_capabilities[action]
        return "read" if request.method in SAFE_METHODS else self.write_capability

    def required_token_scope(self, request) -> str:
        return TokenScope.READ if request.method in SAFE_METHODS else self.write_token_scope

    def _check_capability(self, request) -> None:
        token = request_token(request)
        token_scope_check(token, self.required_token_scope(request))
        if token is not None and getattr(self, "action", None) in self.session_only_actions:
            raise exceptions.PermissionDenied(self.session_only_message)
        capability = self.required_capability(request)
        if not self.access.allows(capability):
            raise exceptions.PermissionDenied(
                f"Your role ({self.access.role}) cannot {capability} in this tenant."
            )

    def get_queryset(self):
        model = self.model
        if getattr(self, "swagger_fake_view", False):
            # Schema generation introspects the view without a request or a tenant.
            return _unscoped(model).none()
        if issubclass(model, TenantOwnedModel):
            queryset = model.objects.all()  # the fail-closed manager, inside the request scope
        else:
            queryset = model._default_manager.all()
        # Belt and braces for owned models; the only filter for boundary models.
        return self.filter_scoped_queryset(queryset.filter(tenant=self.access.tenant))

    def filter_scoped_queryset(self, queryset):
        """Hook for select_related, annotations and extra filters. Never widen the set."""
        return queryset

    def get_object(self):
        queryset = self.filter_queryset(self.get_queryset())
        lookup_url_kwarg = self.lookup_url_kwarg or self.lookup_field
        value = self.kwargs.get(lookup_url_kwarg)
        meta = self.model._meta
        field = meta.pk if self.lookup_field == "pk" else meta.get_field(self.lookup_field)
        try:
            value = field.to_python(value)
        except Exception as exc:  # noqa: BLE001 - a malformed id is simply not found
            raise exceptions.NotFound(NOT_FOUND_MESSAGE) from exc
        obj = queryset.filter(**{self.lookup_field: value}).first()
        if obj is None:
            raise exceptions.NotFound(NOT_FOUND_MESSAGE)
        self.check_object_permissions(self.request, obj)
        return obj

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if hasattr(self, "access"):
            context["tenant"] = self.access.tenant
            context["access"] = self.access
        return context


class TenantScopedViewSet(TenantScopedMixin, viewsets.GenericViewSet):
    """Base viewset for every ``/api/v1/tenants/{slug}/<resource>/`` endpoint."""


class TenantScopedAPIView(TenantScopedMixin, GenericAPIView):
    """Base for non-resource endpoints under a tenant (imports, exports, metrics)."""


class TenantScopedModelViewSet(
    ValuesListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantScopedViewSet,
):
    """Full CRUD for a tenant-owned model through the generic audited services.

    Override ``perform_*`` to call an app's own services where it has rules of its own.
    """

    def perform_create(self, serializer):
        data, many_to_many = split_many_to_many(self.model, serializer.validated_data)
        serializer.instance = owned_object_create(
            tenant=self.tenant, model=self.model, data=data, many_to_many=many_to_many
        )

    def perform_update(self, serializer):
        data, many_to_many = split_many_to_many(self.model, serializer.validated_data)
        instance = owned_object_update(tenant=self.tenant, instance=serializer.instance, data=data)
        for name, values in many_to_many.items():
            getattr(instance, name).set(values)
        serializer.instance = instance

    def perform_destroy(self, instance):
        owned_object_delete(tenant=self.tenant, instance=instance)


class MspWideMixin:
    """The base for every ``/api/v1/`` route outside ``/api/v1/tenants/{slug}/``.

    For an API token it checks the route's scope (``read`` for safe methods,
    ``write_token_scope`` otherwise) and its tenant binding: a bound token is refused the
    actions in ``bound_token_refused_actions`` (those that act on the MSP, not on a tenant),
    and everywhere else reads only what ``visible_tenants()`` returns, which for a bound token
    is its tenant alone. Tenant data on these routes must come through ``visible_tenants()``
    (or a selector given ``token=self.token``); catalogue routes serve no tenant data.
    ``initial`` and ``check_token`` are sealed, as on the tenant base.
    """

    write_token_scope = TokenScope.WRITE
    # Actions (viewsets) or lower-case methods (plain views) refused to a tenant-bound token.
    bound_token_refused_actions: frozenset[str] = frozenset()

    token: ApiToken | None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        overridden = _overridden(cls, MspWideMixin, _MSP_SEALED)
        if overridden:
            raise ImproperlyConfigured(
                f"{cls.__name__} overrides {', '.join(overridden)}: MSP-wide views may not "
                "re-implement the token checks."
            )

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.token = request_token(request)
        self.check_token(request)

    def check_token(self, request) -> None:
        token = self.token
        needed = TokenScope.READ if request.method in SAFE_METHODS else self.write_token_scope
        token_scope_check(token, needed)
        action = getattr(self, "action", None) or request.method.lower()
        bound = token is not None and token.tenant_id is not None
        if bound and action in self.bound_token_refused_actions:
            raise exceptions.PermissionDenied(
                "This API token is bound to one tenant; this action is MSP-wide."
            )

    def stream_scope(self):
        """Nothing to re-enter for a streamed body: MSP-wide rows are not tenant-owned."""
        return nullcontext()

    def visible_tenants(self) -> models.QuerySet[Tenant]:
        """The tenants this request may read: the caller's, narrowed to a bound token's."""
        return tenants_visible_to(self.request.user, token=self.token)


class MspWideViewSet(MspWideMixin, viewsets.GenericViewSet):
    """Base viewset for MSP-wide resources (``/api/v1/tenants/``, ``/api/v1/audit/``, …)."""


class MspWideAPIView(MspWideMixin, APIView):
    """Base for MSP-wide non-resource endpoints (``/api/v1/me/``, fleet metrics, catalogues)."""
