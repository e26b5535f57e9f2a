"""Two-factor sign-in (django-otp): staff always, clients when their tenant requires it."""

from __future__ import annotations

import time
from base64 import b32encode

import pytest
from django.contrib.admin import site as admin_site
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants import services
from tenants.models import AuditEvent, MspRole, TenantRole
from tests.factories import PASSWORD, login_verified, make_member, make_staff

VERIFY = reverse("portal:mfa-verify")
SETUP = reverse("portal:mfa-setup")


def code_for(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows (django-otp's own TOTP), optionally for a later step.

    A code is accepted once: a second sign-in in the same 30 s uses the next step's code,
    which the device's tolerance of one step accepts.
    """
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def with_authenticator(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


@pytest.fixture
def engineer(tenant_a):
    return make_staff(tenant_a, role=MspRole.ENGINEER, username="eng")


@pytest.fixture
def member(tenant_a):
    return make_member(tenant_a, TenantRole.MEMBER, username="acme-member")


def password_sign_in(client, user, path: str = "/portal/login/", next_url: str = ""):
    data = {"username": user.username, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    response = client.post(path, data)
    assert response.status_code == 302, "the password step itself succeeds"
    return response


# --- Staff cannot open anything without a verified second factor -------------------------------


@pytest.mark.parametrize(
    "path",
    ["/admin/", "/admin/tenants/tenant/", "/portal/", "/portal/acme/", "/portal/acme/team/"],
)
def test_staff_with_only_a_password_reach_no_admin_or_portal_page(client, engineer, path):
    with_authenticator(engineer)
    client.force_login(engineer)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY)


def test_staff_signing_in_at_the_admin_are_asked_for_their_code_then_let_in(client, engineer):
    device = with_authenticator(engineer)
    login = password_sign_in(client, engineer, "/admin/login/", next_url="/admin/")
    step = client.get(login["Location"])
    assert step.status_code == 302
    assert step["Location"].startswith(VERIFY)
    assert "Enter your two-factor code" in client.get(step["Location"]).content.decode()

    verified = client.post(VERIFY, {"code": code_for(device), "next": "/admin/"})

    assert verified.status_code == 302
    assert verified["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/portal/acme/").status_code == 200


def test_a_wrong_code_keeps_the_door_shut(client, engineer):
    device = with_authenticator(engineer)
    client.force_login(engineer)
    wrong = f"{(int(code_for(device)) + 1) % 1_000_000:06d}"
    response = client.post(VERIFY, {"code": wrong})
    assert response.status_code == 200
    assert "That code was not accepted." in response.content.decode()
    assert client.get("/admin/").status_code == 302


def test_staff_without_a_device_are_sent_to_set_one_up(client, engineer):
    client.force_login(engineer)
    to_verify = client.get("/portal/")
    to_setup = client.get(to_verify["Location"])
    assert to_setup.status_code == 302
    assert to_setup["Location"].startswith(SETUP)

    page = client.get(to_setup["Location"])
    body = page.content.decode()
    assert page.status_code == 200
    assert "<svg" in body  # the QR code, inline
    pending = TOTPDevice.objects.get(user=engineer, confirmed=False)
    assert client.get("/admin/").status_code == 302, "an unconfirmed device verifies nothing"

    done = client.post(SETUP, {"code": code_for(pending), "next": "/admin/"})

    assert done.status_code == 200
    codes = done.context["codes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(code in done.content.decode() for code in codes)
    assert TOTPDevice.objects.get(user=engineer).confirmed
    assert client.get("/admin/").status_code == 200
    assert AuditEvent.objects.filter(object_type="otp_totp.TOTPDevice").exists()


def test_the_setup_page_shows_the_secret_the_app_needs(client, engineer):
    client.force_login(engineer)
    shown = client.get(SETUP).context["secret"]
    device = TOTPDevice.objects.get(user=engineer)
    assert shown.replace(" ", "") == b32encode(device.bin_key).decode()
    assert client.get(SETUP).context["secret"] == shown, "the same secret on reload"


def test_a_password_alone_cannot_replace_an_existing_authenticator(client, engineer):
    with_authenticator(engineer)
    client.force_login(engineer)
    response = client.get(SETUP)
    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY)
    assert not TOTPDevice.objects.filter(user=engineer, confirmed=False).exists()


def test_the_admin_site_itself_refuses_an_unverified_staff_member(engineer):
    request = RequestFactory().get("/admin/")
    request.user = engineer
    engineer.is_verified = lambda: False
    assert not admin_site.has_permission(request)
    engineer.is_verified = lambda: True
    assert admin_site.has_permission(request)


def test_a_recovery_code_works_once(client, engineer):
    with_authenticator(engineer)
    codes = services.mfa_recovery_codes_regenerate(user=engineer)

    client.force_login(engineer)
    first = client.post(VERIFY, {"code": codes[0].upper(), "next": "/admin/"})
    assert first.status_code == 302
    assert first["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert StaticToken.objects.filter(device__user=engineer).count() == 9

    client.logout()
    client.force_login(engineer)
    again = client.post(VERIFY, {"code": codes[0], "next": "/admin/"})
    assert again.status_code == 200
    assert client.get("/admin/").status_code == 302


def test_new_recovery_codes_replace_the_old_ones(client, engineer):
    old = services.mfa_recovery_codes_regenerate(user=engineer)
    login_verified(client, engineer)
    response = client.post(reverse("portal:mfa-recovery-codes"))
    new = response.context["codes"]
    assert set(new).isdisjoint(old)
    assert set(StaticToken.objects.values_list("token", flat=True)) == set(new)


def test_verify_never_redirects_off_site(client, engineer):
    device = with_authenticator(engineer)
    client.force_login(engineer)
    response = client.post(VERIFY, {"code": code_for(device), "next": "https://evil.example/"})
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:home")


def test_staff_cannot_turn_their_second_factor_off(client, engineer):
    login_verified(client, engineer)
    client.post(reverse("portal:mfa-disable"))
    assert TOTPDevice.objects.filter(user=engineer).exists()


def test_msp_admin_resets_a_lost_device_and_it_is_audited(client, engineer):
    with_authenticator(engineer)
    services.mfa_recovery_codes_regenerate(user=engineer)
    login_verified(client, make_staff(role=MspRole.ADMIN, username="boss"))
    client.post(
        reverse("admin:tenants_user_changelist"),
        {"action": "reset_two_factor", "_selected_action": [engineer.pk]},
    )
    assert not TOTPDevice.objects.filter(user=engineer).exists()
    assert not StaticToken.objects.filter(device__user=engineer).exists()
    assert (
        AuditEvent.objects.filter(
            action="delete", changes__two_factor=[None, "reset by an administrator"]
        ).count()
        == 2
    )


# --- The API: bearer tokens are their own credential ------------------------------------------


def test_an_unverified_staff_session_gets_nothing_from_the_api(client, engineer, tenant_a):
    client.force_login(engineer)
    response = client.get(f"/api/v1/tenants/{tenant_a.slug}/members/")
    assert response.status_code in (401, 403)
    assert "results" not in response.json()


def test_staff_bearer_tokens_work_without_a_second_factor(engineer_a, tenant_a):
    response = engineer_a.client.get(f"/api/v1/tenants/{tenant_a.slug}/members/")
    assert response.status_code == 200


# --- Tenants that require it ----------------------------------------------------------------


def test_clients_sign_in_with_a_password_while_their_tenant_does_not_require_it(client, member):
    password_sign_in(client, member)
    assert client.get("/portal/acme/").status_code == 200


def test_a_tenant_admin_requires_it_and_their_users_are_sent_to_set_it_up(
    client, admin_a, member, tenant_a, tenant_b
):
    other_tenant_user = make_member(tenant_b, TenantRole.MEMBER, username="borealis-member")
    member_client = client.__class__()
    member_client.force_login(member)
    assert member_client.get("/portal/acme/").status_code == 200

    client.force_login(admin_a.user)
    response = client.post(
        reverse("portal:team-two-factor", args=[tenant_a.slug]), {"require_mfa": "on"}
    )
    assert response.status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.require_mfa
    assert AuditEvent.objects.filter(
        object_type="tenants.Tenant", changes__require_mfa=[False, True]
    ).exists()

    for signed_in in (client, member_client):
        to_verify = signed_in.get("/portal/acme/")
        assert to_verify["Location"].startswith(VERIFY)
        assert signed_in.get(to_verify["Location"])["Location"].startswith(SETUP)

    elsewhere = client.__class__()
    elsewhere.force_login(other_tenant_user)
    assert elsewhere.get("/portal/borealis/").status_code == 200


def test_only_tenant_admins_set_the_requirement(client, member, engineer, tenant_a):
    path = reverse("portal:team-two-factor", args=[tenant_a.slug])
    client.force_login(member)
    assert client.post(path, {"require_mfa": "on"}).status_code == 403
    login_verified(client, engineer)
    assert client.post(path, {"require_mfa": "on"}).status_code == 403
    tenant_a.refresh_from_db()
    assert not tenant_a.require_mfa


def test_a_client_may_turn_off_a_second_factor_they_chose_but_not_a_required_one(
    client, member, tenant_a
):
    login_verified(client, member)
    client.post(reverse("portal:mfa-disable"))
    assert not TOTPDevice.objects.filter(user=member).exists()

    services.tenant_mfa_requirement_set(tenant=tenant_a, required=True)
    login_verified(client, member)
    client.post(reverse("portal:mfa-disable"))
    assert TOTPDevice.objects.filter(user=member).exists()


def test_a_client_who_chose_a_second_factor_is_asked_for_it(client, member):
    with_authenticator(member)
    password_sign_in(client, member)
    assert client.get("/portal/acme/")["Location"].startswith(VERIFY)


def test_the_team_page_shows_who_has_it(client, admin_a, member, tenant_a):
    with_authenticator(member)
    client.force_login(admin_a.user)
    response = client.get(reverse("portal:team", args=[tenant_a.slug]))
    rows = {m.user.username: m.has_mfa for m in response.context["members"]}
    assert rows == {admin_a.user.username: False, member.username: True}


def test_anonymous_visitors_still_get_the_sign_in_page(client, db):
    response = client.get(VERIFY)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))
    assert isinstance(client.get("/portal/login/").wsgi_request.user, AnonymousUser)


@pytest.mark.parametrize("slug", ["account", "password-reset", "reset"])
def test_the_sign_in_pages_words_cannot_be_tenant_slugs(db, slug):
    with pytest.raises(ValidationError):
        services.tenant_create(name=f"Tenant {slug}", slug=slug)
