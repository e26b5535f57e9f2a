"""The tenant portal shell: sign-in, overview, team and API tokens, for clients and MSP staff."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, reverse
from rest_framework.test import APIClient

from tenants import services
from tenants.models import (
    ApiToken,
    AuditEvent,
    Membership,
    MspRole,
    OnboardingStep,
    TenantRole,
    TenantStatus,
)
from tenants.portal import urls as portal_urls
from tenants.scoping import tenant_scope
from tests.factories import PASSWORD, TenantFactory, login_verified, make_member, make_staff

User = get_user_model()


def _url(name: str, tenant=None, **kwargs) -> str:
    if tenant is not None:
        kwargs["slug"] = tenant.slug
    return reverse(f"portal:{name}", kwargs=kwargs or None)


def _text(response) -> str:
    return response.content.decode()


def _api_members(token: str, tenant) -> int:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api.get(f"/api/v1/tenants/{tenant.slug}/members/")


@pytest.fixture
def member_a(tenant_a):
    return make_member(
        tenant_a, TenantRole.MEMBER, username="acme-member", first_name="Mo", last_name="Member"
    )


@pytest.fixture
def viewer_a(tenant_a):
    return make_member(tenant_a, TenantRole.VIEWER, username="acme-viewer")


@pytest.fixture
def admin_client(client, admin_a):
    client.force_login(admin_a.user)
    return client


@pytest.fixture
def onboarding_a(tenant_a, admin_a):
    """Tenant A in onboarding, with its checklist and the contract step done."""
    tenant = services.tenant_transition(tenant=tenant_a, to_status=TenantStatus.ONBOARDING)
    with tenant_scope(tenant.id):
        step = OnboardingStep.objects.get(key="contract_signed")
        services.onboarding_step_set_done(tenant=tenant, step=step, done=True, user=admin_a.user)
    return tenant


# --- Sign-in --------------------------------------------------------------------------------


def test_login_page_renders(client):
    response = client.get(_url("login"))
    assert response.status_code == 200
    text = _text(response)
    assert "Sign in to Groundwork" in text
    assert 'name="csrfmiddlewaretoken"' in text
    assert 'name="username"' in text
    assert 'autocomplete="current-password"' in text
    assert "portal/portal.css" in text


def test_login_with_user_redirects_to_their_tenant(client, admin_a, tenant_a):
    response = client.post(
        _url("login"), {"username": "acme-admin", "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[0] == (_url("home"), 302)
    assert response.redirect_chain[-1] == (_url("overview", tenant_a), 302)
    text = _text(response)
    assert "Acme Analytics" in text
    assert "Sign out" in text


def test_login_with_wrong_password_shows_error(client, admin_a):
    response = client.post(_url("login"), {"username": "acme-admin", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in _text(response)
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("name", ["home", "overview", "team", "tokens"])
def test_anonymous_users_are_sent_to_login(client, tenant_a, name):
    url = _url(name, tenant_a if name != "home" else None)
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(_url("login") + "?next=")


def test_logout_is_a_post_and_ends_the_session(admin_client, tenant_a):
    page = _text(admin_client.get(_url("overview", tenant_a)))
    assert f'action="{_url("logout")}"' in page
    response = admin_client.post(_url("logout"))
    assert response.status_code == 302
    assert response.url == _url("login")
    assert admin_client.get(_url("home")).status_code == 302


# --- Client admin: own tenant, nobody else's --------------------------------------------------


def test_client_home_redirects_to_own_overview(admin_client, tenant_a, tenant_b):
    response = admin_client.get(_url("home"))
    assert response.status_code == 302
    assert response.url == _url("overview", tenant_a)


def test_overview_shows_plan_onboarding_and_honest_placeholders(
    admin_client, onboarding_a, tenant_b
):
    response = admin_client.get(_url("overview", onboarding_a))
    assert response.status_code == 200
    text = _text(response)
    assert "Acme Analytics" in text
    assert "Onboarding" in text
    assert "badge--onboarding" in text
    # Service plan: tier, coverage, time zone and SLA targets from plan.sla_target().
    assert "Professional" in text
    assert "24x7" in text
    assert "UTC" in text
    sev1 = re.search(r"SEV1</span>.*?</tr>", text, re.S).group(0)
    assert "15 min" in sev1
    assert "4 h" in sev1
    sev4 = re.search(r"SEV4</span>.*?</tr>", text, re.S).group(0)
    assert "8 h" in sev4
    assert "5 d" in sev4
    # Checklist: one required step done, the rest open.
    assert "1 of 5</strong> required steps done" in text
    assert "Contract and service plan signed" in text
    assert "AI governance owner named" in text
    assert text.count("(done)") == 1
    assert text.count("(open)") == 5
    # Areas not built yet are not promised; built ones are in the navigation.
    assert "coming soon" not in text.lower()
    assert f"/portal/{onboarding_a.slug}/compliance/" in text
    assert f"/portal/{onboarding_a.slug}/recommendations/" in text
    assert f"/portal/{onboarding_a.slug}/estate/" in text
    assert f"/portal/{onboarding_a.slug}/incidents/" in text
    assert "Borealis" not in text
    # Not a staff view.
    assert "Read-only staff view" not in text


def test_overview_of_a_prospect_explains_the_missing_checklist(admin_client, tenant_a):
    text = _text(admin_client.get(_url("overview", tenant_a)))
    assert "The onboarding checklist is created when onboarding starts." in text


@pytest.mark.parametrize(
    ("name", "extra"),
    [("overview", {}), ("team", {}), ("tokens", {})],
)
def test_client_gets_the_same_404_for_foreign_and_missing_tenants(
    admin_client, tenant_b, admin_b, name, extra
):
    foreign = admin_client.get(_url(name, tenant_b, **extra))
    missing = admin_client.get(reverse(f"portal:{name}", kwargs={"slug": "no-such-tenant"}))
    assert foreign.status_code == missing.status_code == 404
    scrub = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    assert scrub.sub("", _text(foreign)) == scrub.sub("", _text(missing))
    assert "Not found" in _text(foreign)
    assert "Borealis" not in _text(foreign)


def test_client_cannot_reach_another_tenants_member_or_token_by_id(
    admin_client, tenant_a, tenant_b, admin_b
):
    foreign_membership = Membership.objects.get(user=admin_b.user)
    foreign_token = ApiToken.objects.get(user=admin_b.user)
    assert (
        admin_client.get(
            _url("member-edit", tenant_a, membership_id=foreign_membership.pk)
        ).status_code
        == 404
    )
    response = admin_client.post(
        _url("member-remove", tenant_a, membership_id=foreign_membership.pk)
    )
    assert response.status_code == 404
    response = admin_client.post(_url("token-revoke", tenant_a, token_id=foreign_token.pk))
    assert response.status_code == 404
    foreign_token.refresh_from_db()
    assert foreign_token.revoked_at is None
    assert Membership.objects.filter(pk=foreign_membership.pk).exists()


def test_team_lists_members_with_names_emails_and_roles(admin_client, tenant_a, member_a, admin_b):
    response = admin_client.get(_url("team", tenant_a))
    text = _text(response)
    assert "acme-admin" in text
    assert "acme-member" in text
    assert "Mo Member" in text
    assert "acme-member@example.com" in text
    assert "Tenant member" in text
    assert "Tenant admin" in text
    assert "Add a member" in text
    assert "borealis-admin" not in text


def test_tokens_page_lists_the_tenants_tokens(admin_client, admin_a, tenant_a, admin_b):
    token = ApiToken.objects.get(user=admin_a.user)
    services.token_revoke(token=token)
    text = _text(admin_client.get(_url("tokens", tenant_a)))
    assert token.prefix in text
    assert "Revoked" in text
    assert "read" in text
    assert "ingest" in text
    assert "Create a token" in text
    assert ApiToken.objects.get(user=admin_b.user).prefix not in text


# --- Client admin: writes ---------------------------------------------------------------------


def test_admin_adds_a_member_who_can_sign_in(admin_client, admin_a, tenant_a, client):
    response = admin_client.post(
        _url("team", tenant_a),
        {
            "username": "new-analyst",
            "email": "analyst@acme.example",
            "first_name": "Ana",
            "last_name": "Lyst",
            "role": TenantRole.VIEWER,
            "password": "a-long-unusual-passphrase",
        },
        follow=True,
    )
    assert response.redirect_chain == [(_url("team", tenant_a), 302)]
    text = _text(response)
    assert "Added new-analyst as Tenant viewer." in text
    assert "Ana Lyst" in text
    membership = Membership.objects.select_related("user").get(user__username="new-analyst")
    assert membership.tenant == tenant_a
    assert membership.role == TenantRole.VIEWER
    assert membership.user.check_password("a-long-unusual-passphrase")
    event = AuditEvent.objects.filter(object_type="tenants.Membership").first()
    assert event.source == "portal"
    assert event.actor_user == admin_a.user
    assert event.tenant == tenant_a


def test_admin_adds_a_member_without_password(admin_client, tenant_a):
    admin_client.post(_url("team", tenant_a), {"username": "no-pass", "role": "tenant_member"})
    user = User.objects.get(username="no-pass")
    assert not user.has_usable_password()


def test_admin_changes_a_role(admin_client, tenant_a, member_a):
    membership = Membership.objects.get(user=member_a)
    edit_url = _url("member-edit", tenant_a, membership_id=membership.pk)
    page = _text(admin_client.get(edit_url))
    assert "Change role" in page
    assert "Remove acme-member" in page
    response = admin_client.post(edit_url, {"role": TenantRole.ADMIN}, follow=True)
    assert response.redirect_chain == [(_url("team", tenant_a), 302)]
    assert "acme-member is now Tenant admin." in _text(response)
    membership.refresh_from_db()
    assert membership.role == TenantRole.ADMIN
    event = AuditEvent.objects.filter(action="update", object_type="tenants.Membership").get()
    assert event.changes == {"role": [TenantRole.MEMBER, TenantRole.ADMIN]}


def test_admin_removes_a_member(admin_client, tenant_a, member_a):
    membership = Membership.objects.get(user=member_a)
    _token, plaintext = services.token_issue(user=member_a, name="ci")
    response = admin_client.post(
        _url("member-remove", tenant_a, membership_id=membership.pk), follow=True
    )
    assert response.redirect_chain == [(_url("team", tenant_a), 302)]
    text = _text(response)
    assert "Removed acme-member" in text
    assert "Mo Member" not in text
    assert not Membership.objects.filter(pk=membership.pk).exists()
    member_a.refresh_from_db()
    assert not member_a.is_active
    assert _api_members(plaintext, tenant_a).status_code == 401


def test_remove_needs_a_post(admin_client, tenant_a, member_a):
    membership = Membership.objects.get(user=member_a)
    response = admin_client.get(_url("member-remove", tenant_a, membership_id=membership.pk))
    assert response.status_code == 405
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_admin_cannot_demote_or_remove_themselves(admin_client, admin_a, tenant_a):
    membership = Membership.objects.get(user=admin_a.user)
    edit_url = _url("member-edit", tenant_a, membership_id=membership.pk)
    response = admin_client.post(edit_url, {"role": TenantRole.VIEWER})
    assert response.status_code == 200
    assert "You cannot change your own role" in _text(response)
    response = admin_client.post(
        _url("member-remove", tenant_a, membership_id=membership.pk), follow=True
    )
    assert "You cannot remove yourself" in _text(response)
    membership.refresh_from_db()
    assert membership.role == TenantRole.ADMIN
    admin_a.user.refresh_from_db()
    assert admin_a.user.is_active


def test_admin_creates_a_token_shown_once_that_works_until_revoked(admin_client, admin_a, tenant_a):
    response = admin_client.post(
        _url("tokens", tenant_a),
        {"name": "Telemetry collector", "scopes": ["read", "ingest"], "expires_in_days": "30"},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    text = _text(response)
    match = re.search(r'value="(gw_[0-9a-f]+_[^"]+)"', text)
    assert match, "the plaintext token is on the result page"
    plaintext = match.group(1)
    assert "This is the only time the token is shown." in text

    token = ApiToken.objects.get(name="Telemetry collector")
    assert token.user == admin_a.user
    assert token.tenant == tenant_a
    assert token.created_by == admin_a.user
    assert token.scopes == ["read", "ingest"]
    assert token.expires_at is not None
    assert plaintext.startswith(f"gw_{token.prefix}_")
    assert plaintext not in token.secret_hash
    # Not kept anywhere the browser could get it back from.
    assert plaintext not in str(dict(admin_client.session.items()))
    listing = _text(admin_client.get(_url("tokens", tenant_a)))
    assert plaintext not in listing
    assert token.prefix in listing
    assert "Telemetry collector" in listing

    api_response = _api_members(plaintext, tenant_a)
    assert api_response.status_code == 200
    assert "acme-admin" in api_response.content.decode()

    revoke_url = _url("token-revoke", tenant_a, token_id=token.pk)
    assert "Revoke token “Telemetry collector”?" in _text(admin_client.get(revoke_url))
    response = admin_client.post(revoke_url, follow=True)
    assert response.redirect_chain == [(_url("tokens", tenant_a), 302)]
    assert "Revoked token “Telemetry collector”" in _text(response)
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert _api_members(plaintext, tenant_a).status_code == 401
    assert AuditEvent.objects.filter(action="revoke", object_id=str(token.pk)).exists()


def test_new_token_defaults_to_no_expiry(admin_client, tenant_a):
    admin_client.post(_url("tokens", tenant_a), {"name": "forever", "scopes": ["read"]})
    token = ApiToken.objects.get(name="forever")
    assert token.expires_at is None
    assert token.scopes == ["read"]


# --- Invalid input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"username": "BOREALIS-admin", "role": "tenant_member"},
            "username",
            "A user with that username already exists.",
        ),
        ({"username": "fresh", "role": "superuser"}, "role", "Select a valid choice."),
        ({"username": "bad name!", "role": "tenant_member"}, "username", "Enter a valid username"),
        ({"username": "", "role": "tenant_member"}, "username", "This field is required."),
        (
            {"username": "fresh", "role": "tenant_member", "password": "Zq9!"},
            "password",
            "too short",
        ),
    ],
)
def test_invalid_member_input_shows_errors_and_writes_nothing(
    admin_client, tenant_a, admin_b, data, field, message
):
    users_before = User.objects.count()
    events_before = AuditEvent.objects.count()
    response = admin_client.post(_url("team", tenant_a), data)
    assert response.status_code == 200
    text = _text(response)
    assert "Nothing was saved." in text
    errors = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', text, re.S)
    assert errors, f"an error is shown next to {field}"
    assert message in errors.group(1)
    assert User.objects.count() == users_before
    assert AuditEvent.objects.count() == events_before
    # The form keeps what was typed, except the password.
    if data["username"]:
        assert f'value="{data["username"]}"' in text


def test_bad_role_on_role_change_writes_nothing(admin_client, tenant_a, member_a):
    membership = Membership.objects.get(user=member_a)
    response = admin_client.post(
        _url("member-edit", tenant_a, membership_id=membership.pk), {"role": "msp_admin"}
    )
    assert response.status_code == 200
    assert "Select a valid choice." in _text(response)
    membership.refresh_from_db()
    assert membership.role == TenantRole.MEMBER


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "scopes": ["read"]}, "name", "This field is required."),
        ({"name": "no scopes"}, "scopes", "This field is required."),
        ({"name": "bad scope", "scopes": ["admin"]}, "scopes", "Select a valid choice."),
        ({"name": "too long", "scopes": ["read"], "expires_in_days": "0"}, "expires_in_days", ""),
    ],
)
def test_invalid_token_input_shows_errors_and_writes_nothing(
    admin_client, tenant_a, data, field, message
):
    tokens_before = ApiToken.objects.count()
    response = admin_client.post(_url("tokens", tenant_a), data)
    assert response.status_code == 200
    text = _text(response)
    errors = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', text, re.S)
    assert errors, f"an error is shown next to {field}"
    assert message in errors.group(1)
    assert "gw_" not in text
    assert ApiToken.objects.count() == tokens_before


# --- Read-only client roles -------------------------------------------------------------------


@pytest.fixture(params=["member", "viewer"])
def reader_a(request, member_a, viewer_a):
    return member_a if request.param == "member" else viewer_a


def test_members_and_viewers_see_team_and_tokens_read_only(client, reader_a, tenant_a, admin_a):
    client.force_login(reader_a)
    team = _text(client.get(_url("team", tenant_a)))
    assert "acme-admin" in team
    assert "acme-member" in team
    assert "only tenant admins add, change or remove members" in team
    assert "Add a member" not in team
    assert "Manage" not in team
    tokens = _text(client.get(_url("tokens", tenant_a)))
    assert ApiToken.objects.get(user=admin_a.user).prefix in tokens
    assert "only tenant admins create or revoke API tokens" in tokens
    assert "Create a token" not in tokens
    assert "Revoke" not in tokens


def test_members_and_viewers_cannot_write(client, reader_a, tenant_a, admin_a):
    client.force_login(reader_a)
    admin_membership = Membership.objects.get(user=admin_a.user)
    admin_token = ApiToken.objects.get(user=admin_a.user)
    counts = (Membership.objects.count(), ApiToken.objects.count(), AuditEvent.objects.count())
    attempts = [
        (_url("team", tenant_a), {"username": "sneaky", "role": "tenant_admin"}),
        (
            _url("member-edit", tenant_a, membership_id=admin_membership.pk),
            {"role": "tenant_viewer"},
        ),
        (_url("member-remove", tenant_a, membership_id=admin_membership.pk), {}),
        (_url("tokens", tenant_a), {"name": "mine", "scopes": ["read"]}),
        (_url("token-revoke", tenant_a, token_id=admin_token.pk), {}),
        (_url("overview", tenant_a), {}),
    ]
    for url, data in attempts:
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert "Nothing was changed." in _text(response)
    for url in (
        _url("member-edit", tenant_a, membership_id=admin_membership.pk),
        _url("token-revoke", tenant_a, token_id=admin_token.pk),
    ):
        assert client.get(url).status_code == 403
    assert (
        Membership.objects.count(),
        ApiToken.objects.count(),
        AuditEvent.objects.count(),
    ) == counts
    admin_membership.refresh_from_db()
    assert admin_membership.role == TenantRole.ADMIN
    assert not User.objects.filter(username="sneaky").exists()


def test_suspended_tenant_is_read_only_for_its_admin(admin_client, tenant_a, member_a):
    services.tenant_transition(tenant=tenant_a, to_status=TenantStatus.ONBOARDING)
    with tenant_scope(tenant_a.id):
        for step in OnboardingStep.objects.all():
            services.onboarding_step_set_done(tenant=tenant_a, step=step, done=True)
    services.tenant_transition(tenant=tenant_a, to_status=TenantStatus.ACTIVE)
    services.tenant_transition(tenant=tenant_a, to_status=TenantStatus.SUSPENDED)
    team = _text(admin_client.get(_url("team", tenant_a)))
    assert "This tenant is suspended." in team
    assert "Add a member" not in team
    response = admin_client.post(
        _url("team", tenant_a), {"username": "x1", "role": "tenant_member"}
    )
    assert response.status_code == 403
    assert "suspended" in _text(response)
    assert not User.objects.filter(username="x1").exists()


def test_offboarded_client_has_no_tenant_to_open(client, tenant_a, admin_a):
    services.tenant_transition(tenant=tenant_a, to_status=TenantStatus.OFFBOARDED)
    client.force_login(admin_a.user)
    response = client.get(_url("home"))
    assert response.status_code == 200
    assert "Your account is not linked to a tenant" in _text(response)
    assert client.get(_url("overview", tenant_a)).status_code == 404


# --- MSP staff: read-only views of the tenants they can reach ---------------------------------


def test_engineer_home_lists_only_assigned_tenants(client, engineer_a, tenant_a, tenant_b):
    login_verified(client, engineer_a.user)
    response = client.get(_url("home"))
    assert response.status_code == 200
    text = _text(response)
    assert "Acme Analytics" in text
    assert _url("overview", tenant_a) in text
    assert "Prospect" in text
    assert "Borealis" not in text


def test_engineer_opens_assigned_tenant_read_only(client, engineer_a, tenant_a, member_a):
    login_verified(client, engineer_a.user)
    for name in ("overview", "team", "tokens"):
        response = client.get(_url(name, tenant_a))
        assert response.status_code == 200
        text = _text(response)
        assert "Read-only staff view." in text
        assert "MSP engineer" in text
    team = _text(client.get(_url("team", tenant_a)))
    assert "acme-member" in team
    assert "Add a member" not in team
    assert "Manage" not in team
    tokens = _text(client.get(_url("tokens", tenant_a)))
    assert "Create a token" not in tokens


def test_staff_posts_are_forbidden_even_for_msp_admin(
    client, engineer_a, msp_admin, tenant_a, member_a
):
    membership = Membership.objects.get(user=member_a)
    _token, _plaintext = services.token_issue(user=member_a, name="member-token")
    token = ApiToken.objects.get(name="member-token")
    for staff in (engineer_a.user, msp_admin.user):
        login_verified(client, staff)
        counts = (Membership.objects.count(), ApiToken.objects.count())
        attempts = [
            (_url("team", tenant_a), {"username": "staff-made", "role": "tenant_admin"}),
            (_url("member-edit", tenant_a, membership_id=membership.pk), {"role": "tenant_admin"}),
            (_url("member-remove", tenant_a, membership_id=membership.pk), {}),
            (_url("tokens", tenant_a), {"name": "staff", "scopes": ["read"]}),
            (_url("token-revoke", tenant_a, token_id=token.pk), {}),
        ]
        for url, data in attempts:
            response = client.post(url, data)
            assert response.status_code == 403, (staff, url)
            assert "MSP staff see client portals read-only" in _text(response)
        assert (Membership.objects.count(), ApiToken.objects.count()) == counts
    membership.refresh_from_db()
    assert membership.role == TenantRole.MEMBER
    token.refresh_from_db()
    assert token.revoked_at is None


def test_engineer_gets_404_for_unassigned_tenant(client, engineer_a, tenant_b):
    login_verified(client, engineer_a.user)
    for name in ("overview", "team", "tokens"):
        assert client.get(_url(name, tenant_b)).status_code == 404
    assert client.post(_url("team", tenant_b), {"username": "x", "role": "x"}).status_code == 404


def test_msp_admin_sees_every_tenant_and_can_switch(client, msp_admin, tenant_a, tenant_b):
    login_verified(client, msp_admin.user)
    home = _text(client.get(_url("home")))
    assert "Acme Analytics" in home
    assert "Borealis Bank" in home
    overview = _text(client.get(_url("overview", tenant_b)))
    assert "Read-only staff view." in overview
    # The switcher offers every reachable tenant and lands on the chosen one.
    assert 'value="acme"' in overview
    assert 'value="borealis"' in overview
    response = client.get(_url("switch"), {"tenant": "acme"})
    assert response.status_code == 302
    assert response.url == _url("overview", tenant_a)


def test_staff_home_filters_by_status_and_search(client, msp_admin, tenant_a, tenant_b):
    services.tenant_transition(tenant=tenant_b, to_status=TenantStatus.ONBOARDING)
    login_verified(client, msp_admin.user)
    text = _text(client.get(_url("home"), {"status": "onboarding"}))
    assert "Borealis Bank" in text
    assert "Acme Analytics" not in text
    text = _text(client.get(_url("home"), {"q": "acm"}))
    assert "Acme Analytics" in text
    assert "Borealis Bank" not in text


def test_analyst_is_read_only_too(client, tenant_a):
    analyst = make_staff(tenant_a, role=MspRole.ANALYST, username="analyst-a")
    login_verified(client, analyst)
    assert "Read-only staff view." in _text(client.get(_url("team", tenant_a)))
    response = client.post(_url("tokens", tenant_a), {"name": "x", "scopes": ["read"]})
    assert response.status_code == 403


# --- Structure ---------------------------------------------------------------------------------


def test_every_tenant_page_goes_through_the_portal_gate():
    tenant_routes = [
        pattern
        for pattern in portal_urls.urlpatterns
        if isinstance(pattern, URLPattern) and "<slug:slug>" in str(pattern.pattern)
    ]
    assert len(tenant_routes) >= 6
    for pattern in tenant_routes:
        assert getattr(pattern.callback, "portal_tenant_view", False), pattern.name


def test_list_pages_use_a_constant_number_of_queries(
    admin_client, tenant_a, django_assert_max_num_queries
):
    for index in range(8):
        user = make_member(tenant_a, TenantRole.MEMBER, username=f"bulk-{index}")
        services.token_issue(user=user, name=f"bulk-{index}")
    # The overview's panels have their own constant budget: tests/portal/test_overview.py.
    for name in ("team", "tokens"):
        with django_assert_max_num_queries(12):
            assert admin_client.get(_url(name, tenant_a)).status_code == 200


def test_portal_pages_reject_other_tenants_even_with_many_tenants(client, db):
    tenants = [TenantFactory() for _ in range(3)]
    user = make_member(tenants[1], TenantRole.ADMIN)
    client.force_login(user)
    assert client.get(_url("overview", tenants[1])).status_code == 200
    for other in (tenants[0], tenants[2]):
        assert client.get(_url("team", other)).status_code == 404


def test_staff_home_uses_a_constant_number_of_queries(
    client, msp_admin, tenant_a, django_assert_max_num_queries
):
    for _ in range(6):
        tenant = TenantFactory()
        make_member(tenant, TenantRole.ADMIN)
    login_verified(client, msp_admin.user)
    # The fleet dashboard: a query per figure, whatever the number of tenants
    # (tests/tenants/test_fleet_dashboard.py compares 3 and 30 tenants).
    with django_assert_max_num_queries(22):
        response = client.get(_url("home"))
    # One row per tenant and the fleet total.
    assert _text(response).count('<th scope="row">') == 8
