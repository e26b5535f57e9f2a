"""Sign-in lockout (django-axes): per username and address, per address, cool-off, unlock."""

from __future__ import annotations

import datetime

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from tenants.models import AuditAction, AuditEvent, MspRole, TenantRole
from tests.factories import PASSWORD, login_verified, make_member, make_staff

PORTAL_LOGIN = "/portal/login/"
ADMIN_LOGIN = "/admin/login/"


def sign_in(client, path: str, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail(client, path: str, username: str, times: int, address: str = "10.0.0.1") -> None:
    for _ in range(times):
        sign_in(client, path, username, "wrong-password", address)


@pytest.fixture
def member(tenant_a):
    return make_member(tenant_a, TenantRole.MEMBER, username="acme-member")


@pytest.fixture
def engineer(tenant_a):
    return make_staff(tenant_a, role=MspRole.ENGINEER, username="eng")


def test_thirty_wrong_passwords_lock_the_portal_sign_in_even_for_the_right_one(client, member):
    for _ in range(30):
        response = sign_in(client, PORTAL_LOGIN, member.username, "wrong-password")
        assert response.status_code in (200, 429)
    response = sign_in(client, PORTAL_LOGIN, member.username, PASSWORD)

    assert response.status_code == 429
    assert "Sign-in is locked for now" in response.content.decode()
    assert "Try again in 15 minutes" in response.content.decode()
    assert not signed_in(client)


def test_thirty_wrong_passwords_lock_the_admin_sign_in_even_for_the_right_one(client, engineer):
    fail(client, ADMIN_LOGIN, engineer.username, 30)
    response = sign_in(client, ADMIN_LOGIN, engineer.username, PASSWORD)

    assert response.status_code == 429
    assert "Sign-in is locked for now" in response.content.decode()
    assert not signed_in(client)


def test_the_lock_starts_at_the_fifth_failure(client, member):
    fail(client, PORTAL_LOGIN, member.username, 4)
    fourth_then_right = sign_in(client, PORTAL_LOGIN, member.username, PASSWORD)
    assert fourth_then_right.status_code == 302
    assert signed_in(client)

    client.logout()
    fail(client, PORTAL_LOGIN, member.username, 4)
    fifth = sign_in(client, PORTAL_LOGIN, member.username, "wrong-password")
    assert fifth.status_code == 429


def test_a_lock_holds_that_username_from_that_address_only(client, member, tenant_a):
    other = make_member(tenant_a, TenantRole.VIEWER, username="acme-other")
    fail(client, PORTAL_LOGIN, member.username, 5, address="10.0.0.1")

    assert sign_in(client, PORTAL_LOGIN, member.username, PASSWORD, "10.0.0.2").status_code == 302
    client.logout()
    assert sign_in(client, PORTAL_LOGIN, other.username, PASSWORD, "10.0.0.1").status_code == 302
    client.logout()
    assert sign_in(client, PORTAL_LOGIN, member.username, PASSWORD, "10.0.0.1").status_code == 429


def test_an_address_trying_many_usernames_is_locked(client, member, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 12
    for index in range(4):  # three failures each: no username reaches its own limit
        fail(client, PORTAL_LOGIN, f"guess-{index}", 3, address="10.0.0.9")

    response = sign_in(client, PORTAL_LOGIN, member.username, PASSWORD, "10.0.0.9")
    assert response.status_code == 429
    assert not signed_in(client)
    assert sign_in(client, PORTAL_LOGIN, member.username, PASSWORD, "10.0.0.8").status_code == 302


def test_signing_in_clears_ones_own_failures_not_the_addresss(client, member, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 8
    fail(client, PORTAL_LOGIN, "someone-else", 4)
    fail(client, PORTAL_LOGIN, member.username, 3)
    assert sign_in(client, PORTAL_LOGIN, member.username, PASSWORD).status_code == 302

    assert not AccessAttempt.objects.filter(username=member.username).exists()
    assert AccessAttempt.objects.get(username="someone-else").failures_since_start == 4
    client.logout()
    # The address's record still counts: one more failure of anybody reaches its limit of 8.
    fail(client, PORTAL_LOGIN, "another-guess", 4)
    assert sign_in(client, PORTAL_LOGIN, member.username, PASSWORD).status_code == 429


def test_the_lock_lifts_after_the_cool_off(client, member):
    fail(client, PORTAL_LOGIN, member.username, 5)
    assert sign_in(client, PORTAL_LOGIN, member.username, PASSWORD).status_code == 429

    AccessAttempt.objects.update(attempt_time=timezone.now() - datetime.timedelta(minutes=16))
    assert sign_in(client, PORTAL_LOGIN, member.username, PASSWORD).status_code == 302


def test_msp_admin_unlocks_in_the_admin_and_it_is_audited(client, member):
    locked = client.__class__()
    fail(locked, PORTAL_LOGIN, member.username, 5)
    attempt = AccessAttempt.objects.get(username=member.username)

    login_verified(client, make_staff(role=MspRole.ADMIN, username="boss"))
    changelist = reverse("admin:axes_accessattempt_changelist")
    assert member.username in client.get(changelist).content.decode()
    response = client.post(
        changelist, {"action": "unlock", "_selected_action": [attempt.pk]}, follow=True
    )

    assert "Unlocked 1 record(s)." in response.content.decode()
    assert not AccessAttempt.objects.exists()
    event = AuditEvent.objects.get(object_type="axes.AccessAttempt")
    assert event.action == AuditAction.DELETE
    assert event.changes["username"] == [member.username, None]
    assert sign_in(locked, PORTAL_LOGIN, member.username, PASSWORD).status_code == 302


def test_only_msp_admin_sees_failed_sign_ins(client, engineer):
    login_verified(client, engineer)
    assert client.get(reverse("admin:axes_accessattempt_changelist")).status_code == 403


def test_axes_reset_command_unlocks(client, member):
    fail(client, PORTAL_LOGIN, member.username, 5)
    call_command("axes_reset", verbosity=0)
    assert sign_in(client, PORTAL_LOGIN, member.username, PASSWORD).status_code == 302


def test_a_locked_users_api_token_still_works(client, admin_a, tenant_a):
    fail(client, PORTAL_LOGIN, admin_a.user.username, 30)
    assert sign_in(client, PORTAL_LOGIN, admin_a.user.username, PASSWORD).status_code == 429

    response = admin_a.client.get(f"/api/v1/tenants/{tenant_a.slug}/members/")
    assert response.status_code == 200


def test_the_sign_in_pages_still_load(client, db):
    assert client.get(PORTAL_LOGIN).status_code == 200
    assert client.get(ADMIN_LOGIN).status_code == 200
