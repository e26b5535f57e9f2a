"""A monthly report drawn from a fixed month of data: its figures, its HTML and its PDF (parsed
back), its storage with checksums, immutability once published, and versions."""

from __future__ import annotations

import hashlib
import io

import jsonschema
import pytest
from django.db import DatabaseError, transaction
from pypdf import PdfReader

from operations.events.catalogue import CATALOGUE
from operations.events.models import OutboxEvent
from operations.reports import services
from operations.reports.models import Report, ReportKind, ReportStatus
from operations.reports.selectors import ReportFileUnavailable, report_file_read
from tenants.models import Tenant
from tenants.scoping import tenant_scope
from tests.conftest import shared_rows
from tests.factories import TenantFactory
from tests.reports.builders import tenant_with_a_month
from tests.reports.conftest import requires_pdf

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="class")
def fixed_month(django_db_setup, django_db_blocker) -> tuple[int, int, dict, int]:
    """Both tenants' fixed month and A's report on it, made once for the class: each test starts
    from them and undoes only its own changes. (A's id, B's id, A's month, the report's id.)"""

    def make():
        tenant_a = TenantFactory(name="Acme Analytics", slug="acme")
        tenant_b = TenantFactory(name="Borealis Bank", slug="borealis")
        month = tenant_with_a_month(tenant_a)
        tenant_with_a_month(tenant_b, name="borealis-secret-node")
        report = services.report_generate(
            tenant=tenant_a, kind=ReportKind.MONTHLY, period=month["period"]
        )
        return tenant_a.pk, tenant_b.pk, month, report.pk

    yield from shared_rows(django_db_blocker, make)


def _read(report, fmt):
    with tenant_scope(report.tenant_id):
        return report_file_read(report=report, fmt=fmt)


class TestFixedMonth:
    @pytest.fixture
    def tenant_a(self, fixed_month, db):
        return Tenant.objects.get(pk=fixed_month[0])

    @pytest.fixture
    def tenant_b(self, fixed_month, db):
        return Tenant.objects.get(pk=fixed_month[1])

    @pytest.fixture
    def month(self, fixed_month) -> dict:
        return fixed_month[2]

    @pytest.fixture
    def report(self, fixed_month, tenant_a):
        # Read afresh: a test's own changes to the row end with its transaction.
        with tenant_scope(tenant_a.id):
            return Report.objects.get(pk=fixed_month[3])

    def test_the_figures_of_a_fixed_month(self, report, month):
        figures = report.figures
        overall = figures["sla"]["overall"]
        # SEV1, SEV2, two SEV3 and the serious SEV2 in the month; the SEV4 was the month before.
        assert overall["incidents"] == 5
        by_severity = {row["severity"]: row for row in figures["sla"]["by_severity"]}
        assert by_severity["SEV1"]["incidents"] == 1
        assert by_severity["SEV1"]["mtta_seconds"] == 6 * 60
        assert by_severity["SEV1"]["mttr_seconds"] == 90 * 60
        assert by_severity["SEV3"]["incidents"] == 2
        assert by_severity["SEV4"]["incidents"] == 0
        # MTTA over the five: (6 + 20 + 30 + 30 + 5) / 5 minutes.
        assert overall["mtta_seconds"] == pytest.approx((6 + 20 + 30 + 30 + 5) / 5 * 60)
        trend = figures["incident_trend"]
        assert [row["incidents"] for row in trend[-2:]] == [1, 5]
        assert trend[-1]["label"] == month["period"].label
        assert "resolve_sla_attainment" in trend[-1]
        major = figures["major_incidents"]
        assert [row["severity"] for row in major] == ["SEV1", "SEV2", "SEV2"]
        assert major[0]["postmortem_summary"] == "Cooling failure in rack 4 at Acme Analytics"
        assert figures["regulator"] == {"due": 1, "met": 1, "rows": figures["regulator"]["rows"]}
        assert figures["gpu"]["mean_utilisation"] == 50.0
        assert figures["spend"]["total"] == 720.0  # 72 hours at 10 EUR/h
        assert figures["spend"]["budget"] == 1000.0
        assert figures["spend"]["budget_share"] == 0.72
        assert figures["spend"]["currency"] == "EUR"
        (framework,) = figures["compliance"]["frameworks"]
        assert [p["score"] for p in framework["scores"]] == [60.0, 70.0, 80.0]
        assert framework["change"] == 20.0
        assert figures["savings"]["realised"] == {"count": 1, "monthly_saving": {"EUR": "300.00"}}
        assert figures["period"]["timezone"] == "Europe/Berlin"

    def test_the_html_shows_the_figures_in_the_tenants_zone_and_nothing_of_another_tenant(
        self, report
    ):
        html = _read(report, "html").decode()
        assert 'data-figure="incidents">5<' in html
        assert "720.00 EUR" in html
        assert "Cooling failure in rack 4 at Acme Analytics" in html
        assert "CET" in html or "CEST" in html
        assert "<svg" in html
        assert "<script" not in html
        assert "Borealis" not in html
        assert "borealis-secret-node" not in html

    @requires_pdf
    def test_the_pdf_parses_back_with_its_pages_headline_figures_and_charts(self, report):
        pdf = _read(report, "pdf")
        assert hashlib.sha256(pdf).hexdigest() == report.pdf_sha256
        reader = PdfReader(io.BytesIO(pdf))
        assert len(reader.pages) == report.pdf_pages
        assert 2 <= len(reader.pages) <= 8
        text = "\n".join(page.extract_text() for page in reader.pages)
        assert "Monthly service report" in text
        assert "720.00 EUR" in text
        assert "Cooling failure in rack 4 at Acme Analytics" in text
        assert "Borealis" not in text
        # The charts are drawn into the PDF as vector graphics, their labels as text.
        assert "Incidents by severity" in text
        assert "GPU utilisation per day" in text
        drawings = sum(len(page.get_contents().get_data()) for page in reader.pages)
        assert drawings > 20000

    def test_a_published_report_is_stored_with_checksums_and_announced(self, report, tenant_a):
        assert report.status == ReportStatus.PUBLISHED
        assert report.version == 1
        html = _read(report, "html")
        assert hashlib.sha256(html).hexdigest() == report.html_sha256
        assert report.html_size == len(html)
        with tenant_scope(tenant_a.id):
            (event,) = OutboxEvent.objects.filter(topic="report.ready")
        assert event.payload["id"] == report.pk
        assert event.payload["period"] == report.period_label
        assert event.payload["version"] == 1
        assert event.payload["download_url"].endswith(f"/reports/{report.pk}/download")
        jsonschema.validate(event.payload, CATALOGUE["report.ready"].schema)

    def test_a_published_row_cannot_be_changed_even_by_a_bare_update(self, report, tenant_a):
        with tenant_scope(tenant_a.id):
            with pytest.raises(DatabaseError), transaction.atomic():
                Report.objects.filter(pk=report.pk).update(summary="Rewritten")
            with pytest.raises(DatabaseError), transaction.atomic():
                Report.objects.filter(pk=report.pk).update(html_sha256="0" * 64)
            assert Report.objects.get(pk=report.pk).summary == ""

    def test_a_published_report_refuses_edits_and_a_regeneration_is_a_new_version(
        self, report, tenant_a, month
    ):
        with pytest.raises(services.ReportImmutable):
            services.report_draft_update(report=report, summary="Changed")
        again = services.report_generate(
            tenant=tenant_a, kind=ReportKind.MONTHLY, period=month["period"]
        )
        assert again.version == 2
        assert again.pk != report.pk
        with tenant_scope(tenant_a.id):
            first = Report.objects.get(pk=report.pk)
        assert first.html_file.name == report.html_file.name
        assert _read(first, "html")  # the first version's file is still served, unchanged

    def test_a_changed_file_is_refused_by_its_checksum(self, report):
        storage = services.report_storage()
        path = storage.path(report.html_file.name)
        with open(path, "rb") as handle:
            original = handle.read()
        try:
            with open(path, "ab") as handle:
                handle.write(b"<!-- tampered -->")
            with pytest.raises(ReportFileUnavailable) as error:
                _read(report, "html")
            assert error.value.corrupt
        finally:
            # The file is the class's: put it back as it was for the tests after this one.
            with open(path, "wb") as handle:
                handle.write(original)
