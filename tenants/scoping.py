"""The tenant scope: which tenants the current unit of work may touch.

One scope context serves requests, management commands and Celery tasks::

    with tenant_scope(tenant.id):
        OnboardingStep.objects.all()     # only that tenant's rows

Outside a scope, any query through the default manager of a tenant-owned model raises
``TenantScopeMissing`` when it would run (fail closed). The application's filter can be
skipped only by the explicit, greppable ``Model.objects.unscoped()``; on PostgreSQL row-level
security still applies underneath, fed by the same scope through a transaction-local setting
(``app.tenant_ids``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models import sql

RLS_SETTING = "app.tenant_ids"


class TenantScopeMissing(RuntimeError):
    """A tenant-owned model was queried with no active tenant scope."""


@dataclass(frozen=True)
class TenantScope:
    tenant_ids: frozenset[int]

    def as_setting(self) -> str:
        return ",".join(str(tenant_id) for tenant_id in sorted(self.tenant_ids))


_active_scope: ContextVar[TenantScope | None] = ContextVar("tenant_scope", default=None)


def active_scope() -> TenantScope | None:
    return _active_scope.get()


def _set_database_scope(value: str, using: str) -> None:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        # is_local=true: the value lives and dies with the current transaction.
        cursor.execute("SELECT set_config(%s, %s, true)", [RLS_SETTING, value])


@contextmanager
def tenant_scope(*tenant_ids: int, using: str = DEFAULT_DB_ALIAS) -> Iterator[TenantScope]:
    """Make ``tenant_ids`` the active scope for the block (nesting restores the outer one).

    On PostgreSQL the block runs in a transaction (a savepoint when nested) carrying the scope
    for row-level security.
    """
    if not tenant_ids:
        raise ValueError("tenant_scope() needs at least one tenant id")
    scope = TenantScope(frozenset(int(tenant_id) for tenant_id in tenant_ids))
    outer = _active_scope.get()
    token = _active_scope.set(scope)
    try:
        connection = connections[using]
        if connection.vendor == "postgresql":
            # An outermost block's transaction ends with it, and the transaction-local setting
            # with that: resetting it first would cost a round trip on every scoped request.
            ends_transaction = connection.get_autocommit() and not connection.in_atomic_block
            with transaction.atomic(using=using):
                _set_database_scope(scope.as_setting(), using)
                yield scope
                # On an exception the savepoint rollback restores the outer value by itself.
                if not ends_transaction:
                    _set_database_scope(outer.as_setting() if outer else "", using)
        else:
            yield scope
    finally:
        _active_scope.reset(token)


def require_scope(model: type[models.Model]) -> TenantScope:
    scope = _active_scope.get()
    if scope is None:
        raise TenantScopeMissing(
            f"{model._meta.label} was queried outside a tenant scope; wrap the work in "
            "tenant_scope(tenant_id) or use .unscoped() deliberately."
        )
    return scope


class ScopeMissingQuery(sql.Query):
    """The query of a tenant-owned queryset built outside any scope.

    It can be built, filtered and inspected (libraries introspect ``.query`` at import time),
    but it raises as soon as anything would turn it into SQL, or into an UPDATE or DELETE.
    """

    def get_compiler(self, using=None, connection=None, elide_empty=True):
        require_scope(self.model)
        raise AssertionError("unreachable")  # require_scope raised

    def chain(self, klass=None):
        if klass is not None and klass is not self.__class__:
            require_scope(self.model)
        return super().chain(klass)


class TenantScopedQuerySet(models.QuerySet):
    def _refuse_without_scope(self) -> None:
        if isinstance(self.query, ScopeMissingQuery):
            require_scope(self.model)

    def delete(self):
        self._refuse_without_scope()
        return super().delete()

    def _raw_delete(self, using):
        # Django's fast delete swaps the query class in place, past ScopeMissingQuery.chain().
        self._refuse_without_scope()
        return super()._raw_delete(using)


class TenantScopedManager(models.Manager.from_queryset(TenantScopedQuerySet)):
    """Default manager of every tenant-owned model: filtered to the active scope, or raises."""

    def get_queryset(self) -> TenantScopedQuerySet:
        scope = _active_scope.get()
        if scope is None:
            return self._queryset_class(
                model=self.model, query=ScopeMissingQuery(self.model), using=self._db
            )
        return super().get_queryset().filter(tenant_id__in=scope.tenant_ids)

    def unscoped(self) -> TenantScopedQuerySet:
        """Skip the application's tenant filter. Greppable on purpose; RLS still applies."""
        return super().get_queryset()


class TenantOwnedModel(models.Model):
    """Abstract base of every model that belongs to one tenant."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.PROTECT, related_name="+", editable=False
    )

    objects = TenantScopedManager()

    class Meta:
        abstract = True
