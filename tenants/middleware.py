from __future__ import annotations

import zoneinfo
from contextlib import ExitStack
from urllib.parse import urlencode

from django.contrib.auth.models import AnonymousUser
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from tenants.audit import actor_for_user, audit_actor
from tenants.scoping import tenant_scope
from tenants.selectors import mfa_needed_by, tenant_ids_visible_to, viewer_timezone_name

# What a user may reach between their password and their second factor.
SECOND_FACTOR_STEPS = frozenset(
    {
        "portal:mfa-verify",
        "portal:mfa-setup",
        "portal:logout",
        "admin:logout",
        "portal:password-reset",
        "portal:password-reset-sent",
        "portal:password-reset-confirm",
        "portal:password-reset-complete",
        "healthz",
    }
)


def _source_for(path: str) -> str:
    if path.startswith("/admin/"):
        return "admin"
    if path.startswith("/portal/"):
        return "portal"
    return "api"


class AuditContextMiddleware:
    """Sets the audit actor for the request: the session user, source and address."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        actor = actor_for_user(
            getattr(request, "user", None),
            source=_source_for(request.path),
            address=request.META.get("REMOTE_ADDR"),
        )
        with audit_actor(actor):
            return self.get_response(request)


class StaffAdminScopeMiddleware:
    """In the admin, MSP staff work within the tenants they may see (all, for msp_admin).

    The scope feeds the fail-closed managers and, on PostgreSQL, row-level security; the admin
    classes additionally filter tenant-bound rows to the same set.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        with ExitStack() as stack:
            if request.path.startswith("/admin/") and user is not None and user.is_authenticated:
                tenant_ids = tenant_ids_visible_to(user)
                if tenant_ids:
                    stack.enter_context(tenant_scope(*tenant_ids))
            return self.get_response(request)


class SecondFactorMiddleware:
    """A user who needs a second factor reaches nothing else until this session has given it.

    Pages redirect to the verification step (which sends a user without a device to set one
    up); the API treats such a session as no sign-in at all. Bearer tokens are a credential of
    their own and work as before. Runs after django-otp's OTPMiddleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        if request.resolver_match.view_name in SECOND_FACTOR_STEPS:
            return None
        if not mfa_needed_by(user=user):
            return None
        if request.path.startswith("/api/"):
            request.user = AnonymousUser()
            return None
        query = urlencode({"next": request.get_full_path()})
        return redirect(f"{reverse('portal:mfa-verify')}?{query}")


class ViewerTimezoneMiddleware:
    """Pages show times in the viewer's zone: a client's tenant's, a staff member's own.

    The API is left alone: it answers in UTC whoever asks.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if request.path.startswith("/api/") or user is None or not user.is_authenticated:
            return self.get_response(request)
        timezone.activate(zoneinfo.ZoneInfo(viewer_timezone_name(user)))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
