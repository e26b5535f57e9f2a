"""The client portal in a real browser: sign in, find the estate and its GPU sparkline, raise
an incident through the form, and never reach another tenant's pages."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from operations.incidents.models import Incident
from tenants.models import TenantRole
from tenants.scoping import tenant_scope
from tests.browser.conftest import requires_browser
from tests.factories import make_member
from tests.inventory.estate import make_ai_system, make_gpu_node
from tests.inventory.test_portal import add_hourly_utilisation

pytestmark = [requires_browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-browser-password"  # noqa: S105 (test fixture)


def sign_in(browser, live_server, username: str) -> None:
    browser.get(f"{live_server.url}/portal/login/")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.XPATH, "//button[normalize-space()='Sign in']").click()
    browser.find_element(By.CSS_SELECTOR, "nav.sidenav")


@pytest.fixture
def member(tenant_a):
    user = make_member(tenant_a, TenantRole.MEMBER, username="acme-browser")
    user.set_password(PASSWORD)
    user.save()
    return user


def test_a_client_finds_the_estate_and_its_gpu_utilisation(
    browser, live_server, member, tenant_a, tenant_b
):
    node = make_gpu_node(tenant_a, hostname="acme-gpu-idle-01")
    add_hourly_utilisation(tenant_a, node, [2.0, 3.0, 2.5])
    make_ai_system(tenant_a, name="Claims triage")
    make_ai_system(tenant_b, name="Borealis secret model")

    sign_in(browser, live_server, member.username)
    browser.find_element(By.LINK_TEXT, "Estate").click()

    assert browser.find_element(By.TAG_NAME, "h1").text == "AI estate"
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Claims triage" in body
    assert "Borealis secret model" not in body
    sparkline = browser.find_element(By.CSS_SELECTOR, "svg.sparkline")
    assert "average 2.5 %" in sparkline.get_attribute("aria-label")
    assert sparkline.size["width"] > 0


def test_a_client_raises_an_incident_through_the_form(browser, live_server, member, tenant_a):
    sign_in(browser, live_server, member.username)
    browser.find_element(By.LINK_TEXT, "Incidents").click()
    browser.find_element(By.LINK_TEXT, "Raise an incident").click()
    browser.find_element(By.NAME, "title").send_keys("Chatbot answers in the wrong language")
    browser.find_element(By.NAME, "description").send_keys("Since 09:00, for every user.")
    browser.find_element(By.XPATH, "//button[normalize-space()='Raise incident']").click()

    assert "Raised" in browser.find_element(By.CSS_SELECTOR, ".messages").text
    with tenant_scope(tenant_a.id):
        incident = Incident.objects.get()
    assert incident.title == "Chatbot answers in the wrong language"
    assert incident.reporter == member
    assert incident.reference in browser.find_element(By.TAG_NAME, "body").text


def test_another_tenants_portal_is_not_found_in_the_browser(browser, live_server, member, tenant_b):
    sign_in(browser, live_server, member.username)
    browser.get(f"{live_server.url}/portal/{tenant_b.slug}/estate/")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Borealis" not in body
    assert "not found" in body.lower()


def test_a_client_sees_the_overview_figures_and_a_resources_chart(
    browser, live_server, member, tenant_a
):
    node = make_gpu_node(tenant_a, hostname="acme-gpu-01")
    add_hourly_utilisation(tenant_a, node, [40.0, 50.0, 60.0])

    sign_in(browser, live_server, member.username)
    panels = browser.find_elements(By.CSS_SELECTOR, "section[data-panel]")
    assert [p.get_attribute("data-panel") for p in panels] == [
        "incidents",
        "compliance",
        "estate",
        "savings",
    ]
    mean = browser.find_element(By.CSS_SELECTOR, '[data-figure="utilisation-mean"]')
    assert mean.text == "50.0 %"

    browser.find_element(By.LINK_TEXT, "Estate").click()
    browser.find_element(By.LINK_TEXT, "acme-gpu-01").click()
    browser.find_element(By.LINK_TEXT, "7 days").click()
    chart = browser.find_element(By.CSS_SELECTOR, '[data-metric="gpu_utilization"] svg')
    assert chart.size["width"] > 0
    assert "GPU utilisation" in chart.get_attribute("aria-label")


def test_a_nodes_page_draws_a_chart_and_a_row_per_gpu(
    browser, live_server, member, tenant_a, tmp_path
):
    import datetime as dt

    from django.utils import timezone

    from tests.optimisation.helpers import feed_gpu, hours_between, this_hour
    from tests.telemetry.gpu_samples import make_node_gpus, store_gpu_hours, store_gpu_samples

    node = make_gpu_node(tenant_a, hostname="acme-gpu-01", gpu_count=8, gpu_uuids=[])
    gpus = make_node_gpus(tenant_a, node)
    end = this_hour()
    hours = list(hours_between(end - dt.timedelta(hours=23), end))
    recent = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=40)
    for gpu in gpus:
        busy = 2.0 if gpu.index == 5 else 55.0 + 5 * gpu.index
        store_gpu_hours(
            tenant_a, gpu, "gpu_utilization", hours, lambda hour, b=busy: b + hour.hour % 4
        )
        temperature = [88.0 if gpu.index == 6 else 61.0 + gpu.index] * 4
        store_gpu_samples(tenant_a, gpu, "gpu_temperature_celsius", temperature, start=recent)
        xid = [0.0, 79.0, 0.0] if gpu.index == 3 else [0.0] * 3
        store_gpu_samples(tenant_a, gpu, "gpu_xid_errors", xid, start=recent)
    feed_gpu(tenant_a, node, hours=23, utilisation=60)

    sign_in(browser, live_server, member.username)
    browser.get(f"{live_server.url}/portal/{tenant_a.slug}/estate/compute/{node.pk}/")
    browser.find_element(By.ID, "gpus").location_once_scrolled_into_view  # noqa: B018
    rows = browser.find_elements(By.CSS_SELECTOR, "#gpu-table tbody tr")
    assert [row.find_element(By.TAG_NAME, "th").text for row in rows] == [
        f"GPU {index}" for index in range(8)
    ]
    assert "XID 79" in rows[3].text
    charts = browser.find_elements(By.CSS_SELECTOR, ".gpu-charts svg")
    assert len(charts) == 8
    assert all(chart.size["width"] > 200 for chart in charts)
    browser.set_window_size(1280, 2600)
    browser.save_screenshot(str(tmp_path / "gpu-node.png"))
    # Small multiples: several to a row.
    assert len({chart.location["y"] for chart in charts[:2]}) == 1
