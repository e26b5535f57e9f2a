"""A client chooses their email notifications in a real browser."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from operations.events.models import NotificationPreference
from tenants.scoping import tenant_scope
from tests.browser.conftest import requires_browser
from tests.browser.test_portal_browser import member, sign_in  # noqa: F401 - fixture

pytestmark = [requires_browser, pytest.mark.django_db(transaction=True)]


def test_a_client_turns_on_job_failure_emails(browser, live_server, member, tenant_a):  # noqa: F811
    sign_in(browser, live_server, member.username)
    browser.find_element(By.LINK_TEXT, "Email notifications").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "Email notifications"
    assert "no email" in browser.find_element(By.TAG_NAME, "body").text  # a member's default

    browser.find_element(By.NAME, "email").click()
    browser.find_element(By.CSS_SELECTOR, "input[value='job.failed']").click()
    browser.find_element(By.XPATH, "//button[normalize-space()='Save']").click()

    assert "saved" in browser.find_element(By.CSS_SELECTOR, ".messages").text
    assert "1 event type (your choice)" in browser.find_element(By.TAG_NAME, "body").text
    with tenant_scope(tenant_a.id):
        preference = NotificationPreference.objects.get(user=member)
    assert (preference.email, preference.event_types) == (True, ["job.failed"])
