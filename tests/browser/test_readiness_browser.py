"""Readiness in a real browser: a tenant admin answers the last open question, saves its
pillar, submits the assessment, sees the radar of the pillars, asks for a rescore now, and
sees the onboarding step "Baseline readiness assessment" done."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from operations.readiness import services
from operations.readiness.catalogue import readiness_frameworks_load
from operations.readiness.portal.forms import field_names
from operations.readiness.selectors import framework_questions, readiness_framework_current
from tenants import services as tenant_services
from tenants.models import TenantRole, TenantStatus
from tenants.scoping import tenant_scope
from tests.browser.conftest import requires_browser
from tests.browser.test_portal_browser import PASSWORD, sign_in
from tests.browser.test_signin_browser import click_and_wait
from tests.factories import make_member

pytestmark = [requires_browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def framework():
    # The transactional test flushed the migration's row: load the shipped framework again.
    readiness_frameworks_load()
    return readiness_framework_current()


@pytest.fixture
def onboarding_admin(tenant_a):
    tenant = tenant_services.tenant_transition(tenant=tenant_a, to_status=TenantStatus.ONBOARDING)
    user = make_member(tenant, TenantRole.ADMIN, username="acme-readiness", first_name="Ada")
    user.set_password(PASSWORD)
    user.save()
    return tenant, user


def test_an_admin_answers_submits_and_sees_the_radar_and_the_onboarding_step(
    browser, live_server, onboarding_admin, framework
):
    tenant, user = onboarding_admin
    keys = list(framework_questions(framework.definition))
    last = keys[-1]
    pillar = framework_questions(framework.definition)[last]["pillar"]
    # Every question but the last is answered already (an earlier session's partial saves).
    with tenant_scope(tenant.id):
        draft = services.assessment_start(tenant=tenant, user=user)
        for key in keys[:-1]:
            services.assessment_answer(
                tenant=tenant, assessment=draft, question_key=key, value=3, user=user
            )

    sign_in(browser, live_server, user.username)
    browser.find_element(By.LINK_TEXT, "Readiness").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "AI readiness"
    assert "No readiness score yet" in browser.find_element(By.TAG_NAME, "body").text
    browser.find_element(By.LINK_TEXT, "Continue the assessment").click()

    value_name, note_name, _evidence = field_names(last)
    browser.find_element(By.ID, f"id_{pillar}-{value_name}_4").click()
    browser.find_element(By.NAME, f"{pillar}-{note_name}").send_keys("Runbooks for every system.")
    save = browser.find_element(By.XPATH, f"//section[@id='pillar-{pillar}']//button")
    click_and_wait(browser, save)
    assert "1 answer saved" in browser.find_element(By.CSS_SELECTOR, ".messages").text
    assert browser.find_element(By.ID, f"id_{pillar}-{value_name}_4").is_selected()

    browser.find_element(By.LINK_TEXT, "Review and submit").click()
    browser.find_element(By.NAME, "confirm").click()
    click_and_wait(
        browser, browser.find_element(By.XPATH, "//button[normalize-space()='Submit assessment']")
    )

    assert "Assessment submitted" in browser.find_element(By.CSS_SELECTOR, ".messages").text
    radar = browser.find_element(By.CSS_SELECTOR, "#readiness-radar svg")
    assert radar.size["width"] > 0
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Maturity level" in body
    assert "Level " in body

    # Rescore now: a scan job run is queued and the page shows it.
    # Wait for the next page: the last page's message would otherwise still be read.
    rescore = browser.find_element(By.XPATH, "//button[normalize-space()='Rescore now']")
    click_and_wait(browser, rescore)
    assert "Readiness scan queued as job run" in (
        browser.find_element(By.CSS_SELECTOR, ".messages").text
    )
    assert "Latest readiness scan: job run" in browser.find_element(By.ID, "last-scan").text

    browser.find_element(By.LINK_TEXT, "Overview").click()
    step = browser.find_element(
        By.XPATH,
        "//li[contains(@class, 'checklist__item')]"
        "[.//span[contains(., 'Baseline readiness assessment')]]",
    )
    assert "is-done" in step.get_attribute("class")
    assert "(done)" in step.get_attribute("textContent")
