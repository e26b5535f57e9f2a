"""A tenant viewer downloads the monthly report from the portal in a real browser: the file
that lands is the stored PDF, byte for byte."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from operations.reports.models import ReportKind
from tenants.models import TenantRole
from tests.browser.conftest import requires_browser
from tests.browser.test_portal_browser import PASSWORD, sign_in
from tests.factories import make_member
from tests.jobs.worker import wait_until
from tests.reports.conftest import requires_pdf
from tests.reports.test_api import make_report

pytestmark = [requires_browser, requires_pdf, pytest.mark.django_db(transaction=True)]


def test_a_viewer_downloads_the_monthly_report_pdf(browser, live_server, tenant_a, tenant_b):
    viewer = make_member(tenant_a, TenantRole.VIEWER, username="acme-reader")
    viewer.set_password(PASSWORD)
    viewer.save()
    report = make_report(tenant_a, ReportKind.MONTHLY)
    make_report(tenant_b, ReportKind.MONTHLY)
    downloads = Path(tempfile.mkdtemp(prefix="groundwork-downloads-"))
    browser.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )

    sign_in(browser, live_server, viewer.username)
    browser.find_element(By.LINK_TEXT, "Reports").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "Reports"
    rows = browser.find_elements(By.CSS_SELECTOR, "#reports tbody tr")
    assert len(rows) == 1  # B's report is not listed
    rows[0].find_element(By.CSS_SELECTOR, "a[data-format='pdf']").click()

    expected = f"{tenant_a.slug}-monthly-{report.period_label}-v1.pdf"
    wait_until(lambda: (downloads / expected).exists(), what="the PDF download", timeout=60)
    data = (downloads / expected).read_bytes()
    assert data.startswith(b"%PDF")
    assert hashlib.sha256(data).hexdigest() == report.pdf_sha256
