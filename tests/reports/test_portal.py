"""The portal's report pages: listed for the tenant's users (drafts for staff only), downloads
served from the verified stored files, and the same 404 for another tenant's report."""

from __future__ import annotations

import hashlib

import pytest

from operations.reports.models import ReportKind
from tests.reports.test_api import make_report

pytestmark = pytest.mark.django_db


def test_a_viewer_sees_the_published_reports_and_downloads_the_html(viewer_a, tenant_a, tenant_b):
    published = make_report(tenant_a)
    make_report(tenant_a, ReportKind.QUARTERLY)
    foreign = make_report(tenant_b)
    viewer_a.client.force_login(viewer_a.user)
    page = viewer_a.client.get(f"/portal/{tenant_a.slug}/reports/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Monthly service report" in body
    assert "Draft" not in body
    download = viewer_a.client.get(f"/portal/{tenant_a.slug}/reports/{published.pk}/download.html")
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == published.html_sha256
    missing = viewer_a.client.get(f"/portal/{tenant_a.slug}/reports/987654/download.html")
    stolen = viewer_a.client.get(f"/portal/{tenant_a.slug}/reports/{foreign.pk}/download.html")
    other = viewer_a.client.get(f"/portal/{tenant_b.slug}/reports/{foreign.pk}/download.html")
    assert missing.status_code == stolen.status_code == other.status_code == 404
    # The same page (its per-request nonce aside) for a foreign report and a missing one.
    assert [t.name for t in stolen.templates] == [t.name for t in missing.templates]
    assert [t.name for t in other.templates] == [t.name for t in missing.templates]


def test_staff_see_draft_reviews(engineer_a, tenant_a):
    make_report(tenant_a, ReportKind.QUARTERLY)
    from tests.factories import login_verified

    login_verified(engineer_a.client, engineer_a.user)
    page = engineer_a.client.get(f"/portal/{tenant_a.slug}/reports/")
    assert page.status_code == 200
    assert "Quarterly business review" in page.content.decode()
    assert "Draft" in page.content.decode()
