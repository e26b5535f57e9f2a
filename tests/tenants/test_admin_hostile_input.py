"""Hostile form input on every admin add form: a form with errors or a 4xx, never a 500.

Every model registered on the admin site is posted, by a verified MSP admin, each field name
its add form shows carrying in turn a 30-digit id (SQLite cannot bind it), a NUL byte
(PostgreSQL refuses it in text) and ``1e400``.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, reverse

from tenants.models import MspRole
from tests.conftest import shared_rows
from tests.factories import TenantFactory, login_verified, make_staff

pytestmark = pytest.mark.django_db

HOSTILE = {"huge-int": "9" * 30, "nul": "a%00b", "huge-float": "1e400"}


def add_urls() -> list[str]:
    urls = []
    for model in admin.site._registry:
        try:
            urls.append(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add"))
        except NoReverseMatch:
            continue
    return sorted(urls)


ADD_URLS = add_urls()


@pytest.fixture(scope="module")
def msp_admin_user(django_db_setup, django_db_blocker):
    """A tenant (so tenant choices have one) and the MSP admin who posts, made once for the
    module: each route's test undoes only what its own posts changed."""

    def make():
        TenantFactory(name="Acme Analytics", slug="acme")
        return make_staff(role=MspRole.ADMIN, username="msp-hostile-admin")

    yield from shared_rows(django_db_blocker, make)


@pytest.mark.parametrize("url", ADD_URLS)
def test_an_admin_add_form_answers_hostile_input_without_a_server_error(
    client, msp_admin_user, url
):
    login_verified(client, msp_admin_user)
    page = client.get(url)
    if page.status_code != 200:
        pytest.skip(f"no add form ({page.status_code})")
    names = set(re.findall(r'name="([^"]+)"', page.content.decode())) - {"csrfmiddlewaretoken"}
    assert names, "the add form shows no field"
    for label, raw in HOSTILE.items():
        body = "&".join(f"{quote(name)}={raw}" for name in sorted(names))
        response = client.post(url, body, content_type="application/x-www-form-urlencoded")
        assert response.status_code < 500, (label, response.status_code)
