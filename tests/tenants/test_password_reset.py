"""Password reset by email, for everyone: Django's views with the portal's pages."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from tenants.models import MspRole, TenantRole
from tests.factories import make_member, make_staff

NEW_PASSWORD = "a-fresh-and-long-passphrase"  # noqa: S105 (test fixture)


def reset_link(message) -> str:
    return re.search(r"https?://[^/\s]+(/portal/reset/\S+/)", message.body).group(1)


@pytest.fixture
def member(tenant_a):
    return make_member(tenant_a, TenantRole.MEMBER, username="acme-member")


@pytest.mark.parametrize("who", ["client", "staff"])
def test_a_reset_email_is_sent_and_its_link_sets_a_new_password(client, tenant_a, who):
    if who == "client":
        user = make_member(tenant_a, TenantRole.MEMBER, username="acme-member")
    else:
        user = make_staff(tenant_a, role=MspRole.ENGINEER, username="eng")
    assert "Forgotten your password?" in client.get(reverse("portal:login")).content.decode()

    sent = client.post(reverse("portal:password-reset"), {"email": user.email.upper()})
    assert sent.status_code == 302
    assert sent["Location"] == reverse("portal:password-reset-sent")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [user.email]
    assert message.subject == "Reset your Groundwork password"

    form_page = client.get(reset_link(message), follow=True)
    assert form_page.status_code == 200
    assert "Choose a new password" in form_page.content.decode()
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert done.status_code == 302
    assert done["Location"] == reverse("portal:password-reset-complete")

    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    signed_in = client.post(
        reverse("portal:login"), {"username": user.username, "password": NEW_PASSWORD}
    )
    assert signed_in.status_code == 302
    # The link works once.
    again = client.get(reset_link(message), follow=True)
    assert "This link no longer works" in again.content.decode()


def test_an_unknown_address_gets_the_same_answer_and_no_email(client, member):
    response = client.post(reverse("portal:password-reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:password-reset-sent")
    assert mail.outbox == []


def test_the_admin_sign_in_page_links_to_the_reset(client, db):
    page = client.get("/admin/login/").content.decode()
    assert 'href="/admin/password_reset/"' in page
    assert client.get("/admin/password_reset/")["Location"] == reverse("portal:password-reset")


def test_a_reset_does_not_skip_the_second_factor(client, tenant_a):
    staff = make_staff(tenant_a, role=MspRole.ENGINEER, username="eng")
    client.post(reverse("portal:password-reset"), {"email": staff.email})
    form_page = client.get(reset_link(mail.outbox[0]), follow=True)
    client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    client.post(reverse("portal:login"), {"username": staff.username, "password": NEW_PASSWORD})
    assert client.get("/admin/")["Location"].startswith(reverse("portal:mfa-verify"))
