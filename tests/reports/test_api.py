"""The reports API: list, detail, downloads with checksums, asking for a month, the draft
review's edits and publishing; every route under the isolation harness, files included."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from operations.jobs.models import JobRun
from operations.reports import services
from operations.reports.models import Report, ReportKind
from operations.reports.periods import month_period, quarter_period
from tenants.models import Tenant
from tenants.scoping import tenant_scope
from tests.conftest import shared_rows
from tests.factories import TenantFactory
from tests.isolation import TenantIsolationTests
from tests.reports.conftest import requires_pdf

MONTH = month_period(dt.date(2026, 10, 1))
QUARTER = quarter_period(dt.date(2026, 7, 1))


def make_report(tenant, kind=ReportKind.MONTHLY):
    period = MONTH if kind == ReportKind.MONTHLY else QUARTER
    return services.report_generate(tenant=tenant, kind=kind, period=period)


@pytest.fixture(scope="class")
def drafts(django_db_setup, django_db_blocker) -> tuple[int, int, int, int]:
    """Both tenants with a draft review each, made once for the class: each test starts from them
    and undoes only its own changes. (A's id, B's id, A's draft's id, B's draft's id.)"""

    def make():
        tenant_a = TenantFactory(name="Acme Analytics", slug="acme")
        tenant_b = TenantFactory(name="Borealis Bank", slug="borealis")
        own = TestReportIsolation().make_object(tenant_a)
        foreign = TestReportIsolation().make_object(tenant_b)
        return tenant_a.pk, tenant_b.pk, own.pk, foreign.pk

    yield from shared_rows(django_db_blocker, make)


class TestReportIsolation(TenantIsolationTests):
    resource = "reports"
    model = Report
    actor_fixture = "engineer_a"
    can_create = can_delete = False
    update_payload = {"summary": "Rewritten by someone else"}
    detail_actions = ("publish",)

    def make_object(self, tenant):
        # A draft review: the one kind of report that PATCH and publish could otherwise change.
        return make_report(tenant, ReportKind.QUARTERLY)

    # The drafts (a real report each) are made once for the class, not per test.
    @pytest.fixture
    def tenant_a(self, drafts, db):
        return Tenant.objects.get(pk=drafts[0])

    @pytest.fixture
    def tenant_b(self, drafts, db):
        return Tenant.objects.get(pk=drafts[1])

    @pytest.fixture
    def objects(self, drafts, tenant_a, tenant_b):
        with tenant_scope(tenant_a.id):
            own = Report.objects.get(pk=drafts[2])
        with tenant_scope(tenant_b.id):
            foreign = Report.objects.get(pk=drafts[3])
        return own, foreign

    def test_foreign_downloads_are_the_same_404_as_missing(self, caller, objects, tenant_a):
        _own, foreign = objects
        for fmt in ("pdf", "html"):
            url = self.url(tenant_a.slug, foreign.pk, "download") + f"?format={fmt}"
            response = caller.client.get(url)
            assert response.status_code == 404
            assert response.content == self.not_found_body(caller, tenant_a)

    def test_asking_for_a_report_in_another_tenant_is_404_and_queues_nothing(
        self, caller, tenant_b, sent
    ):
        response = caller.client.post(
            f"/api/v1/tenants/{tenant_b.slug}/reports/", {"period": "2026-10"}, format="json"
        )
        assert response.status_code == 404
        with tenant_scope(tenant_b.id):
            assert not JobRun.objects.exists()


@pytest.fixture(scope="class")
def published_reports(django_db_setup, django_db_blocker) -> tuple[int, int, int]:
    """A published month for each tenant, made once for the class: each test starts from them and
    undoes only its own changes. (A's id, B's id, A's report's id.)"""

    def make():
        tenant_a = TenantFactory(name="Acme Analytics", slug="acme")
        tenant_b = TenantFactory(name="Borealis Bank", slug="borealis")
        make_report(tenant_b)
        return tenant_a.pk, tenant_b.pk, make_report(tenant_a).pk

    yield from shared_rows(django_db_blocker, make)


@pytest.mark.django_db
class TestPublished:
    @pytest.fixture
    def tenant_a(self, published_reports, db):
        return Tenant.objects.get(pk=published_reports[0])

    @pytest.fixture
    def tenant_b(self, published_reports, db):
        return Tenant.objects.get(pk=published_reports[1])

    @pytest.fixture
    def published(self, published_reports, tenant_a, tenant_b):
        with tenant_scope(tenant_a.id):
            return Report.objects.get(pk=published_reports[2])

    def test_a_viewer_lists_and_downloads_the_published_report_but_not_drafts(
        self, viewer_a, tenant_a, published
    ):
        draft = make_report(tenant_a, ReportKind.QUARTERLY)
        listed = viewer_a.client.get(f"/api/v1/tenants/{tenant_a.slug}/reports/").json()
        assert [row["id"] for row in listed["results"]] == [published.pk]
        assert listed["results"][0]["html_sha256"] == published.html_sha256
        detail = viewer_a.client.get(f"/api/v1/tenants/{tenant_a.slug}/reports/{published.pk}/")
        assert detail.json()["figures"]["period"]["label"] == "2026-10"
        assert (
            viewer_a.client.get(f"/api/v1/tenants/{tenant_a.slug}/reports/{draft.pk}/").status_code
            == 404
        )
        html = viewer_a.client.get(
            f"/api/v1/tenants/{tenant_a.slug}/reports/{published.pk}/download?format=html"
        )
        assert html.status_code == 200
        assert hashlib.sha256(html.content).hexdigest() == published.html_sha256
        assert html["Content-Security-Policy"].startswith("default-src 'none'")

    @requires_pdf
    def test_the_pdf_download_is_the_stored_file(self, viewer_a, tenant_a, published):
        response = viewer_a.client.get(
            f"/api/v1/tenants/{tenant_a.slug}/reports/{published.pk}/download"
        )
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        assert response.content.startswith(b"%PDF")
        assert hashlib.sha256(response.content).hexdigest() == published.pdf_sha256

    def test_a_bad_format_is_one_400(self, viewer_a, tenant_a, published):
        response = viewer_a.client.get(
            f"/api/v1/tenants/{tenant_a.slug}/reports/{published.pk}/download?format=docx"
        )
        assert response.status_code == 400
        assert "format" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_a_tenant_admin_asks_for_a_month_and_a_viewer_may_not(admin_a, viewer_a, tenant_a, sent):
    url = f"/api/v1/tenants/{tenant_a.slug}/reports/"
    assert viewer_a.client.post(url, {"period": "2026-10"}, format="json").status_code == 403
    response = admin_a.client.post(url, {"period": "2026-10"}, format="json")
    assert response.status_code == 202, response.content
    with tenant_scope(tenant_a.id):
        run = JobRun.objects.get(pk=response.json()["job_run"])
    assert (run.kind, run.parameters) == ("monthly_service_report", {"period": "2026-10"})
    # A quarterly review is prepared by MSP staff; a future month does not exist yet.
    quarterly = admin_a.client.post(url, {"kind": "quarterly", "period": "2026-Q3"}, format="json")
    assert quarterly.status_code == 403
    future = admin_a.client.post(url, {"period": "2999-01"}, format="json")
    assert future.status_code == 400
    assert "period" in future.json()["error"]["fields"]


@pytest.mark.django_db
def test_staff_edit_a_draft_review_publish_it_and_then_it_is_frozen(engineer_a, admin_a, tenant_a):
    draft = make_report(tenant_a, ReportKind.QUARTERLY)
    url = f"/api/v1/tenants/{tenant_a.slug}/reports/{draft.pk}/"
    assert admin_a.client.patch(url, {"summary": "x"}, format="json").status_code == 403
    edited = engineer_a.client.patch(
        url,
        {"summary": "A steady quarter.", "proposals": "Move the RAG pilot to production"},
        format="json",
    )
    assert edited.status_code == 200, edited.content
    html = engineer_a.client.get(url + "download?format=html").content.decode()
    assert "A steady quarter." in html
    assert "Move the RAG pilot to production" in html
    assert "DRAFT" in html
    published = engineer_a.client.post(url + "publish/")
    assert published.status_code == 200
    assert published.json()["status"] == "published"
    html = admin_a.client.get(url + "download?format=html").content.decode()
    assert "DRAFT" not in html
    assert "A steady quarter." in html
    again = engineer_a.client.patch(url, {"summary": "Changed"}, format="json")
    assert again.status_code == 409
    assert engineer_a.client.post(url + "publish/").status_code == 409


@pytest.mark.django_db
def test_the_list_costs_the_same_queries_whatever_its_length(
    viewer_a, tenant_a, django_assert_max_num_queries
):
    url = f"/api/v1/tenants/{tenant_a.slug}/reports/"
    make_report(tenant_a)
    viewer_a.client.get(url)  # warm the token's last-used stamp and the caches
    with django_assert_max_num_queries(12) as one:
        assert viewer_a.client.get(url).json()["count"] == 1
    for _ in range(3):
        make_report(tenant_a)
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert viewer_a.client.get(url).json()["count"] == 4
