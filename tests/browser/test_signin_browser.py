"""Sign-in security in a real browser: the lockout page, setting up and using two-factor
sign-in from the admin's sign-in, a tenant admin requiring it, and password reset by email."""

from __future__ import annotations

import re
import time
from base64 import b32decode

import pytest
from django.core import mail
from django_otp.oath import TOTP
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tenants.models import MspRole, TenantRole
from tests.browser.conftest import requires_browser
from tests.factories import make_member, make_staff

pytestmark = [requires_browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-browser-password"  # noqa: S105 (test fixture)


def click_and_wait(browser, element) -> None:
    """Click, then wait until the browser has left the page (no stale reads of the old one)."""
    page = browser.find_element(By.TAG_NAME, "html")
    element.click()

    def left(_driver) -> bool:
        try:
            page.is_enabled()
        except WebDriverException:  # stale, or Chromium's "node does not belong to the document"
            return True
        return False

    WebDriverWait(browser, 10).until(left)


def button(browser, label: str):
    return browser.find_element(By.XPATH, f"//button[normalize-space()='{label}']")


def with_password(user):
    user.set_password(PASSWORD)
    user.save()
    return user


def submit_portal_sign_in(browser, live_server, username: str, password: str) -> None:
    browser.get(f"{live_server.url}/portal/login/")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(password)
    click_and_wait(browser, button(browser, "Sign in"))


def submit_admin_sign_in(browser, live_server, username: str, password: str) -> None:
    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(password)
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "input[type=submit]"))


def heading(browser) -> str:
    return browser.find_element(By.TAG_NAME, "h1").text


def current_code(secret: str) -> str:
    """What the person's authenticator app shows for the secret the page gave them."""
    totp = TOTP(b32decode(secret.replace(" ", "")))
    totp.time = time.time()
    return f"{totp.token():06d}"


def enter_code(browser, code: str, label: str) -> None:
    browser.find_element(By.NAME, "code").send_keys(code)
    click_and_wait(browser, button(browser, label))


def test_the_portal_locks_after_repeated_failures_even_for_the_right_password(
    browser, live_server, tenant_a
):
    member = with_password(make_member(tenant_a, TenantRole.MEMBER, username="acme-browser"))
    for _ in range(5):
        submit_portal_sign_in(browser, live_server, member.username, "not-the-password")
    assert heading(browser) == "Sign-in is locked for now"

    submit_portal_sign_in(browser, live_server, member.username, PASSWORD)
    assert heading(browser) == "Sign-in is locked for now"
    assert "Try again in 15 minutes" in browser.find_element(By.TAG_NAME, "body").text
    browser.get(f"{live_server.url}/portal/")
    assert browser.current_url.startswith(f"{live_server.url}/portal/login/")


def test_the_admin_locks_after_repeated_failures_even_for_the_right_password(
    browser, live_server, tenant_a
):
    staff = with_password(make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-browser"))
    for _ in range(5):
        submit_admin_sign_in(browser, live_server, staff.username, "not-the-password")
    submit_admin_sign_in(browser, live_server, staff.username, PASSWORD)
    assert heading(browser) == "Sign-in is locked for now"


def test_staff_set_up_two_factor_at_the_admin_then_sign_in_with_a_recovery_code(
    browser, live_server, tenant_a
):
    staff = with_password(make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-browser"))

    submit_admin_sign_in(browser, live_server, staff.username, PASSWORD)
    assert heading(browser) == "Set up two-factor sign-in"
    assert browser.find_element(By.CSS_SELECTOR, "figure.qr svg").size["width"] > 0
    browser.get(f"{live_server.url}/admin/tenants/tenant/")
    assert heading(browser) == "Set up two-factor sign-in", "nothing opens before the setup"

    secret = browser.find_element(By.ID, "totp-secret").text
    enter_code(browser, current_code(secret), "Confirm")
    assert "Keep your recovery codes" in heading(browser)
    codes = [item.text for item in browser.find_elements(By.CSS_SELECTOR, ".recovery-codes li")]
    assert len(codes) == 10
    click_and_wait(browser, browser.find_element(By.PARTIAL_LINK_TEXT, "I have stored them"))
    assert "Groundwork — MSP console" in browser.find_element(By.TAG_NAME, "body").text

    browser.delete_all_cookies()
    submit_portal_sign_in(browser, live_server, staff.username, PASSWORD)
    assert heading(browser) == "Enter your two-factor code"
    enter_code(browser, codes[0], "Verify")
    assert "recovery code" in browser.find_element(By.CSS_SELECTOR, ".messages").text
    assert "Acme Analytics" in browser.find_element(By.TAG_NAME, "body").text

    browser.delete_all_cookies()
    submit_portal_sign_in(browser, live_server, staff.username, PASSWORD)
    enter_code(browser, codes[0], "Verify")
    assert "That code was not accepted." in browser.find_element(By.TAG_NAME, "body").text
    browser.get(f"{live_server.url}/portal/")
    assert heading(browser) == "Enter your two-factor code"


def test_a_tenant_admin_requires_two_factor_and_is_sent_to_set_it_up(
    browser, live_server, tenant_a
):
    admin = with_password(make_member(tenant_a, TenantRole.ADMIN, username="acme-boss"))
    submit_portal_sign_in(browser, live_server, admin.username, PASSWORD)
    click_and_wait(browser, browser.find_element(By.LINK_TEXT, "Team"))
    browser.find_element(By.NAME, "require_mfa").click()
    click_and_wait(browser, button(browser, "Save"))

    assert heading(browser) == "Set up two-factor sign-in"
    tenant_a.refresh_from_db()
    assert tenant_a.require_mfa


def test_password_reset_by_email_in_the_browser(browser, live_server, tenant_a):
    member = with_password(make_member(tenant_a, TenantRole.MEMBER, username="acme-browser"))
    browser.get(f"{live_server.url}/portal/login/")
    click_and_wait(browser, browser.find_element(By.LINK_TEXT, "Forgotten your password?"))
    browser.find_element(By.NAME, "email").send_keys(member.email)
    click_and_wait(browser, button(browser, "Send the link"))
    assert heading(browser) == "Check your email"

    link = re.search(r"https?://\S+/portal/reset/\S+/", mail.outbox[0].body).group(0)
    browser.get(link)
    browser.find_element(By.NAME, "new_password1").send_keys("a-brand-new-passphrase")
    browser.find_element(By.NAME, "new_password2").send_keys("a-brand-new-passphrase")
    click_and_wait(browser, button(browser, "Set the password"))
    assert heading(browser) == "Your password is set"

    submit_portal_sign_in(browser, live_server, member.username, "a-brand-new-passphrase")
    browser.find_element(By.CSS_SELECTOR, "nav.sidenav")
