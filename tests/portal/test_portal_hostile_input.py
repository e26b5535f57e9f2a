"""Hostile form input on every portal page that takes a POST: a page or a 4xx, never a 500.

The API has its own pass (``tests/test_hostile_input.py``); the portal's forms are read by
views and Django forms of their own, so they get theirs. Routes are enumerated from the URL
resolver, so a new portal page is covered without being listed. Each is posted, by a tenant
admin and by a verified MSP admin, every field name its page shows (and a few every form
uses) carrying, in turn: a NUL byte (PostgreSQL refuses it in text), a UTF-8-encoded lone
surrogate, ``1e400``, a 30-digit integer, an impossible date and 20,000 characters.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from tenants.models import MspRole, TenantRole
from tests.conftest import shared_rows
from tests.factories import (
    TenantFactory,
    login_verified,
    make_member,
    make_staff,
    make_token,
)
from tests.inventory.estate import make_compute
from tests.portal.walk import portal_estate, portal_routes, portal_urls

pytestmark = pytest.mark.django_db

#: Raw (already URL-encoded) values, each sent in every field at once.
HOSTILE = {
    "nul": "a%00b",
    "surrogate": "%ED%A0%80",
    "huge-float": "1e400",
    "huge-int": "9" * 30,
    "bad-date": "2026-02-30T25%3A61",
    "long": "x" * 20_000,
}
#: Names most forms read, posted even where the page shows no such input (views read them).
COMMON_FIELDS = (
    "body",
    "reason",
    "visibility",
    "severity",
    "assignee",
    "title",
    "description",
    "url",
    "events",
    "name",
    "role",
    "state",
    "timezone",
    "username",
    "password",
    "email",
    "note",
    "evidence_url",
    "expires_in_days",
    "scopes",
)
ROUTES = portal_routes()


@pytest.fixture(scope="module")
def shared(django_db_setup, django_db_blocker):
    """Tenant A, one object of each kind the routes name, and the two people who post, made once
    for the module: each route's test undoes only what its own posts changed."""

    def make():
        tenant_a = TenantFactory(name="Acme Analytics", slug="acme")
        member = make_member(tenant_a, TenantRole.MEMBER, username="acme-hostile-member")
        make_token(member)
        estate = portal_estate(tenant_a, member=member, compute=make_compute(tenant_a))
        return {
            "estate": estate,
            "tenant_admin": make_member(tenant_a, TenantRole.ADMIN, username="acme-hostile-admin"),
            "msp_admin": make_staff(role=MspRole.ADMIN, username="msp-hostile-admin"),
        }

    yield from shared_rows(django_db_blocker, make)


def _field_names(client, url: str) -> set[str]:
    page = client.get(url)
    names = set(COMMON_FIELDS)
    if page.status_code == 200 and "html" in page.get("Content-Type", ""):
        names.update(re.findall(r'name="([^"]+)"', page.content.decode()))
    names.discard("csrfmiddlewaretoken")
    return names


@pytest.mark.parametrize(("route", "view"), ROUTES, ids=[route for route, _ in ROUTES])
@pytest.mark.parametrize("who", ["tenant_admin", "msp_admin"])
def test_a_portal_form_answers_hostile_input_without_a_server_error(
    client, shared, route, view, who
):
    if who == "tenant_admin":
        client.force_login(shared["tenant_admin"])
    else:
        login_verified(client, shared["msp_admin"])
    for url in portal_urls(route, view, shared["estate"]):
        names = sorted(_field_names(client, url))
        for label, raw in HOSTILE.items():
            body = "&".join(f"{quote(name)}={raw}" for name in names)
            response = client.post(url, body, content_type="application/x-www-form-urlencoded")
            assert response.status_code < 500, (url, label, response.status_code)
