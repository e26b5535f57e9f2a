"""Writes at the tenant boundary. Every write records an audit event in the same transaction."""

from __future__ import annotations

import datetime
import hashlib
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_otp import verify_token as otp_verify_token
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants import selectors
from tenants.audit import (
    audit_changes,
    audit_record,
    audit_snapshot,
    audited_update,
)
from tenants.lifecycle import tenant_transition_notify, token_issued_notify
from tenants.models import (
    ONBOARDING_STEPS,
    TENANT_TRANSITIONS,
    ApiToken,
    AuditAction,
    Membership,
    MspRole,
    OnboardingStep,
    ServicePlan,
    StaffAssignment,
    Tenant,
    TenantStatus,
    TokenScope,
    validate_timezone,
)
from tenants.scoping import scoped_atomic, tenant_scope

User = get_user_model()

TOKEN_PREFIX = "gw"  # noqa: S105 - a public marker, not a secret


# --- Tenants ------------------------------------------------------------------------------------


# Slugs that would collide with fixed URL segments (portal pages, API words).
RESERVED_SLUGS = frozenset(
    {
        "login",
        "logout",
        "switch",
        "account",
        "password-reset",
        "reset",
        "admin",
        "api",
        "static",
        "new",
        "me",
    }
)


@transaction.atomic
def tenant_create(*, name: str, slug: str, **fields) -> Tenant:
    """Create a prospect tenant with a default service plan."""
    if slug.lower() in RESERVED_SLUGS:
        raise ValidationError({"slug": f"'{slug}' is reserved; choose another slug."})
    tenant = Tenant(name=name, slug=slug, **fields)
    tenant.full_clean()
    tenant.save()
    # The default plan is part of the tenant's creation event, not an event of its own.
    plan = ServicePlan(tenant=tenant, business_days=[0, 1, 2, 3, 4])
    plan.full_clean()
    plan.save()
    audit_record(
        tenant=tenant,
        action=AuditAction.CREATE,
        instance=tenant,
        changes=audit_changes({}, audit_snapshot(tenant)),
    )
    return tenant


@transaction.atomic
def tenant_update(*, tenant: Tenant, **fields) -> Tenant:
    return audited_update(tenant=tenant, instance=tenant, data=fields)


def tenant_mfa_requirement_set(*, tenant: Tenant, required: bool) -> Tenant:
    """Require (or stop requiring) a second factor of every user of ``tenant``.

    Takes effect on their next request: signed-in users without one are sent to set it up.
    """
    return tenant_update(tenant=tenant, require_mfa=required)


def onboarding_missing_steps(*, tenant: Tenant) -> list[OnboardingStep]:
    with tenant_scope(tenant.id):
        return list(OnboardingStep.objects.filter(required=True, completed_at__isnull=True))


@transaction.atomic
def tenant_transition(*, tenant: Tenant, to_status: str) -> Tenant:
    """Move a tenant along its lifecycle; invalid moves and unfinished onboarding are refused."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if to_status not in TenantStatus.values:
        raise ValidationError({"status": f"'{to_status}' is not a tenant status."}, code="invalid")
    allowed = TENANT_TRANSITIONS[tenant.status]
    if to_status not in allowed:
        allowed_text = ", ".join(allowed) or "none (final state)"
        raise ValidationError(
            {
                "status": f"A tenant cannot move from {tenant.status} to {to_status}; "
                f"allowed: {allowed_text}."
            },
            code="invalid_transition",
        )
    if tenant.status == TenantStatus.ONBOARDING and to_status == TenantStatus.ACTIVE:
        missing = onboarding_missing_steps(tenant=tenant)
        if missing:
            titles = "; ".join(step.title for step in missing)
            raise ValidationError(
                {"status": f"Onboarding is not finished. Required steps still open: {titles}."},
                code="onboarding_incomplete",
            )
    previous = tenant.status
    tenant.status = to_status
    tenant.status_changed_at = timezone.now()
    tenant.save(update_fields=["status", "status_changed_at", "updated_at"])
    if to_status == TenantStatus.ONBOARDING:
        onboarding_checklist_create(tenant=tenant)
    # Contexts that follow the lifecycle (the jobs app's nightly schedules) registered hooks.
    tenant_transition_notify(tenant=tenant)
    audit_record(
        tenant=tenant,
        action=AuditAction.TRANSITION,
        instance=tenant,
        changes={"status": [previous, to_status]},
    )
    return tenant


def onboarding_checklist_create(*, tenant: Tenant) -> list[OnboardingStep]:
    """Create the standard checklist; steps that already exist are kept as they are."""
    with tenant_scope(tenant.id):
        existing = set(OnboardingStep.objects.values_list("key", flat=True))
        created = [
            OnboardingStep(tenant=tenant, key=key, title=title, required=required, position=index)
            for index, (key, title, required) in enumerate(ONBOARDING_STEPS)
            if key not in existing
        ]
        OnboardingStep.objects.bulk_create(created)
        return list(OnboardingStep.objects.all())


@transaction.atomic
def onboarding_step_set_done(
    *, tenant: Tenant, step: OnboardingStep, done: bool, user=None, notes: str | None = None
) -> OnboardingStep:
    data: dict = {}
    if done and step.completed_at is None:
        data.update(completed_at=timezone.now(), completed_by=user)
    elif not done:
        data.update(completed_at=None, completed_by=None)
    if notes is not None:
        data["notes"] = notes
    return audited_update(tenant=tenant, instance=step, data=data)


def onboarding_step_complete(
    *, tenant: Tenant, key: str, user=None, notes: str | None = None
) -> OnboardingStep | None:
    """Tick ``key`` on ``tenant``'s checklist when a context finishes that step by itself (a
    submitted readiness assessment). A step already done, or not on the list, is left alone."""
    with scoped_atomic(tenant.id):
        step = OnboardingStep.objects.select_for_update().filter(key=key).first()
        if step is None or step.done:
            return step
        return onboarding_step_set_done(tenant=tenant, step=step, done=True, user=user, notes=notes)


@transaction.atomic
def service_plan_update(*, tenant: Tenant, **fields) -> ServicePlan:
    plan = ServicePlan.objects.select_for_update().get(tenant=tenant)
    return audited_update(tenant=tenant, instance=plan, data=fields)


# --- People -------------------------------------------------------------------------------------


@transaction.atomic
def staff_user_create(
    *, username: str, msp_role: str, password: str | None = None, **fields
) -> User:
    if msp_role not in MspRole.values:
        raise ValidationError({"msp_role": f"'{msp_role}' is not an MSP role."})
    user = User(
        username=username,
        msp_role=msp_role,
        is_staff=True,
        is_superuser=msp_role == MspRole.ADMIN,
        **fields,
    )
    user.set_password(password) if password else user.set_unusable_password()
    user.full_clean()
    user.save()
    audit_record(
        tenant=None,
        action=AuditAction.CREATE,
        instance=user,
        changes={"username": [None, username], "msp_role": [None, msp_role]},
    )
    return user


@transaction.atomic
def staff_assign(*, tenant: Tenant, user) -> StaffAssignment:
    if not user.msp_role:
        raise ValidationError({"user": "Only MSP staff can be assigned to a tenant."})
    assignment, created = StaffAssignment.objects.get_or_create(tenant=tenant, user=user)
    if created:
        audit_record(
            tenant=tenant,
            action=AuditAction.CREATE,
            instance=assignment,
            changes={"user": [None, user.username]},
        )
    return assignment


@transaction.atomic
def staff_unassign(*, tenant: Tenant, assignment: StaffAssignment) -> None:
    audit_record(
        tenant=tenant,
        action=AuditAction.DELETE,
        instance=assignment,
        changes={"user": [assignment.user.username, None]},
    )
    assignment.delete()


@transaction.atomic
def membership_create(
    *,
    tenant: Tenant,
    username: str,
    role: str,
    email: str = "",
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
) -> Membership:
    """Create a client user and place them in ``tenant``."""
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "A user with that username already exists."})
    user = User(username=username, email=email, first_name=first_name, last_name=last_name)
    if password:
        # The same password rules for the portal, the API and commands.
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from exc
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean()
    user.save()
    membership = Membership(user=user, tenant=tenant, role=role)
    membership.full_clean()
    membership.save()
    audit_record(
        tenant=tenant,
        action=AuditAction.CREATE,
        instance=membership,
        changes={"user": [None, username], "role": [None, role]},
    )
    return membership


@transaction.atomic
def membership_update(
    *, tenant: Tenant, membership: Membership, role: str | None = None
) -> Membership:
    if role is None:  # a PATCH without fields changes nothing
        return membership
    before = membership.role
    membership.role = role
    membership.full_clean()
    membership.save(update_fields=["role"])
    if before != role:
        audit_record(
            tenant=tenant,
            action=AuditAction.UPDATE,
            instance=membership,
            changes={"role": [before, role]},
        )
    return membership


@transaction.atomic
def membership_remove(*, tenant: Tenant, membership: Membership) -> None:
    """Remove a client user from the tenant; their account and tokens stop working."""
    user = membership.user
    audit_record(
        tenant=tenant,
        action=AuditAction.DELETE,
        instance=membership,
        changes={"user": [user.username, None], "role": [membership.role, None]},
    )
    ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    membership.delete()
    user.is_active = False
    user.save(update_fields=["is_active"])


# --- API tokens ---------------------------------------------------------------------------------


def token_hash(secret: str) -> str:
    # The secret is 256 random bits, so a fast hash is safe: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def token_parse(raw: str) -> tuple[str, str] | None:
    """'gw_<prefix>_<secret>' -> (prefix, full token), or None when malformed."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], raw


@transaction.atomic
def token_issue(
    *,
    user,
    name: str,
    tenant: Tenant | None = None,
    scopes: list[str] | None = None,
    expires_in_days: int | None = None,
    created_by=None,
) -> tuple[ApiToken, str]:
    """Issue a token; returns (token row, plaintext). The plaintext is never stored."""
    scopes = list(dict.fromkeys(scopes or [TokenScope.READ]))
    unknown = [scope for scope in scopes if scope not in TokenScope.values]
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope(s): {', '.join(unknown)}."})
    if not user.msp_role:
        membership = Membership.objects.filter(user=user).select_related("tenant").first()
        if membership is None:
            raise ValidationError({"user": "This user belongs to no tenant."})
        if tenant is not None and tenant.pk != membership.tenant_id:
            raise ValidationError({"tenant": "A client user's token is bound to their tenant."})
        tenant = membership.tenant
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        raise ValidationError({"expires_in_days": "Between 1 and 3650 days."})
    prefix = secrets.token_hex(4)
    plaintext = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    expires_at = (
        timezone.now() + datetime.timedelta(days=expires_in_days) if expires_in_days else None
    )
    token = ApiToken(
        user=user,
        tenant=tenant,
        name=name,
        prefix=prefix,
        secret_hash=token_hash(plaintext),
        scopes=scopes,
        expires_at=expires_at,
        created_by=created_by,
    )
    token.full_clean()
    token.save()
    audit_record(
        tenant=tenant,
        action=AuditAction.CREATE,
        instance=token,
        changes={"name": [None, name], "scopes": [None, scopes], "user": [None, user.username]},
    )
    if tenant is not None:
        token_issued_notify(token=token)
    return token, plaintext


@transaction.atomic
def token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            tenant=token.tenant,
            action=AuditAction.REVOKE,
            instance=token,
            changes={"revoked_at": [None, token.revoked_at.isoformat()]},
        )
    return token


# --- Second factor ------------------------------------------------------------------------------

MFA_RECOVERY_CODE_COUNT = 10
_AUTHENTICATOR_NAME = "Authenticator app"
_RECOVERY_CODES_NAME = "Recovery codes"


def _tenant_of_user(user) -> Tenant | None:
    membership = Membership.objects.filter(user=user).select_related("tenant").first()
    return membership.tenant if membership is not None else None


def _mfa_audit(*, user, action: str, device: Device, what: str) -> None:
    # Never a snapshot: a device row holds its secret key.
    audit_record(
        tenant=_tenant_of_user(user),
        action=action,
        instance=device,
        changes={"two_factor": [None, what]},
    )


@transaction.atomic
def mfa_enrolment_start(*, user) -> TOTPDevice:
    """The authenticator the user is setting up: a new secret, or the one they were shown.

    Unconfirmed, it verifies nothing; ``mfa_enrolment_confirm`` makes it count.
    """
    pending = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    if pending is not None:
        return pending
    return TOTPDevice.objects.create(user=user, name=_AUTHENTICATOR_NAME, confirmed=False)


@transaction.atomic
def mfa_enrolment_confirm(*, user, device: TOTPDevice, code: str) -> list[str]:
    """Confirm a pending authenticator with a code from it; returns fresh recovery codes.

    It replaces any earlier authenticator and recovery codes of the user.
    """
    device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user, confirmed=False)
    if not device.verify_token(code.strip().replace(" ", "")):
        raise ValidationError(
            {"code": "That code does not match. Check the clock of the device and try again."},
            code="invalid_code",
        )
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    _mfa_audit(user=user, action=AuditAction.CREATE, device=device, what="authenticator set up")
    return mfa_recovery_codes_regenerate(user=user)


@transaction.atomic
def mfa_authenticator_provision(*, user, key: bytes, name: str) -> TOTPDevice:
    """A confirmed authenticator with a key set up elsewhere (the demo's published one)."""
    TOTPDevice.objects.filter(user=user).delete()
    device = TOTPDevice.objects.create(user=user, name=name, key=key.hex(), confirmed=True)
    _mfa_audit(user=user, action=AuditAction.CREATE, device=device, what="authenticator set up")
    return device


@transaction.atomic
def mfa_recovery_codes_regenerate(*, user) -> list[str]:
    """New single-use recovery codes; the old ones stop working. Shown once, stored as is."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=_RECOVERY_CODES_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(MFA_RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    _mfa_audit(user=user, action=AuditAction.CREATE, device=device, what="recovery codes issued")
    return codes


def mfa_verify(*, user, code: str) -> Device | None:
    """The device that accepts ``code`` (an authenticator code or a recovery code), or None.

    django-otp throttles each device after failures, and a recovery code is spent on use.
    """
    code = code.strip().replace(" ", "").replace("-", "").lower()
    authenticator = selectors.mfa_authenticator_for(user=user)
    if code.isdigit() and authenticator is not None:
        return otp_verify_token(user, authenticator.persistent_id, code)
    recovery = selectors.mfa_recovery_device_for(user=user)
    if recovery is None:
        return None
    with transaction.atomic():
        device = otp_verify_token(user, recovery.persistent_id, code)
        if device is not None:
            left = selectors.mfa_recovery_codes_left(user=user)
            _mfa_audit(
                user=user,
                action=AuditAction.UPDATE,
                device=device,
                what=f"recovery code used, {left} left",
            )
    return device


def _mfa_devices_delete(*, user, what: str) -> None:
    for model in (TOTPDevice, StaticDevice):
        for device in model.objects.filter(user=user):
            _mfa_audit(user=user, action=AuditAction.DELETE, device=device, what=what)
            device.delete()


@transaction.atomic
def mfa_disable(*, user) -> None:
    """A client user turns off a second factor they chose; refused where it is required."""
    if selectors.mfa_required_for(user=user):
        raise ValidationError(
            "Two-factor sign-in is required for your account, so it cannot be turned off.",
            code="mfa_required",
        )
    _mfa_devices_delete(user=user, what="turned off by the user")


@transaction.atomic
def mfa_reset(*, user) -> None:
    """For a lost device: remove the user's second factor; they set up a new one at sign-in."""
    _mfa_devices_delete(user=user, what="reset by an administrator")


# --- Sign-in lockout ----------------------------------------------------------------------------


def signin_unlock(*, attempts) -> int:
    """Lift the lockouts of the given failed-sign-in records (django-axes ``AccessAttempt``)."""
    unlocked = 0
    with transaction.atomic():
        for attempt in attempts:
            audit_record(
                tenant=None,
                action=AuditAction.DELETE,
                instance=attempt,
                changes={
                    "username": [attempt.username, None],
                    "ip_address": [attempt.ip_address, None],
                    "failures_since_start": [attempt.failures_since_start, None],
                },
            )
            attempt.delete()
            unlocked += 1
    return unlocked


def user_timezone_set(*, user: User, timezone: str) -> User:
    """A staff member's own zone for the pages (empty: UTC); clients follow their tenant's."""
    if not user.msp_role:
        raise ValidationError(
            {"timezone": "Client users see times in their organisation's time zone."}
        )
    if timezone:
        validate_timezone(timezone)
    return audited_update(tenant=None, instance=user, data={"timezone": timezone}, validate=False)
