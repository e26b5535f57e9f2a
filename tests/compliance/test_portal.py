"""The compliance page of the client portal: latest scores per framework with their trend,
finding counts, failing findings by severity with waived ones marked, the waivers in force, the
framework filter; read-only for everyone, the same 404 for foreign and missing tenants, and a
query count that does not grow with the findings, scores or waivers."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from operations.compliance import services
from operations.compliance.models import Finding, FindingStatus, Score, Waiver
from operations.compliance.portal import urls as compliance_portal_urls
from operations.compliance.portal.views import score_trend
from operations.compliance.selectors import (
    checks_for_framework,
    findings_with_effective_status,
    findings_with_waiver_state,
    waivers_with_subject_label,
)
from tenants.models import MspRole, TenantRole
from tenants.scoping import tenant_scope
from tests.compliance.builders import good_deployment, good_system, high_system
from tests.factories import login_verified, make_member, make_staff
from tests.portal.svg import drawn_lines

pytestmark = pytest.mark.django_db

OWNER = "ai_system.accountable_owner"  # high severity, maps to iso-42001 among others
DOCUMENTATION = "ai_system.technical_documentation"
MONITORING = "deployment.monitoring"
# Session (kept in the database so sign-in survives a Redis outage), user, whether sign-in
# needs a second factor, tenant, frameworks, score history, failing findings, waivers in
# force, counts; on PostgreSQL the tenant scope adds its savepoint, two set_config calls and
# the release.
# +1 on every page for the viewer's time zone (their tenant's plan).
QUERY_BUDGET = {"postgresql": 14}.get(connection.vendor, 10)


def page_url(tenant, **params) -> str:
    url = reverse("portal_compliance:overview", kwargs={"slug": tenant.slug})
    if params:
        url += "?" + "&".join(f"{key}={value}" for key, value in params.items())
    return url


def waive(tenant, check_code, subject=None, *, days=30, subject_type="ai_system", **fields):
    with tenant_scope(tenant.id):
        return Waiver.objects.create(
            tenant=tenant,
            check_code=check_code,
            subject_type=subject_type if subject is not None else "",
            subject_id=subject.pk if subject is not None else None,
            reason=fields.get("reason", "Accepted while the owner is recruited."),
            approved_by=fields.get("approved_by", "CISO"),
            expires_at=timezone.now() + dt.timedelta(days=days),
        )


@pytest.fixture
def viewer(client, tenant_a):
    client.force_login(make_member(tenant_a, TenantRole.VIEWER, username="acme-viewer"))
    return client


@pytest.fixture
def scanned(tenant_a, tenant_b):
    """Tenant A: an ownerless system (waived), an undocumented high-risk system (failing), a
    deployment without monitoring (failing), and passing findings. Tenant B: its own failure."""
    ownerless = good_system(tenant_a, business_owner="", name="Ownerless scorer")
    high_system(tenant_a, technical_documentation_url="", name="Undocumented triage")
    good_deployment(tenant_a, monitoring_enabled=False, name="unmonitored-prod")
    waive(tenant_a, OWNER, ownerless, days=20, reason="Owner joins next month.")
    services.compliance_run_for_tenant(tenant=tenant_a)
    good_system(tenant_b, business_owner="", name="Borealis secret system")
    services.compliance_run_for_tenant(tenant=tenant_b)
    return ownerless


def test_every_compliance_page_goes_through_the_portal_gate():
    for pattern in compliance_portal_urls.urlpatterns:
        assert getattr(pattern.callback, "portal_tenant_view", False), pattern.name


def test_the_page_shows_scores_counts_failing_findings_and_waivers(viewer, tenant_a, scanned):
    response = viewer.get(page_url(tenant_a))

    assert response.status_code == 200
    text = response.content.decode()
    context = response.context
    # The latest score of each framework in scope.
    with tenant_scope(tenant_a.id):
        newest = {
            score.framework.code: score
            for score in Score.objects.filter(tenant=tenant_a).select_related("framework")
        }
    assert {row["framework"].code for row in context["scores"]} == set(newest)
    for row in context["scores"]:
        assert row["latest"].pk == newest[row["framework"].code].pk
        assert f"{row['latest'].pass_rate} %" in text
    # Counts agree with the API's reading of the same findings.
    with tenant_scope(tenant_a.id):
        annotated = findings_with_waiver_state(Finding.objects.filter(tenant=tenant_a))
        expected = {
            "failing": findings_with_effective_status(annotated, FindingStatus.FAIL).count(),
            "waived": findings_with_effective_status(annotated, "waived").count(),
            "passing": findings_with_effective_status(annotated, FindingStatus.PASS).count(),
        }
    assert context["counts"] == expected
    assert expected["waived"] == 1
    assert expected["failing"] >= 2
    assert expected["passing"] > 0
    # Failing findings grouped by severity, most severe first, waived ones marked.
    severities = [group.value for group in context["groups"]]
    assert severities == sorted(severities, key=["critical", "high", "medium", "low"].index)
    listed = {(f.check_code, f.subject_label): f for g in context["groups"] for f in g.findings}
    assert listed[(OWNER, "Ownerless scorer")].waived is True
    assert listed[(DOCUMENTATION, "Undocumented triage")].waived is False
    assert "iso-42001:A.3.2" in listed[(OWNER, "Ownerless scorer")].controls
    for expected_text in ("Undocumented triage", "unmonitored-prod", "Waived", "Owner joins"):
        assert expected_text in text
    expiry = listed[(OWNER, "Ownerless scorer")].waiver_expires_at
    assert f"until {expiry:%-d %b %Y}" in text
    # The waiver in force, with the waived subject's name.
    assert [(w.check_code, w.subject_label) for w in context["waivers"]] == [
        (OWNER, "Ownerless scorer")
    ]
    assert "Borealis" not in text
    assert "<caption" in text
    # Reached through the project's navigation, marked as the current page.
    assert 'aria-current="page">Compliance</a>' in text


def test_a_finding_waived_by_an_expired_waiver_fails_again(viewer, tenant_a, scanned):
    with tenant_scope(tenant_a.id):
        Waiver.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    context = viewer.get(page_url(tenant_a)).context
    assert context["counts"]["waived"] == 0
    assert context["waivers"] == []
    owner = [f for g in context["groups"] for f in g.findings if f.check_code == OWNER]
    assert [f.waived for f in owner] == [False]


def test_a_waiver_of_every_subject_marks_each_failing_one(viewer, tenant_a):
    good_system(tenant_a, business_owner="", name="First")
    good_system(tenant_a, business_owner="", name="Second")
    services.compliance_run_for_tenant(tenant=tenant_a)
    waive(tenant_a, OWNER, days=5)
    response = viewer.get(page_url(tenant_a))
    owner = [f for g in response.context["groups"] for f in g.findings if f.check_code == OWNER]
    assert sorted((f.subject_label, f.waived) for f in owner) == [
        ("First", True),
        ("Second", True),
    ]
    assert "All subjects" in response.content.decode()


def test_the_framework_filter_narrows_scores_findings_and_controls(viewer, tenant_a, scanned):
    response = viewer.get(page_url(tenant_a, framework="iso-42001"))
    context = response.context
    assert context["chosen"].code == "iso-42001"
    assert [row["framework"].code for row in context["scores"]] == ["iso-42001"]
    findings = [f for g in context["groups"] for f in g.findings]
    assert findings
    for finding in findings:
        assert finding.controls
        assert all(control.startswith("iso-42001:") for control in finding.controls)
    # Controls of other frameworks are not listed.
    all_frameworks = viewer.get(page_url(tenant_a)).context
    everything = [f for g in all_frameworks["groups"] for f in g.findings]
    assert any(not control.startswith("iso-42001:") for f in everything for control in f.controls)
    # An unknown framework shows everything rather than an empty page.
    unknown = viewer.get(page_url(tenant_a, framework="nope")).context
    assert unknown["chosen"] is None
    assert len(unknown["scores"]) == len(all_frameworks["scores"]) > 1


def test_the_trend_follows_the_score_history(viewer, tenant_a):
    system = good_system(tenant_a, business_owner="", name="Fixed later")
    services.compliance_run_for_tenant(tenant=tenant_a)
    with tenant_scope(tenant_a.id):
        type(system).objects.filter(pk=system.pk).update(business_owner="Head of Risk")
    services.compliance_run_for_tenant(tenant=tenant_a)

    response = viewer.get(page_url(tenant_a, framework="iso-42001"))
    (row,) = response.context["scores"]
    with tenant_scope(tenant_a.id):
        history = list(
            Score.objects.filter(tenant=tenant_a, framework=row["framework"]).order_by(
                "computed_at", "id"
            )
        )
    assert row["trend"].values == tuple(score.score for score in history)
    assert history[-1].score > history[0].score
    assert row["trend"].direction == "up"
    text = response.content.decode()
    assert 'data-chart="sparkline"' in text
    assert f"up {history[-1].score - history[0].score} points" in text


def test_score_trend_maps_scores_onto_the_box_and_skips_unassessed():
    scores = [Score(score=Decimal("0")), Score(score=None), Score(score=Decimal("100"))]
    trend = score_trend(scores)
    assert trend.values == (Decimal("0"), Decimal("100"))
    ((low, high),) = drawn_lines(trend.chart.svg)
    assert low[1] > high[1]  # 0 at the bottom of the box, 100 at the top
    assert [row[1] for row in trend.chart.table.rows] == ["0 %", "100 %"]
    assert (trend.direction, trend.magnitude) == ("up", Decimal("100"))
    single = score_trend([Score(score=Decimal("50"))])
    assert (single.chart, single.change, single.direction) == (None, None, "steady")


def test_waiver_subject_label_matches_the_subject_type_or_any_when_blank(tenant_a, scanned):
    with tenant_scope(tenant_a.id):
        Waiver.objects.update(subject_type="")
        (blank,) = waivers_with_subject_label(Waiver.objects.all())
        Waiver.objects.update(subject_type="deployment")
        (other_type,) = waivers_with_subject_label(Waiver.objects.all())
    assert blank.subject_label == "Ownerless scorer"
    assert other_type.subject_label is None


def test_another_tenants_page_is_the_same_404_as_a_missing_one(viewer, tenant_b, scanned):
    foreign = viewer.get(page_url(tenant_b))
    missing = viewer.get(reverse("portal_compliance:overview", kwargs={"slug": "nope"}))
    assert foreign.status_code == missing.status_code == 404
    scrub = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    assert scrub.sub("", foreign.content.decode()) == scrub.sub("", missing.content.decode())
    assert "Borealis" not in foreign.content.decode()


def test_the_page_is_read_only_even_for_a_tenant_admin(client, admin_a, tenant_a, scanned):
    client.force_login(admin_a.user)
    assert client.get(page_url(tenant_a)).status_code == 200
    before = list(Waiver.objects.unscoped().values_list("id", "expires_at"))
    assert client.post(page_url(tenant_a), {"expires_at": "2000-01-01"}).status_code == 403
    assert list(Waiver.objects.unscoped().values_list("id", "expires_at")) == before


def test_staff_see_their_assigned_tenants_page_read_only(client, engineer_a, tenant_a, tenant_b):
    good_system(tenant_a, business_owner="", name="Staff can see this")
    services.compliance_run_for_tenant(tenant=tenant_a)
    login_verified(client, engineer_a.user)
    response = client.get(page_url(tenant_a))
    assert response.status_code == 200
    text = response.content.decode()
    assert "Staff can see this" in text
    assert "Read-only staff view" in text
    assert client.post(page_url(tenant_a)).status_code == 403
    assert client.get(page_url(tenant_b)).status_code == 404


def test_the_page_runs_the_same_queries_for_a_small_and_a_large_record(
    viewer, tenant_a, django_assert_max_num_queries
):
    def queries(**params) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert viewer.get(page_url(tenant_a, **params)).status_code == 200
        return len(captured)

    system = good_system(tenant_a, business_owner="")
    waive(tenant_a, OWNER, system)
    services.compliance_run_for_tenant(tenant=tenant_a)
    small = queries()
    small_filtered = queries(framework="eu-ai-act")
    with django_assert_max_num_queries(QUERY_BUDGET):
        assert viewer.get(page_url(tenant_a)).status_code == 200

    for number in range(10):
        system = high_system(tenant_a, business_owner="", name=f"Many {number}", human_overseer="")
        good_deployment(tenant_a, monitoring_enabled=False, runbook_url="")
        waive(tenant_a, OWNER, system)
        waive(tenant_a, MONITORING, days=number + 1)
        services.compliance_run_for_tenant(tenant=tenant_a)

    response = viewer.get(page_url(tenant_a))
    assert sum(len(group.findings) for group in response.context["groups"]) > 30
    assert len(response.context["waivers"]) > 10
    assert max(len(row["trend"].values) for row in response.context["scores"]) > 5
    with django_assert_max_num_queries(QUERY_BUDGET):
        assert viewer.get(page_url(tenant_a)).status_code == 200
    assert queries() == small
    assert queries(framework="eu-ai-act") == small_filtered


def test_a_tenant_never_scanned_sees_empty_states(viewer, tenant_a):
    response = viewer.get(page_url(tenant_a))
    text = response.content.decode()
    assert response.context["scores"]
    assert all(row["latest"] is None for row in response.context["scores"])
    assert "Not scored yet." in text
    assert "No failing findings." in text
    assert "No waivers in force." in text
    assert response.context["counts"] == {"failing": 0, "waived": 0, "passing": 0}


def test_a_long_list_of_failing_findings_is_capped_most_severe_first(
    viewer, tenant_a, scanned, monkeypatch
):
    from operations.compliance.portal import views

    monkeypatch.setattr(views, "FINDINGS_SHOWN", 2)
    response = viewer.get(page_url(tenant_a))
    shown = [f for g in response.context["groups"] for f in g.findings]
    assert len(shown) == 2
    assert response.context["counts"]["failing"] + response.context["counts"]["waived"] > 2
    assert "Showing the first 2 failing findings" in response.content.decode()
    ranks = ["critical", "high", "medium", "low"]
    with tenant_scope(tenant_a.id):
        worst = min(
            ranks.index(severity)
            for severity in Finding.objects.filter(status=FindingStatus.FAIL).values_list(
                "severity", flat=True
            )
        )
    assert ranks.index(shown[0].severity) == worst


def evidence_url(tenant) -> str:
    return reverse("portal_compliance:evidence-pack", kwargs={"slug": tenant.slug})


def test_tenant_admins_generate_the_pack_and_staff_download_it_from_the_page(
    client, admin_a, tenant_a, scanned
):
    client.force_login(admin_a.user)
    page = client.get(page_url(tenant_a, framework="eu-ai-act")).content.decode()
    # Tenant admins ask the job engine for a stored pack (tests/reports/test_evidence_packs.py).
    assert "Generate evidence pack" in page
    stored = reverse("portal_reports:evidence-pack-request", kwargs={"slug": tenant_a.slug})
    assert f'action="{stored}"' in page
    assert '<option value="eu-ai-act" selected>' in page
    # MSP staff read the portal only: they download a pack built on the spot.
    login_verified(client, make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-evidence"))
    page = client.get(page_url(tenant_a, framework="eu-ai-act")).content.decode()
    assert "Download evidence pack" in page
    assert f'action="{evidence_url(tenant_a)}"' in page

    today = timezone.localdate()
    response = client.get(
        evidence_url(tenant_a),
        {"framework": "eu-ai-act", "from": str(today - dt.timedelta(days=1)), "to": str(today)},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        findings = archive.read("findings.csv").decode()
        everything = "".join(archive.read(name).decode() for name in archive.namelist())
    assert "Ownerless scorer" in findings
    assert "Borealis" not in everything


def test_bad_evidence_input_comes_back_as_a_message(client, admin_a, tenant_a):
    client.force_login(admin_a.user)
    response = client.get(
        evidence_url(tenant_a),
        {"framework": "no-such-framework", "from": "2026-01-01", "to": "2026-01-31"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == page_url(tenant_a)
    assert "No evidence pack: Unknown framework" in response.content.decode()


def test_viewers_see_no_evidence_button_and_are_refused_it(viewer, tenant_a, tenant_b):
    shown = viewer.get(page_url(tenant_a)).content.decode()
    assert "Download evidence pack" not in shown
    assert "Generate evidence pack" not in shown
    query = {"framework": "eu-ai-act", "from": "2026-01-01", "to": "2026-01-31"}
    assert viewer.get(evidence_url(tenant_a), query).status_code == 403
    assert viewer.get(evidence_url(tenant_b), query).status_code == 404


def test_the_findings_download_as_csv_for_the_chosen_framework(viewer, tenant_a, scanned):
    page = viewer.get(page_url(tenant_a, framework="eu-ai-act")).content.decode()
    link = reverse("portal_compliance:findings-csv", kwargs={"slug": tenant_a.slug})
    assert f'href="{link}?framework=eu-ai-act"' in page
    response = viewer.get(link, {"framework": "eu-ai-act"})
    assert response.status_code == 200
    body = response.getvalue().decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    with tenant_scope(tenant_a.id):
        expected = set(
            Finding.objects.filter(check_code__in=checks_for_framework("eu-ai-act")).values_list(
                "id", flat=True
            )
        )
    assert {int(row["id"]) for row in rows} == expected
    waived = [r for r in rows if r["check"] == OWNER and r["subject id"] == str(scanned.pk)]
    assert [row["status"] for row in waived] == ["waived"]
    assert "Borealis" not in body
    other = reverse("portal_compliance:findings-csv", kwargs={"slug": "borealis"})
    assert viewer.get(other).status_code == 404
