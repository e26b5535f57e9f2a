"""The one base for every endpoint under ``/api/v1/tenants/{slug}/``.

It resolves the tenant from the URL (never from the body), checks membership or staff
assignment, checks the token's scope and the role's capability, and runs the whole request
inside the tenant scope. Subclasses declare ``model``, ``serializer_class`` and filters; they
cannot override the scoping methods (``get_queryset``, ``get_object``, ``initial``,
``dispatch``): the class refuses to be defined if they try. To add joins or annotations,
override ``filter_scoped_queryset``.
"""

from __future__ import annotations

from contextlib import ExitStack

from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from rest_framework import exceptions, mixins, viewsets
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import SAFE_METHODS

from msp.api.errors import NOT_FOUND_MESSAGE
from tenants.models import TokenScope
from tenants.owned import (
    owned_object_create,
    owned_object_delete,
    owned_object_update,
    split_many_to_many,
)
from tenants.scoping import TenantOwnedModel, tenant_scope
from tenants.selectors import TenantAccess, tenant_access_for

_SEALED = ("get_queryset", "get_object", "initial", "dispatch", "resolve_tenant_access")


def _defined_by(cls: type, name: str) -> type | None:
    """The class whose definition of ``name`` wins in ``cls``'s MRO."""
    return next((klass for klass in cls.__mro__ if name in klass.__dict__), None)


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

    access: TenantAccess

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        overridden = [name for name in _SEALED if _defined_by(cls, name) is not TenantScopedMixin]
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
        if request.method not in SAFE_METHODS:
            self._scope_stack.enter_context(transaction.atomic())
        self._scope_stack.enter_context(tenant_scope(self.access.tenant.id))

    def resolve_tenant_access(self, request, slug: str) -> TenantAccess:
        token = request.auth if hasattr(request.auth, "prefix") else None
        access = tenant_access_for(user=request.user, slug=slug, token=token)
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
        token = request.auth if hasattr(request.auth, "prefix") else None
        if token is not None:
            needed = self.required_token_scope(request)
            if not token.has_scope(needed):
                raise exceptions.PermissionDenied(f"This API token lacks the '{needed}' scope.")
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
    mixins.ListModelMixin,
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
