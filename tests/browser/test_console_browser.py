"""The engineer's workflow and the viewer's time zone in a real browser: an engineer signs in
with a second factor, acknowledges and resolves an incident from its page; a client in a
tenant whose plan is in Paris sees the same incident's times in Paris time."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from selenium.webdriver.common.by import By

from operations.incidents.models import IncidentStatus
from tenants import services
from tenants.models import MspRole, ServicePlan, TenantRole
from tests.browser.conftest import requires_browser
from tests.browser.test_signin_browser import (
    button,
    click_and_wait,
    current_code,
    enter_code,
    submit_portal_sign_in,
    with_password,
)
from tests.factories import make_member, make_staff
from tests.incidents.factories import fresh, make_incident

pytestmark = [requires_browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-browser-password"  # noqa: S105 (test fixture)
KEY = os.urandom(20)


def staff_signs_in(browser, live_server, user) -> None:
    from base64 import b32encode

    services.mfa_authenticator_provision(user=user, key=KEY, name="phone")
    submit_portal_sign_in(browser, live_server, user.username, PASSWORD)
    enter_code(browser, current_code(b32encode(KEY).decode()), "Verify")


def test_an_engineer_acknowledges_and_resolves_an_incident_from_its_page(
    browser, live_server, tenant_a
):
    engineer = with_password(make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-b"))
    incident = make_incident(tenant_a, title="Scoring endpoint down", severity="SEV1")
    staff_signs_in(browser, live_server, engineer)

    browser.get(f"{live_server.url}/portal/{tenant_a.slug}/incidents/{incident.number}/")
    assert "Work on this incident" in browser.find_element(By.TAG_NAME, "body").text
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "[data-action=acknowledge]"))
    assert "Acknowledge — done." in browser.find_element(By.CSS_SELECTOR, ".messages").text
    assert fresh(incident).status == IncidentStatus.ACKNOWLEDGED

    browser.find_element(By.ID, "note-resolve").send_keys("Restarted the inference pods.")
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "[data-action=resolve]"))
    resolved = fresh(incident)
    assert resolved.status == IncidentStatus.RESOLVED
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Restarted the inference pods." in body
    # Resolved: the workflow now offers only what comes next.
    offered = {
        element.get_attribute("data-action")
        for element in browser.find_elements(By.CSS_SELECTOR, "[data-action]")
    }
    assert offered == {"close", "reopen"}


def test_a_client_sees_times_in_the_tenants_zone(browser, live_server, tenant_a):
    ServicePlan.objects.filter(tenant=tenant_a).update(timezone="Europe/Paris")
    incident = make_incident(tenant_a, at=dt.datetime(2026, 7, 14, 10, 0, tzinfo=dt.UTC))
    client = with_password(make_member(tenant_a, TenantRole.MEMBER, username="acme-tz"))
    submit_portal_sign_in(browser, live_server, client.username, PASSWORD)

    browser.get(f"{live_server.url}/portal/{tenant_a.slug}/incidents/{incident.number}/")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "14 Jul 2026 12:00 CEST" in body  # 10:00 UTC in Paris, summer time
    assert "Times are shown in Europe/Paris." in body
    assert button  # the shared helpers stay importable from one place


def test_staff_see_the_fleet_dashboard_sorted_by_attention(
    browser, live_server, tenant_a, tenant_b
):
    admin = with_password(make_staff(role=MspRole.ADMIN, username="boss-b"))
    make_incident(tenant_b, title="Checkout model down", severity="SEV1")
    staff_signs_in(browser, live_server, admin)

    browser.get(f"{live_server.url}/portal/")
    rows = browser.find_elements(By.CSS_SELECTOR, "table tbody tr:not(.fleet__total)")
    names = [row.find_element(By.TAG_NAME, "a").text for row in rows]
    assert names[:2] == [tenant_b.name, tenant_a.name]  # the open SEV1 comes first
    assert "SEV1" in rows[0].text
