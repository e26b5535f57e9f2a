"""The tenant scope: which tenants the current unit of work may touch.

One scope context serves requests, management commands and Celery tasks::

    with tenant_scope(tenant.id):
        OnboardingStep.objects.all()     # only that tenant's rows

Outside a scope, any query through the default manager of a tenant-owned model raises
``TenantScopeMissing`` when it would run (fail closed). The application's filter can be
skipped only by the explicit, greppable ``Model.objects.unscoped()``; on PostgreSQL row-level
security still applies underneath, fed by the same scope through a transaction-local setting
(``app.tenant_ids``). Every bypass lives here, under a name a reviewer can grep for:
``all_tenants_scope()``, ``scoped_atomic()``, the row-level security statement
(``rls_set_statement``) and the advisory locks (``tenant_advisory_lock``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.db.models import sql

RLS_SETTING = "app.tenant_ids"
# is_local=true: the value lives and dies with the current transaction.
RLS_SET_SQL = "SELECT set_config(%s, %s, true)"


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


def rls_set_statement(tenant_ids: Iterable[int]) -> tuple[str, list[str]]:
    """The statement (SQL, params) that gives row-level security ``tenant_ids`` as the scope of
    the current transaction (none: nothing is visible). The only place that SQL is written."""
    return RLS_SET_SQL, [RLS_SETTING, ",".join(str(int(t)) for t in sorted(tenant_ids))]


def _set_database_scope(value: str, using: str) -> None:
    db = connections[using]
    if db.vendor != "postgresql":
        return
    with db.cursor() as cursor:
        cursor.execute(RLS_SET_SQL, [RLS_SETTING, value])


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
        db = connections[using]
        if db.vendor == "postgresql":
            # An outermost block's transaction ends with it, and the transaction-local setting
            # with that: resetting it first would cost a round trip on every scoped request.
            ends_transaction = db.get_autocommit() and not db.in_atomic_block
            with transaction.atomic(using=using):
                _set_database_scope(scope.as_setting(), using)
                yield scope
                # On an exception the savepoint rollback restores the outer value by itself; so
                # it does for an error handled inside the block (a 503 answered for a failed
                # call) that left the transaction to roll back, where no query may run.
                if not ends_transaction and not db.needs_rollback:
                    _set_database_scope(outer.as_setting() if outer else "", using)
        else:
            yield scope
    finally:
        _active_scope.reset(token)


@contextmanager
def scoped_atomic(tenant_id: int | None) -> Iterator[None]:
    """One transaction in ``tenant_id``'s scope (no scope for fleet rows), on every database.

    An enclosing scope of exactly that tenant is reused; on PostgreSQL ``tenant_scope`` opens
    the transaction (or savepoint) itself, so there is no second savepoint.
    """
    with ExitStack() as stack:
        scope = active_scope()
        scope_is_atomic = False
        if tenant_id is not None and (scope is None or scope.tenant_ids != {tenant_id}):
            stack.enter_context(tenant_scope(tenant_id))
            scope_is_atomic = connection.vendor == "postgresql"
        stack.enter_context(transaction.atomic(savepoint=not scope_is_atomic))
        yield


@contextmanager
def all_tenants_scope(*, include_offboarded: bool = True) -> Iterator[list[int]]:
    """Every tenant's scope at once, for MSP-wide work (the reaper, fleet cancels, fleet scans).

    Yields the tenants' ids, ascending. With no tenant at all there is no scope and the block
    gets ``[]``: it should do nothing (a scoped query would raise).
    """
    from tenants.models import Tenant, TenantStatus  # the models build on this module

    tenants = Tenant.objects.all()
    if not include_offboarded:
        tenants = tenants.exclude(status=TenantStatus.OFFBOARDED)
    tenant_ids = sorted(tenants.values_list("id", flat=True))
    with ExitStack() as stack:
        if tenant_ids:
            stack.enter_context(tenant_scope(*tenant_ids))
        yield tenant_ids


# --- Advisory locks ----------------------------------------------------------------------------
# One key scheme for every PostgreSQL advisory lock: the two-int4 form (class, object). The class
# is a stable hash of the lock's purpose ("optimisation.scan"), refused if another purpose already
# has it; the object is a tenant id, or a number the purpose defines (0 for a single lock).
# PostgreSQL keeps two-int4 keys apart from single-bigint ones, so those cannot collide with ours.

_advisory_lock_classes: dict[int, str] = {}


def _purpose_hash(purpose: str) -> int:
    digest = hashlib.blake2b(purpose.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def advisory_lock_class(purpose: str) -> int:
    """The int4 class of ``purpose``'s advisory locks; a purpose whose hash another holds fails."""
    key = _purpose_hash(purpose)
    holder = _advisory_lock_classes.setdefault(key, purpose)
    if holder != purpose:
        raise ValueError(
            f"Advisory lock purposes {holder!r} and {purpose!r} hash to the same class {key}; "
            "rename one."
        )
    return key


def advisory_lock_object(value: int) -> int:
    """``value`` as the int4 object of a lock (ids wrap past 2**32: far beyond any tenant)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def advisory_xact_lock(purpose: str, object_id: int = 0, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Wait for and hold the (purpose, object) lock until the current transaction ends.

    PostgreSQL only; elsewhere a no-op (SQLite runs one writer at a time already).
    """
    db = connections[using]
    if db.vendor != "postgresql":
        return
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)",
            [advisory_lock_class(purpose), advisory_lock_object(object_id)],
        )


def tenant_advisory_lock(tenant_id: int, purpose: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Serialise ``purpose`` within one tenant: hold (purpose, tenant) to the transaction's end."""
    advisory_xact_lock(purpose, int(tenant_id), using=using)


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
