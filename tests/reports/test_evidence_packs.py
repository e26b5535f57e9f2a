"""Compliance evidence packs as reports: asked for through ``POST …/reports/`` or the compliance
page, made by the job engine with progress, stored as a zip with its SHA-256 (the very bytes
``build_evidence_pack`` makes), published at once with ``report.ready``, immutable, for those
who read the audit log only, and nothing of another tenant in them."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile

import jsonschema
import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.urls import reverse

from operations.compliance.evidence import build_evidence_pack
from operations.events.catalogue import CATALOGUE
from operations.events.models import OutboxEvent
from operations.jobs import services as job_services
from operations.jobs.models import JobRun
from operations.reports import services
from operations.reports.models import Report, ReportKind, ReportStatus
from operations.reports.selectors import ReportFileUnavailable, report_file_read
from tenants.scoping import tenant_scope
from tests.compliance.builders import good_system
from tests.isolation import TenantIsolationTests
from tests.jobs.conftest import deliver, logs_of, reload

pytestmark = pytest.mark.django_db

FROM, TO = dt.date(2026, 10, 1), dt.date(2026, 10, 31)
GENERATED_AT = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
PACK = {"framework": "eu-ai-act", "from": "2026-10-01", "to": "2026-10-31"}


def make_pack(tenant, *, now=GENERATED_AT) -> Report:
    return services.evidence_pack_generate(
        tenant=tenant, framework_code="eu-ai-act", period_start=FROM, period_end=TO, now=now
    )


def zip_texts(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def reports_url(tenant, pk=None, action=None) -> str:
    url = f"/api/v1/tenants/{tenant.slug}/reports/"
    if pk is not None:
        url += f"{pk}/"
    if action:
        url += f"{action}"
    return url


@pytest.fixture
def estates(tenant_a, tenant_b):
    """An AI system in each tenant, named so that a leak would show."""
    good_system(tenant_a, name="Acme loan scorer")
    good_system(tenant_b, name="Borealis fraud model")


def test_the_job_stores_the_very_zip_build_evidence_pack_makes_and_publishes_it(
    tenant_a, tenant_b, estates, sent
):
    run = job_services.job_submit(tenant=tenant_a, kind="compliance_evidence_pack", parameters=PACK)
    assert deliver(run) == "succeeded"
    run = reload(run)
    assert run.progress == 100
    assert any("Evidence pack for eu-ai-act" in line for line in logs_of(run))
    with tenant_scope(tenant_a.id):
        report = Report.objects.get(pk=run.result["report"])
    assert (report.kind, report.framework, report.status) == (
        ReportKind.EVIDENCE_PACK,
        "eu-ai-act",
        ReportStatus.PUBLISHED,
    )
    assert (report.period_start, report.period_end) == (FROM, TO + dt.timedelta(days=1))
    assert report.job_run_id == run.pk
    stored = report_file_read(report=report, fmt="zip")
    assert hashlib.sha256(stored).hexdigest() == report.zip_sha256 == run.result["zip_sha256"]
    assert report.zip_size == len(stored)
    # The bytes are build_evidence_pack's for the stamp the run printed in the index.
    again = build_evidence_pack(
        tenant=tenant_a,
        framework_code="eu-ai-act",
        period_start=FROM,
        period_end=TO,
        generated_at=report.generated_at,
    )
    assert stored == again
    assert "Acme loan scorer" in zip_texts(stored)["ai-systems.csv"]
    assert report.figures["files"] == sorted(zip_texts(stored))
    with tenant_scope(tenant_a.id):
        (event,) = OutboxEvent.objects.filter(topic="report.ready")
    assert event.payload["kind"] == "evidence_pack"
    assert event.payload["download_url"].endswith(f"/reports/{report.pk}/download?format=zip")
    jsonschema.validate(event.payload, CATALOGUE["report.ready"].schema)
    with tenant_scope(tenant_b.id):
        assert not Report.objects.exists()


def test_a_fixed_stamp_gives_the_same_bytes_and_a_second_pack_is_a_new_version(tenant_a):
    first = make_pack(tenant_a)
    expected = build_evidence_pack(
        tenant=tenant_a,
        framework_code="eu-ai-act",
        period_start=FROM,
        period_end=TO,
        generated_at=GENERATED_AT,
    )
    assert report_file_read(report=first, fmt="zip") == expected
    assert first.zip_sha256 == hashlib.sha256(expected).hexdigest()
    second = make_pack(tenant_a)
    assert (first.version, second.version) == (1, 2)
    # The same data and stamp: the same bytes, kept once under their checksum.
    assert second.zip_sha256 == first.zip_sha256
    assert second.zip_file.name == first.zip_file.name
    # Another framework or period counts its own versions.
    other = services.evidence_pack_generate(
        tenant=tenant_a, framework_code="eu-ai-act", period_start=FROM, period_end=FROM
    )
    assert other.version == 1


def test_tenant_bs_data_is_never_in_tenant_as_pack(tenant_a, tenant_b, estates):
    make_pack(tenant_b)
    pack = make_pack(tenant_a)
    texts = zip_texts(report_file_read(report=pack, fmt="zip"))
    everything = "".join(texts.values())
    assert "Acme loan scorer" in everything
    assert "Borealis" not in everything
    assert tenant_b.slug not in everything


def test_a_published_pack_cannot_be_changed_even_by_a_bare_update(tenant_a):
    pack = make_pack(tenant_a)
    with tenant_scope(tenant_a.id):
        with pytest.raises(DatabaseError), transaction.atomic():
            Report.objects.filter(pk=pack.pk).update(zip_sha256="0" * 64)
        with pytest.raises(DatabaseError), transaction.atomic():
            Report.objects.filter(pk=pack.pk).update(framework="iso-42001")
        assert Report.objects.get(pk=pack.pk).zip_sha256 == pack.zip_sha256


def test_a_changed_zip_is_refused_by_its_checksum(admin_a, tenant_a):
    pack = make_pack(tenant_a, now=GENERATED_AT + dt.timedelta(minutes=3))  # its own bytes
    with open(services.report_storage().path(pack.zip_file.name), "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ReportFileUnavailable) as error:
        report_file_read(report=pack, fmt="zip")
    assert error.value.corrupt
    response = admin_a.client.get(reports_url(tenant_a, pack.pk, "download/") + "?format=zip")
    assert response.status_code == 409


# --- the API ---------------------------------------------------------------------------------


def test_a_tenant_admin_asks_for_a_pack_and_a_viewer_may_not(admin_a, viewer_a, tenant_a, sent):
    body = {"kind": "evidence_pack", **PACK}
    assert viewer_a.client.post(reports_url(tenant_a), body, format="json").status_code == 403
    response = admin_a.client.post(reports_url(tenant_a), body, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["period"] == "2026-10-01..2026-10-31"
    with tenant_scope(tenant_a.id):
        run = JobRun.objects.get(pk=response.json()["job_run"])
    assert (run.kind, run.parameters) == ("compliance_evidence_pack", PACK)
    assert deliver(run) == "succeeded"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"framework": "eu-ai-act", "from": "2026-10-01"}, "to"),
        ({"framework": "no-such-framework", "from": "2026-10-01", "to": "2026-10-31"}, "framework"),
        ({"framework": "eu-ai-act", "from": "2026-10-31", "to": "2026-10-01"}, "to"),
        ({"framework": "eu-ai-act", "from": "2024-01-01", "to": "2026-10-31"}, "to"),
        ({"framework": "eu-ai-act", "from": "2026-02-30", "to": "2026-10-31"}, "from"),
        ({"framework": "eu ai act!", "from": "2026-10-01", "to": "2026-10-31"}, "framework"),
        ({"framework": "eu-ai-act", "from": "0001-01-01", "to": "0001-01-31"}, "from"),
    ],
)
def test_bad_pack_requests_are_one_400_and_queue_nothing(admin_a, tenant_a, body, field, sent):
    response = admin_a.client.post(
        reports_url(tenant_a), {"kind": "evidence_pack", **body}, format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    with tenant_scope(tenant_a.id):
        assert not JobRun.objects.exists()


def test_the_zip_downloads_with_its_checksum_and_only_as_zip(admin_a, tenant_a):
    pack = make_pack(tenant_a)
    url = reports_url(tenant_a, pack.pk, "download/")
    for query in ("?format=zip", ""):
        response = admin_a.client.get(url + query)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/zip"
        assert response["X-Checksum-SHA256"] == pack.zip_sha256
        assert hashlib.sha256(response.content).hexdigest() == pack.zip_sha256
        assert (
            'filename="acme-evidence_pack-eu-ai-act-2026-10-01..2026-10-31-v1.zip"'
            in (response["Content-Disposition"])
        )
    assert admin_a.client.get(url + "?format=html").status_code == 409
    assert admin_a.client.get(url + "?format=tar").status_code == 400
    detail = admin_a.client.get(reports_url(tenant_a, pack.pk)).json()
    assert (detail["formats"], detail["zip_sha256"]) == (["zip"], pack.zip_sha256)


def test_viewers_and_members_never_see_packs_they_carry_the_audit_trail(
    viewer_a, member_a, analyst_a, tenant_a
):
    pack = make_pack(tenant_a)
    for actor in (viewer_a, member_a):
        assert actor.client.get(reports_url(tenant_a)).json()["results"] == []
        assert actor.client.get(reports_url(tenant_a, pack.pk)).status_code == 404
        download = reports_url(tenant_a, pack.pk, "download/") + "?format=zip"
        assert actor.client.get(download).status_code == 404
    # An MSP analyst reads the audit log, so reads the pack (but asks for none: read-only).
    listed = analyst_a.client.get(reports_url(tenant_a)).json()["results"]
    assert [row["id"] for row in listed] == [pack.pk]
    body = {"kind": "evidence_pack", **PACK}
    assert analyst_a.client.post(reports_url(tenant_a), body, format="json").status_code == 403


class TestEvidencePackIsolation(TenantIsolationTests):
    resource = "reports"
    model = Report
    actor_fixture = "admin_a"
    can_create = can_delete = can_update = False

    def make_object(self, tenant):
        return make_pack(tenant)

    def test_foreign_zip_download_is_the_same_404_as_missing(self, caller, objects, tenant_a):
        _own, foreign = objects
        response = caller.client.get(
            self.url(tenant_a.slug, foreign.pk, "download") + "?format=zip"
        )
        assert response.status_code == 404
        assert response.content == self.not_found_body(caller, tenant_a)

    def test_asking_for_a_pack_in_another_tenant_is_404_and_queues_nothing(
        self, caller, tenant_b, sent
    ):
        response = caller.client.post(
            f"/api/v1/tenants/{tenant_b.slug}/reports/",
            {"kind": "evidence_pack", **PACK},
            format="json",
        )
        assert response.status_code == 404
        with tenant_scope(tenant_b.id):
            assert not JobRun.objects.exists()

    def test_the_portal_never_serves_another_tenants_zip(self, caller, objects, tenant_a):
        own, foreign = objects
        caller.client.force_login(caller.user)
        mine = reverse("portal_reports:download", args=[tenant_a.slug, own.pk, "zip"])
        theirs = reverse("portal_reports:download", args=[tenant_a.slug, foreign.pk, "zip"])
        assert caller.client.get(mine).status_code == 200
        assert caller.client.get(theirs).status_code == 404


# --- the portal ------------------------------------------------------------------------------


def test_the_compliance_form_asks_the_job_engine_and_the_pack_appears_on_the_reports_page(
    client, admin_a, tenant_a, estates, eager, committed
):
    client.force_login(admin_a.user)
    compliance = client.get(reverse("portal_compliance:overview", args=[tenant_a.slug]))
    request_url = reverse("portal_reports:evidence-pack-request", args=[tenant_a.slug])
    assert f'action="{request_url}"' in compliance.content.decode()
    assert "Generate evidence pack" in compliance.content.decode()
    with committed():
        response = client.post(request_url, PACK)
    assert response.status_code == 302
    assert response["Location"] == reverse("portal_reports:list", args=[tenant_a.slug])
    with tenant_scope(tenant_a.id):
        (pack,) = Report.objects.filter(kind=ReportKind.EVIDENCE_PACK)
        run = JobRun.objects.get(kind="compliance_evidence_pack")
    assert run.status == "succeeded"
    page = client.get(response["Location"]).content.decode()
    assert f"Evidence pack requested (job run #{run.pk})" in page
    link = reverse("portal_reports:download", args=[tenant_a.slug, pack.pk, "zip"])
    assert f'href="{link}"' in page
    download = client.get(link)
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == pack.zip_sha256


def test_a_refused_pack_goes_back_to_the_compliance_page_with_the_reason(
    client, admin_a, tenant_a, sent
):
    client.force_login(admin_a.user)
    url = reverse("portal_reports:evidence-pack-request", args=[tenant_a.slug])
    response = client.post(url, {**PACK, "to": "2026-09-01"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse(
        "portal_compliance:overview", args=[tenant_a.slug]
    )
    assert "No evidence pack: The period ends before it starts." in response.content.decode()
    with tenant_scope(tenant_a.id):
        assert not JobRun.objects.exists()


def test_viewers_and_other_tenants_cannot_ask_for_a_pack_in_the_portal(
    client, viewer_a, tenant_a, tenant_b, sent
):
    client.force_login(viewer_a.user)
    assert (
        client.post(
            reverse("portal_reports:evidence-pack-request", args=[tenant_a.slug]), PACK
        ).status_code
        == 403
    )
    assert (
        client.post(
            reverse("portal_reports:evidence-pack-request", args=[tenant_b.slug]), PACK
        ).status_code
        == 404
    )
    with tenant_scope(tenant_a.id):
        assert not JobRun.objects.exists()
    with tenant_scope(tenant_b.id):
        assert not JobRun.objects.exists()


def test_a_viewers_reports_page_shows_no_pack(client, viewer_a, admin_a, tenant_a):
    pack = make_pack(tenant_a)
    link = reverse("portal_reports:download", args=[tenant_a.slug, pack.pk, "zip"])
    client.force_login(viewer_a.user)
    page = client.get(reverse("portal_reports:list", args=[tenant_a.slug])).content.decode()
    assert link not in page
    assert client.get(link).status_code == 404


def test_generating_again_repairs_a_damaged_file_instead_of_pointing_at_it(tenant_a):
    stamp = GENERATED_AT + dt.timedelta(minutes=7)  # bytes no other test stores
    first = make_pack(tenant_a, now=stamp)
    with open(services.report_storage().path(first.zip_file.name), "ab") as handle:
        handle.write(b"tampered")
    second = make_pack(tenant_a, now=stamp)
    assert second.zip_sha256 == first.zip_sha256
    # Both versions name the same bytes, and both are served again.
    assert hashlib.sha256(report_file_read(report=second, fmt="zip")).hexdigest() == (
        second.zip_sha256
    )
    assert report_file_read(report=first, fmt="zip") == report_file_read(report=second, fmt="zip")


def test_the_job_kind_refuses_bad_parameters_before_anything_runs(tenant_a, sent):
    for parameters, field in (
        ({**PACK, "framework": "no-such-framework"}, "parameters.framework"),
        ({**PACK, "to": "2026-09-01"}, "parameters.to"),
        ({"framework": "eu-ai-act"}, "parameters.from"),
    ):
        with pytest.raises(ValidationError) as refused:
            job_services.job_submit(
                tenant=tenant_a, kind="compliance_evidence_pack", parameters=parameters
            )
        assert field in refused.value.message_dict
    with tenant_scope(tenant_a.id):
        assert not JobRun.objects.exists()
