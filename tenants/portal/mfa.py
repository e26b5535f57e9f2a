"""Two-factor sign-in pages: set up an authenticator app, verify at sign-in, recovery codes.

django-otp checks the codes and segno draws the QR code; the services do the writing. Until a
user who needs a second factor has given one, ``SecondFactorMiddleware`` lets them reach only
``verify`` and ``setup`` (and sign-out), from the portal's sign-in and the admin's alike.
"""

from __future__ import annotations

from base64 import b32encode
from urllib.parse import urlencode

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice

from tenants import selectors, services
from tenants.portal.forms import SecondFactorCodeForm, SetupCodeForm


def _next_url(request) -> str:
    """Where to go once verified: the page asked for, if it is on this site."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _with_next(view_name: str, next_url: str) -> str:
    return f"{reverse(view_name)}?{urlencode({'next': next_url})}"


def _grouped(secret: str) -> str:
    """'ABCDEFGH…' -> 'ABCD EFGH …', for typing into an app by hand."""
    return " ".join(secret[index : index + 4] for index in range(0, len(secret), 4))


@never_cache
@login_required
def verify(request):
    """The second step of every sign-in for a user who has a second factor."""
    user, next_url = request.user, _next_url(request)
    if user.is_verified():
        return redirect(next_url)
    if selectors.mfa_authenticator_for(user=user) is None:
        return redirect(_with_next("portal:mfa-setup", next_url))
    form = SecondFactorCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = services.mfa_verify(user=user, code=form.cleaned_data["code"])
        if device is None:
            form.add_error(
                "code",
                "That code was not accepted. After several wrong codes, each new try must "
                "wait a little longer.",
            )
        else:
            otp_login(request, device)
            if isinstance(device, StaticDevice):
                left = selectors.mfa_recovery_codes_left(user=user)
                messages.warning(
                    request,
                    f"You signed in with a recovery code; {left} left. Each works once: "
                    "make new ones under Two-factor sign-in.",
                )
            return redirect(next_url)
    return render(request, "portal/mfa_verify.html", {"form": form, "next": next_url})


@never_cache
@login_required
def setup(request):
    """Set up an authenticator app: scan the QR code, confirm a code, keep the recovery codes."""
    user, next_url = request.user, _next_url(request)
    if selectors.mfa_authenticator_for(user=user) is not None and not user.is_verified():
        # Replacing an authenticator takes the current one: a password alone must not do it.
        return redirect(_with_next("portal:mfa-verify", next_url))
    device = services.mfa_enrolment_start(user=user)
    form = SetupCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = services.mfa_enrolment_confirm(
                user=user, device=device, code=form.cleaned_data["code"]
            )
        except ValidationError as error:
            form.add_error("code", error.message_dict.get("code", error.messages))
        else:
            device.refresh_from_db()
            otp_login(request, device)
            # Rendered, not redirected: the codes never enter a URL, session or message.
            return render(
                request,
                "portal/mfa_recovery_codes.html",
                {"codes": codes, "next": next_url, "first_time": True},
            )
    secret = b32encode(device.bin_key).decode()
    return render(
        request,
        "portal/mfa_setup.html",
        {
            "form": form,
            "next": next_url,
            "qr_svg": segno.make(device.config_url, error="m").svg_inline(
                scale=4, border=2, title="QR code for your authenticator app"
            ),
            "secret": _grouped(secret),
            "required": selectors.mfa_required_for(user=user),
        },
    )


@never_cache
@login_required
def security(request):
    """The signed-in user's second factor: its state, new recovery codes, turning it off."""
    user = request.user
    return render(
        request,
        "portal/mfa_security.html",
        {
            "authenticator": selectors.mfa_authenticator_for(user=user),
            "codes_left": selectors.mfa_recovery_codes_left(user=user),
            "required": selectors.mfa_required_for(user=user),
        },
    )


@never_cache
@login_required
@require_POST
def recovery_codes(request):
    user = request.user
    if selectors.mfa_authenticator_for(user=user) is None:
        return redirect("portal:mfa")
    codes = services.mfa_recovery_codes_regenerate(user=user)
    return render(
        request,
        "portal/mfa_recovery_codes.html",
        {"codes": codes, "next": reverse("portal:mfa"), "first_time": False},
    )


@login_required
@require_POST
def disable(request):
    try:
        services.mfa_disable(user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Two-factor sign-in is off for your account.")
    return redirect("portal:mfa")
