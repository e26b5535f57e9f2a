"""Without Pango (WeasyPrint cannot load) a report is still made, in HTML; the row, the API and
``manage.py check`` say why there is no PDF and how to install what is missing."""

from __future__ import annotations

import pytest

from operations.reports import pdf
from operations.reports.models import ReportKind
from tests.reports.test_api import make_report

REASON = "PDF unavailable: WeasyPrint cannot load (cannot load library 'pango-1.0-0'); install"


@pytest.fixture
def no_pango(monkeypatch):
    # Stands in for the system library being absent (it is installed on this machine).
    monkeypatch.setattr(pdf, "pdf_unavailable_reason", lambda: REASON)


@pytest.mark.django_db
def test_the_report_is_made_in_html_and_says_why_there_is_no_pdf(no_pango, viewer_a, tenant_a):
    report = make_report(tenant_a, ReportKind.MONTHLY)
    assert report.pdf_missing_reason == REASON
    assert report.pdf_file.name == ""
    assert report.html_sha256
    base = f"/api/v1/tenants/{tenant_a.slug}/reports/{report.pk}/"
    assert viewer_a.client.get(base).json()["formats"] == ["html"]
    refused = viewer_a.client.get(base + "download?format=pdf")
    assert refused.status_code == 409
    assert "cannot load library" in refused.json()["error"]["message"]
    assert viewer_a.client.get(base + "download?format=html").status_code == 200


def test_the_system_check_warns_with_the_install_command(no_pango):
    (warning,) = pdf.pdf_library_check()
    assert warning.id == "reports.W001"
    assert "apt-get install libpango-1.0-0" in warning.hint
