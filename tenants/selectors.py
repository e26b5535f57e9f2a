"""Reads across the tenant boundary: who may see which tenant, and as what."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants.models import (
    ApiToken,
    AuditEvent,
    Membership,
    MspRole,
    OnboardingStep,
    ServicePlan,
    StaffAssignment,
    Tenant,
    TenantRole,
    TenantStatus,
    User,
)

# What each role may do inside a tenant it can reach.
_WRITE_ROLES = {MspRole.ADMIN, MspRole.ENGINEER, TenantRole.ADMIN, TenantRole.MEMBER}
_MANAGE_ROLES = {MspRole.ADMIN, MspRole.ENGINEER, TenantRole.ADMIN}
_CLIENT_READ_ONLY_STATUSES = {TenantStatus.SUSPENDED}


@dataclass(frozen=True)
class TenantAccess:
    """What one user may do in one tenant, resolved once per request."""

    tenant: Tenant
    role: str

    @property
    def is_staff(self) -> bool:
        return self.role in MspRole.values

    @property
    def can_write(self) -> bool:
        if not self.is_staff and self.tenant.status in _CLIENT_READ_ONLY_STATUSES:
            return False
        return self.role in _WRITE_ROLES

    @property
    def can_manage(self) -> bool:
        """Manage the team and API tokens of the tenant."""
        if not self.is_staff and self.tenant.status in _CLIENT_READ_ONLY_STATUSES:
            return False
        return self.role in _MANAGE_ROLES

    @property
    def can_read_audit(self) -> bool:
        return self.is_staff or self.role == TenantRole.ADMIN

    def allows(self, capability: str) -> bool:
        # Only the capability asked is worked out (this runs on every API request).
        return _CAPABILITIES[capability](self)


_CAPABILITIES = {
    "read": lambda access: True,
    "write": lambda access: access.can_write,
    "manage": lambda access: access.can_manage,
    "audit": lambda access: access.can_read_audit,
    "staff_write": lambda access: access.is_staff and access.role in _WRITE_ROLES,
    # Work a client may do and MSP staff may do on the client's behalf in the portal
    # (the readiness questionnaire): clients who write, engineers and MSP admins.
    "answer": lambda access: access.can_write,
    "msp_admin": lambda access: access.role == MspRole.ADMIN,
    # A person's own settings in the tenant (their email notifications), anyone's.
    "own_settings": lambda access: True,
}


def tenants_visible_to(user, *, token=None) -> QuerySet[Tenant]:
    """Tenants a user may see: all (msp_admin), assigned ones (staff), their own (client).

    Through a token bound to a tenant, that tenant only (if the user still sees it).
    """
    if not user.is_authenticated or not user.is_active:
        return Tenant.objects.none()
    if user.is_msp_admin:
        tenants = Tenant.objects.all()
    elif user.msp_role:
        tenants = Tenant.objects.filter(staff_assignments__user=user)
    else:
        tenants = Tenant.objects.filter(memberships__user=user).exclude(
            status=TenantStatus.OFFBOARDED
        )
    if token is not None and token.tenant_id is not None:
        tenants = tenants.filter(pk=token.tenant_id)
    return tenants


def tenant_ids_visible_to(user) -> list[int]:
    return list(tenants_visible_to(user).values_list("id", flat=True))


def tenant_access_for(*, user, slug: str, token=None) -> TenantAccess | None:
    """Resolve ``slug`` for ``user`` in one query; None when missing *or* not allowed.

    A token bound to a tenant reaches that tenant only.
    """
    if not user.is_authenticated or not user.is_active:
        return None
    if token is not None and token.tenant_id is not None:
        # The token's tenant came with the token: only the user's role in it is left to read.
        if token.tenant.slug != slug:
            return None
        return _access_to_token_tenant(user, token.tenant, token)
    tenants = Tenant.objects.filter(slug=slug)
    if user.is_msp_admin:
        tenant = tenants.first()
        return TenantAccess(tenant=tenant, role=MspRole.ADMIN) if tenant else None
    if user.msp_role:
        assigned = StaffAssignment.objects.filter(tenant=OuterRef("pk"), user=user)
        tenant = tenants.filter(Exists(assigned)).first()
        return TenantAccess(tenant=tenant, role=user.msp_role) if tenant else None
    role = Membership.objects.filter(tenant=OuterRef("pk"), user=user).values("role")[:1]
    tenant = (
        tenants.exclude(status=TenantStatus.OFFBOARDED)
        .annotate(member_role=Subquery(role))
        .filter(member_role__isnull=False)
        .first()
    )
    return TenantAccess(tenant=tenant, role=tenant.member_role) if tenant else None


def _access_to_token_tenant(user, tenant: Tenant, token) -> TenantAccess | None:
    place = getattr(token, "place_in_tenant", None)  # read with the token (api_token_by_prefix)
    if user.is_msp_admin:
        return TenantAccess(tenant=tenant, role=MspRole.ADMIN)
    if user.msp_role:
        if place is not None:
            assigned = place.staff_assigned
        else:
            assigned = StaffAssignment.objects.filter(tenant=tenant, user=user).exists()
        return TenantAccess(tenant=tenant, role=user.msp_role) if assigned else None
    if tenant.status == TenantStatus.OFFBOARDED:
        return None
    if place is not None:
        role = place.member_role
    else:
        role = Membership.objects.filter(tenant=tenant, user=user).values_list("role", flat=True)
        role = role.first()
    return TenantAccess(tenant=tenant, role=role) if role else None


@dataclass(frozen=True)
class PlaceInTenant:
    """The token's user in the token's tenant, read in the token's own query."""

    member_role: str | None
    staff_assigned: bool


class _TokenQuery:
    """The token by its prefix, with its user, its tenant and the user's membership and staff
    assignment there, in one SELECT written once per process: compiling the ORM's version took
    ~1.5 ms a request, ten times the query itself. Values pass through the same converters the
    ORM applies, and rows become models through ``Model.from_db``."""

    def __init__(self, connection):
        quote = connection.ops.quote_name
        self.parts = []  # (model, attnames, converters per column) in select order
        columns = []
        for model, alias in ((ApiToken, "t"), (User, "u"), (Tenant, "n")):
            fields = model._meta.concrete_fields
            converters = []
            for field in fields:
                col = field.get_col(alias)
                chain = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
                converters.append((col, chain))
                columns.append(f"{alias}.{quote(field.column)}")
            self.parts.append((model, [field.attname for field in fields], converters))
        token, user, tenant = (model._meta for model in (ApiToken, User, Tenant))
        membership, staff = Membership._meta, StaffAssignment._meta

        def column(meta, name: str) -> str:
            return quote(meta.get_field(name).column)

        # Names from _meta only; the prefix is the one parameter.
        self.sql = (
            f"SELECT {', '.join(columns)}, m.{column(membership, 'role')}, "  # noqa: S608
            f"s.{column(staff, 'id')} "
            f"FROM {quote(token.db_table)} t "
            f"INNER JOIN {quote(user.db_table)} u "
            f"ON u.{column(user, 'id')} = t.{column(token, 'user')} "
            f"LEFT OUTER JOIN {quote(tenant.db_table)} n "
            f"ON n.{column(tenant, 'id')} = t.{column(token, 'tenant')} "
            # Membership is one per user, a staff assignment one per user and tenant: at most
            # one row each.
            f"LEFT OUTER JOIN {quote(membership.db_table)} m "
            f"ON m.{column(membership, 'user')} = t.{column(token, 'user')} "
            f"AND m.{column(membership, 'tenant')} = t.{column(token, 'tenant')} "
            f"LEFT OUTER JOIN {quote(staff.db_table)} s "
            f"ON s.{column(staff, 'user')} = t.{column(token, 'user')} "
            f"AND s.{column(staff, 'tenant')} = t.{column(token, 'tenant')} "
            f"WHERE t.{column(token, 'prefix')} = %s"
        )

    def fetch(self, connection, prefix: str) -> ApiToken | None:
        with connection.cursor() as cursor:
            cursor.execute(self.sql, [prefix])
            row = cursor.fetchone()
        if row is None:
            return None
        objects, start = [], 0
        for model, attnames, converters in self.parts:
            values = list(row[start : start + len(attnames)])
            start += len(attnames)
            for index, (col, chain) in enumerate(converters):
                for converter in chain:
                    values[index] = converter(values[index], col, connection)
            objects.append(model.from_db(connection.alias, attnames, values))
        token, user, tenant = objects
        token.user = user
        if token.tenant_id is not None:
            token.tenant = tenant
            token.place_in_tenant = PlaceInTenant(
                member_role=row[start], staff_assigned=row[start + 1] is not None
            )
        else:
            token.tenant = None
        return token


_token_queries: dict[str, _TokenQuery] = {}


def api_token_by_prefix(prefix: str) -> ApiToken | None:
    """The API token with ``prefix``, its ``user`` and ``tenant`` loaded, and for a bound token
    its user's ``place_in_tenant`` (role, staff assignment), which ``tenant_access_for`` then
    takes instead of querying again. One query."""
    from django.db import connections, router

    connection = connections[router.db_for_read(ApiToken)]
    query = _token_queries.get(connection.vendor)
    if query is None:
        query = _token_queries[connection.vendor] = _TokenQuery(connection)
    return query.fetch(connection, prefix)


def tenant_first_visible_to(user) -> Tenant | None:
    """The tenant a client user lands on (clients see one tenant)."""
    return tenants_visible_to(user).first()


def tenant_switch_choices_for(user) -> tuple[Tenant, ...]:
    """The tenants a staff member can switch between, by name (none for client users)."""
    if not user.msp_role:
        return ()
    return tuple(tenants_visible_to(user).only("id", "name", "slug").order_by("name"))


def tenant_status_counts_for(user) -> dict[str, int]:
    """{status: number of visible tenants} (statuses with no tenant left out)."""
    return dict(
        tenants_visible_to(user)
        .order_by()
        .values_list("status")
        .annotate(count=Count("id"))
        .values_list("status", "count")
    )


# --- Inside one tenant (call inside its scope) -------------------------------------------------


def service_plan_get(*, tenant: Tenant) -> ServicePlan | None:
    return ServicePlan.objects.filter(tenant=tenant).first()


def service_plan_timezone(*, tenant: Tenant) -> str:
    """The tenant's time zone (its service plan's), UTC without a plan."""
    zone = ServicePlan.objects.filter(tenant=tenant).values_list("timezone", flat=True).first()
    return zone or "UTC"


def audit_events_of_tenant_between(
    *, tenant: Tenant, start: dt.datetime, end: dt.datetime
) -> QuerySet[AuditEvent]:
    """The tenant's audit events with ``start <= occurred_at < end``, oldest first."""
    return AuditEvent.objects.filter(
        tenant=tenant, occurred_at__gte=start, occurred_at__lt=end
    ).order_by("occurred_at", "id")


def onboarding_steps_with_completer(queryset: QuerySet[OnboardingStep]) -> QuerySet:
    return queryset.select_related("completed_by")


def onboarding_step_list(*, tenant: Tenant) -> list[OnboardingStep]:
    """The tenant's checklist in its order."""
    steps = OnboardingStep.objects.filter(tenant=tenant)
    return list(onboarding_steps_with_completer(steps).order_by("position", "id"))


def memberships_with_users(queryset: QuerySet[Membership]) -> QuerySet[Membership]:
    return queryset.select_related("user")


def membership_list(*, tenant: Tenant) -> QuerySet[Membership]:
    """The tenant's members by username, each with ``has_mfa`` (an authenticator app set up)."""
    return (
        memberships_with_users(Membership.objects.filter(tenant=tenant))
        .annotate(has_mfa=mfa_enrolled(user=OuterRef("user")))
        .order_by("user__username")
    )


def membership_get(*, tenant: Tenant, membership_id: int) -> Membership | None:
    return membership_list(tenant=tenant).filter(pk=membership_id).first()


def api_tokens_with_users(queryset: QuerySet[ApiToken]) -> QuerySet[ApiToken]:
    return queryset.select_related("user")


def api_token_list(*, tenant: Tenant) -> list[ApiToken]:
    """The tenant's API tokens, newest first."""
    tokens = api_tokens_with_users(ApiToken.objects.filter(tenant=tenant))
    return list(tokens.order_by("-created_at", "-id"))


def api_token_get(*, tenant: Tenant, token_id: int) -> ApiToken | None:
    return api_tokens_with_users(ApiToken.objects.filter(tenant=tenant, pk=token_id)).first()


def audit_events_visible_to(user, *, token=None) -> QuerySet[AuditEvent]:
    """MSP admin: everything; other staff: their tenants' events; clients: none here.

    Through a token bound to a tenant, that tenant's events only (no MSP-wide ones).
    """
    events = AuditEvent.objects.select_related("tenant")
    if not user.is_authenticated or not user.is_active or not user.msp_role:
        return events.none()
    if user.is_msp_admin and (token is None or token.tenant_id is None):
        return events
    return events.filter(tenant__in=tenants_visible_to(user, token=token))


# --- Second factor ------------------------------------------------------------------------------


def _staff_account(user) -> bool:
    # Any account that can reach the admin or other tenants' data, whatever its role says.
    return bool(user.msp_role or user.is_staff or user.is_superuser)


def mfa_required_for(*, user) -> bool:
    """Whether a second factor is demanded: of MSP staff always, of clients if their tenant says."""
    if _staff_account(user):
        return True
    return Membership.objects.filter(user=user, tenant__require_mfa=True).exists()


def mfa_needed_by(*, user) -> bool:
    """Whether sign-in asks this user for a second factor: required, or set up by choice.

    One query for client users: it runs on every request of a session not yet verified.
    """
    if _staff_account(user):
        return True
    required = Exists(Membership.objects.filter(user=OuterRef("pk"), tenant__require_mfa=True))
    enrolled = mfa_enrolled(user=OuterRef("pk"))
    return User.objects.filter(pk=user.pk).filter(Q(required) | Q(enrolled)).exists()


def mfa_enrolled(*, user) -> Exists:
    """An annotation: whether ``user`` (an ``OuterRef``) has a confirmed authenticator app."""
    return Exists(TOTPDevice.objects.filter(user=user, confirmed=True))


def mfa_authenticator_for(*, user) -> TOTPDevice | None:
    """The user's confirmed authenticator app, if they have set one up."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-id").first()


def mfa_recovery_codes_left(*, user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def mfa_recovery_device_for(*, user) -> StaticDevice | None:
    return StaticDevice.objects.filter(user=user, confirmed=True).order_by("-id").first()


def viewer_timezone_name(user) -> str:
    """The zone pages show ``user`` times in: staff their own setting, clients their tenant's
    plan (UTC when neither says)."""
    if user.msp_role:
        return user.timezone or "UTC"
    zone = (
        ServicePlan.objects.filter(tenant__memberships__user=user)
        .values_list("timezone", flat=True)
        .first()
    )
    return zone or "UTC"


def api_tokens_active(*, tenant: Tenant, now=None) -> list[dict]:
    """The tenant's API tokens that still work (not revoked, not expired, their user active),
    as rows: id, name, prefix, expiry. One query."""
    now = now or timezone.now()
    return list(
        ApiToken.objects.filter(tenant=tenant, revoked_at__isnull=True, user__is_active=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by("name", "id")
        .values("id", "name", "prefix", "expires_at")
    )


# --- Readiness pipeline: audited changes of one field, for many tenants at once ----------------


def audit_field_changes(
    *, tenant_ids: list[int], object_type: str, field: str, since=None
) -> list[tuple[str, dt.datetime, object, object]]:
    """(object id, when, old value, new value) of every audited write of ``object_type``
    (``app_label.Model``) that changed ``field`` (its creation included), oldest first. One
    query."""
    events = AuditEvent.objects.filter(
        tenant_id__in=tenant_ids, object_type=object_type, changes__has_key=field
    )
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    changes = []
    for object_id, occurred_at, change in events.order_by("occurred_at", "id").values_list(
        "object_id", "occurred_at", "changes"
    ):
        old, new = change[field] if isinstance(change.get(field), list) else (None, None)
        changes.append((object_id, occurred_at, old, new))
    return changes


# --- The fleet dashboard -----------------------------------------------------------------------


def fleet_tenant_rows(
    user, *, query: str = "", status: str = "", account_team: int | None = None, industry: str = ""
) -> list[dict]:
    """The visible tenants a fleet dashboard lists, as rows (id, slug, name, status, industry,
    plan tier), narrowed by search, status, a staff member of the account team and industry.
    One query."""
    tenants = tenants_visible_to(user)
    if query:
        tenants = tenants.filter(
            Q(name__icontains=query) | Q(slug__icontains=query) | Q(industry__icontains=query)
        )
    if status:
        tenants = tenants.filter(status=status)
    if account_team is not None:
        tenants = tenants.filter(
            Exists(StaffAssignment.objects.filter(tenant=OuterRef("pk"), user_id=account_team))
        )
    if industry:
        tenants = tenants.filter(industry=industry)
    return list(
        tenants.order_by("name").values("id", "slug", "name", "status", "industry", "plan__tier")
    )


def fleet_filter_choices(user) -> dict:
    """What the dashboard's filters offer: the staff on the visible tenants' account teams
    (id, name) and the industries of the visible tenants. Two queries."""
    visible = tenants_visible_to(user)
    staff = (
        User.objects.filter(staff_assignments__tenant__in=visible)
        .distinct()
        .order_by("first_name", "last_name", "username")
        .values_list("id", "first_name", "last_name", "username")
    )
    industries = (
        visible.exclude(industry="").order_by("industry").values_list("industry", flat=True)
    )
    return {
        "account_team": [
            (pk, f"{first} {last}".strip() or username) for pk, first, last, username in staff
        ],
        "industries": list(dict.fromkeys(industries)),
    }


def account_team_for(*, tenant: Tenant) -> list[User]:
    """The MSP staff assigned to the tenant, by name."""
    return list(
        User.objects.filter(staff_assignments__tenant=tenant).order_by(
            "first_name", "last_name", "username"
        )
    )


def audit_events_recent(*, tenant: Tenant, limit: int) -> list[AuditEvent]:
    """The tenant's newest ``limit`` audit events."""
    return list(AuditEvent.objects.filter(tenant=tenant).order_by("-occurred_at", "-id")[:limit])


def audit_change_counts_in_window(*, tenant: Tenant, start: dt.datetime, end: dt.datetime) -> dict:
    """The tenant's audited writes in ``[start, end)``: ``total``, ``by_staff`` (made by MSP
    staff) and ``by_type`` ({object type: count}, most first). One query."""
    rows = (
        AuditEvent.objects.filter(tenant=tenant, occurred_at__gte=start, occurred_at__lt=end)
        .order_by()
        .values("object_type")
        .annotate(
            changes=Count("id"),
            staff=Count("id", filter=Q(actor_user__msp_role__gt="")),
        )
    )
    by_type = sorted(((r["object_type"], r["changes"]) for r in rows), key=lambda r: (-r[1], r[0]))
    return {
        "total": sum(count for _type, count in by_type),
        "by_staff": sum(r["staff"] for r in rows),
        "by_type": dict(by_type),
    }
