"""The readiness pages of the client portal: each state of the overview (no framework, no score,
a draft, scored with and without the peer band, the trend), the questionnaire (start from the
last submitted answers, partial saves a pillar at a time, submit, read-only afterwards), who
may write (admins and members, MSP staff on the client's behalf; never viewers or analysts),
the same 404 for foreign and missing tenants on every route, and query counts that do not grow
with the answers or the snapshots."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from operations.jobs.models import JobRun
from operations.readiness import selectors, services
from operations.readiness.models import (
    AssessmentAnswer,
    AssessmentStatus,
    ReadinessFramework,
    ReadinessScore,
)
from operations.readiness.portal import urls as readiness_portal_urls
from operations.readiness.portal.forms import field_names
from operations.readiness.portal.views import link_href
from tenants import services as tenant_services
from tenants.models import MspRole, OnboardingStep, TenantRole, TenantStatus
from tenants.portal.access import PortalTenant
from tenants.scoping import tenant_scope
from tenants.selectors import TenantAccess
from tests.factories import TenantFactory, login_verified, make_member, make_staff
from tests.jobs.conftest import deliver
from tests.readiness.builders_core import (
    question_keys,
    rescored,
    score_with_pillars,
    submitted_assessment,
)

pytestmark = pytest.mark.django_db

ROUTES = ("overview", "assessment", "start", "submit", "rescore")


def url(name: str, tenant, **kwargs) -> str:
    slug = tenant if isinstance(tenant, str) else tenant.slug
    return reverse(f"portal_readiness:{name}", kwargs={"slug": slug, **kwargs})


def pillar_url(tenant, pillar: str) -> str:
    return url("pillar-save", tenant, pillar=pillar)


def signed_in(client, tenant, role=TenantRole.ADMIN, username="acme-user"):
    user = make_member(tenant, role, username=username)
    client.force_login(user)
    return user


def pillar_questions(framework, pillar: str) -> list[str]:
    found = next(row for row in framework.definition["pillars"] if row["key"] == pillar)
    return [question["key"] for question in found["questions"]]


def pillar_post(pillar: str, answers: dict[str, tuple]) -> dict:
    """Form data for one pillar: {question key: (value, note, evidence)}."""
    data = {}
    for key, (value, note, evidence) in answers.items():
        value_name, note_name, evidence_name = field_names(key)
        if value is not None:
            data[f"{pillar}-{value_name}"] = str(value)
        data[f"{pillar}-{note_name}"] = note
        data[f"{pillar}-{evidence_name}"] = evidence
    return data


def answers_of(tenant, assessment) -> dict[str, AssessmentAnswer]:
    with tenant_scope(tenant.id):
        return {
            answer.question_key: answer
            for answer in AssessmentAnswer.objects.filter(assessment=assessment).select_related(
                "answered_by"
            )
        }


def draft_of(tenant):
    with tenant_scope(tenant.id):
        return selectors.assessment_draft(tenant=tenant)


def text_of(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# --- The gate ------------------------------------------------------------------------------------


def test_every_readiness_page_goes_through_the_portal_gate():
    for pattern in readiness_portal_urls.urlpatterns:
        assert getattr(pattern.callback, "portal_tenant_view", False), pattern.name


def test_the_navigation_links_the_readiness_page(client, tenant_a, framework):
    signed_in(client, tenant_a)
    response = client.get(reverse("portal:overview", args=[tenant_a.slug]))
    assert f'href="{url("overview", tenant_a)}"' in response.content.decode()


@pytest.mark.parametrize("method", ["get", "post"])
def test_every_route_answers_404_for_a_foreign_and_a_missing_tenant(
    client, method, tenant_a, tenant_b, framework
):
    signed_in(client, tenant_b, username="borealis-admin")
    with tenant_scope(tenant_a.id):
        draft = services.assessment_start(tenant=tenant_a)
    targets = [url(name, slug) for name in ROUTES for slug in (tenant_a, "no-such-tenant")]
    targets += [pillar_url(slug, "strategy") for slug in (tenant_a, "no-such-tenant")]
    for target in targets:
        response = getattr(client, method)(target, pillar_post("strategy", {}))
        assert response.status_code == 404, target
        assert "Acme" not in response.content.decode()
    # Nothing of tenant A changed.
    assert answers_of(tenant_a, draft) == {}
    assert draft_of(tenant_a).pk == draft.pk
    assert scan_runs(tenant_a) == []


# --- The overview's states -----------------------------------------------------------------------


def test_without_a_framework_the_page_says_readiness_is_not_set_up(client, tenant_a, framework):
    ReadinessFramework.objects.all().delete()
    signed_in(client, tenant_a)
    response = client.get(url("overview", tenant_a))
    assert response.status_code == 200
    assert "Readiness is not set up yet" in text_of(response)


def test_without_a_score_an_admin_is_asked_to_start_the_assessment(client, tenant_a, framework):
    signed_in(client, tenant_a)
    response = client.get(url("overview", tenant_a))
    text = text_of(response)
    assert "No readiness score yet" in text
    assert f'action="{url("start", tenant_a)}"' in text
    # The maturity levels are explained before there is a score.
    for level in framework.definition["levels"]:
        assert level["name"] in text


def test_without_a_score_a_viewer_is_told_who_answers(client, tenant_a, framework):
    signed_in(client, tenant_a, TenantRole.VIEWER)
    text = text_of(client.get(url("overview", tenant_a)))
    assert "No readiness score yet" in text
    assert "A tenant admin or member answers the readiness assessment" in text
    assert url("start", tenant_a) not in text


def test_a_draft_in_progress_shows_its_progress(client, tenant_a, framework):
    signed_in(client, tenant_a)
    with tenant_scope(tenant_a.id):
        draft = services.assessment_start(tenant=tenant_a)
        services.assessment_answer(
            tenant=tenant_a, assessment=draft, question_key="strategy.vision", value=2
        )
    text = text_of(client.get(url("overview", tenant_a)))
    assert "An assessment is in progress" in text
    assert "1 of 26" in text
    assert "Finish and submit the assessment in progress" in text


def test_a_score_shows_level_radar_signals_and_actions(client, tenant_a, framework):
    signed_in(client, tenant_a)
    submitted_assessment(tenant_a, framework, value=2)
    score = rescored(tenant_a)

    response = client.get(url("overview", tenant_a))
    text = text_of(response)
    report = response.context["report"]
    assert report["id"] == score.pk
    assert f"Level {score.level} · {report['level']['name']}" in text
    assert report["level"]["meaning"].strip()[:60] in text
    assert str(score.overall) in text
    # The radar of the pillars, with its text equivalent; no peers, and why.
    assert 'id="readiness-radar"' in text
    for pillar in report["pillars"]:
        assert pillar["title"] in text
    assert "No peer band: no industry is recorded" in text or "No peer band: fewer than" in text
    # Every signal of the framework, "no data" where the estate holds none.
    for signal in framework.definition["signals"]:
        assert signal["title"] in text
    assert "no data" in text
    # The actions, each linked to what fixes it; questions link to the questionnaire.
    assert 1 <= len(report["actions"]) <= 5
    for action in report["actions"]:
        assert action["title"] in text
        if action["kind"] == "question":
            assert action["href"] == f"{url('assessment', tenant_a)}#q-{action['key']}"
            assert f'href="{action["href"]}"' in text
    # One score: no trend yet, and the page says when it comes.
    assert response.context["trend"] is None
    assert "The trend appears with the second score" in text


def test_a_score_without_an_assessment_asks_for_one_first(client, tenant_a, framework):
    signed_in(client, tenant_a)
    rescored(tenant_a)
    response = client.get(url("overview", tenant_a))
    first = response.context["report"]["actions"][0]
    assert first["kind"] == "assessment"
    assert first["href"] == url("assessment", tenant_a)
    assert "strategy, talent and culture count 0" in text_of(response)


def test_the_trend_draws_the_overall_score_over_time(client, tenant_a, framework):
    signed_in(client, tenant_a)
    for overall in (30, 45, 52):
        score_with_pillars(tenant_a, framework, {"strategy": overall}, overall=overall)
    response = client.get(url("overview", tenant_a))
    trend = response.context["trend"]
    assert [row[1] for row in trend["chart"].table.rows] == ["30", "45", "52"]
    text = text_of(response)
    assert 'id="readiness-trend"' in text
    assert "From 30.0 on" in text
    assert "to 52.0 now" in text


def test_the_peer_band_shows_with_five_peers_and_not_with_four(client, framework):
    tenant = TenantFactory(slug="own-co", industry="Insurance")
    peers = [TenantFactory(slug=f"peer-{i}", industry="Insurance") for i in range(5)]
    for i, peer in enumerate(peers[:4]):
        score_with_pillars(peer, framework, {"strategy": 40 + i * 10, "data": 50})
    score_with_pillars(tenant, framework, {"strategy": 70, "data": 30})
    signed_in(client, tenant, username="own-admin")

    text = text_of(client.get(url("overview", tenant)))
    assert "No peer band: fewer than 5 other Insurance organisations" in text
    assert "Industry peers" not in text

    score_with_pillars(peers[4], framework, {"strategy": 90, "data": 50})
    response = client.get(url("overview", tenant))
    text = text_of(response)
    assert "The shaded band is the middle half of Insurance organisations" in text
    columns = response.context["radar"].table.columns
    assert "Industry peers (middle half) median" in columns
    # No peer's own tenant name or slug leaks into the page.
    for peer in peers:
        assert peer.name not in text
        assert peer.slug not in text


def test_signal_links_point_at_the_portal_page_of_their_object():
    assert link_href("acme", {"kind": "compute", "id": 3}) == "/portal/acme/estate/#compute"
    assert link_href("acme", {"kind": "ai_system", "id": 3}) == "/portal/acme/estate/#systems"
    assert link_href("acme", {"kind": "token", "id": 3}) == "/portal/acme/tokens/"
    assert (
        link_href("acme", {"kind": "framework", "id": "iso-42001"})
        == "/portal/acme/compliance/?framework=iso-42001"
    )
    assert link_href("acme", {"kind": "recommendation", "id": 9}) == (
        "/portal/acme/recommendations/"
    )
    # A kind without a portal page stays plain text.
    assert link_href("acme", {"kind": "cloud_account", "id": 1}) is None


# --- The questionnaire ---------------------------------------------------------------------------


def test_start_copies_the_last_submitted_answers(client, tenant_a, framework):
    user = signed_in(client, tenant_a)
    previous = submitted_assessment(tenant_a, framework, value=3)
    response = client.post(url("start", tenant_a))
    assert response.status_code == 302
    draft = draft_of(tenant_a)
    assert draft.based_on_id == previous.pk
    assert draft.started_by == user
    copied = answers_of(tenant_a, draft)
    assert set(copied) == set(question_keys(framework))
    assert {answer.value for answer in copied.values()} == {3}
    page = client.get(url("assessment", tenant_a))
    assert "from the answers of the last submitted assessment" in text_of(page)
    assert page.context["answered"] == 26


def test_saving_a_pillar_keeps_the_others_and_records_who_and_when(client, tenant_a, framework):
    user = signed_in(client, tenant_a, TenantRole.MEMBER, username="acme-member")
    client.post(url("start", tenant_a))
    draft = draft_of(tenant_a)
    strategy = pillar_questions(framework, "strategy")
    data = pillar_post(
        "strategy",
        {
            strategy[0]: (3, "Approved by the board in March.", "https://intranet.example/s"),
            strategy[1]: (1, "", ""),
        },
    )
    response = client.post(pillar_url(tenant_a, "strategy"), data)
    assert response.status_code == 302
    assert response["Location"].endswith("#pillar-strategy")
    saved = answers_of(tenant_a, draft)
    assert set(saved) == {strategy[0], strategy[1]}
    first = saved[strategy[0]]
    assert (first.value, first.note, first.evidence_url) == (
        3,
        "Approved by the board in March.",
        "https://intranet.example/s",
    )
    assert first.answered_by == user

    # The page shows the saved answers, who gave them, and the pillar's progress.
    page = client.get(url("assessment", tenant_a))
    text = text_of(page)
    assert "2 of 26" in text
    assert "by acme-member" in text or f"by {user.get_full_name()}" in text
    assert 'value="3" id="id_strategy-strategy__vision__value_3" checked' in text or (
        f'name="strategy-{field_names(strategy[0])[0]}" value="3"' in text and "checked" in text
    )

    # Saving another pillar later leaves strategy alone; an unchanged answer is not rewritten.
    data_pillar = pillar_questions(framework, "data")
    client.post(pillar_url(tenant_a, "data"), pillar_post("data", {data_pillar[0]: (2, "", "")}))
    again = pillar_post(
        "strategy",
        {
            strategy[0]: (3, "Approved by the board in March.", "https://intranet.example/s"),
            strategy[1]: (1, "", ""),
        },
    )
    client.post(pillar_url(tenant_a, "strategy"), again)
    after = answers_of(tenant_a, draft)
    assert set(after) == {strategy[0], strategy[1], data_pillar[0]}
    assert after[strategy[0]].answered_at == first.answered_at


def test_an_invalid_evidence_link_saves_nothing_and_says_why(client, tenant_a, framework):
    signed_in(client, tenant_a)
    client.post(url("start", tenant_a))
    strategy = pillar_questions(framework, "strategy")
    data = pillar_post("strategy", {strategy[0]: (2, "", "not a link at all")})
    response = client.post(pillar_url(tenant_a, "strategy"), data)
    assert response.status_code == 400
    assert "Nothing was saved" in text_of(response)
    assert answers_of(tenant_a, draft_of(tenant_a)) == {}


def test_an_unknown_pillar_saves_nothing(client, tenant_a, framework):
    signed_in(client, tenant_a)
    client.post(url("start", tenant_a))
    response = client.post(pillar_url(tenant_a, "astrology"), {})
    assert response.status_code == 302
    assert answers_of(tenant_a, draft_of(tenant_a)) == {}


def test_submit_needs_every_answer_then_locks_scores_and_completes_onboarding(
    client, tenant_a, framework
):
    tenant = tenant_services.tenant_transition(tenant=tenant_a, to_status=TenantStatus.ONBOARDING)
    user = signed_in(client, tenant)
    client.post(url("start", tenant))
    draft = draft_of(tenant)
    strategy = pillar_questions(framework, "strategy")
    client.post(
        pillar_url(tenant, "strategy"),
        pillar_post("strategy", dict.fromkeys(strategy, (2, "", ""))),
    )

    # Unanswered questions are listed; a submit is refused.
    page = client.get(url("submit", tenant))
    assert page.status_code == 200
    assert len(page.context["unanswered"]) == 26 - len(strategy)
    refused = client.post(url("submit", tenant), {"confirm": "on"})
    assert refused.status_code == 400
    assert draft_of(tenant).pk == draft.pk

    for pillar in framework.definition["pillars"]:
        keys = [question["key"] for question in pillar["questions"]]
        client.post(
            pillar_url(tenant, pillar["key"]),
            pillar_post(pillar["key"], dict.fromkeys(keys, (3, "", ""))),
        )
    # Without the confirmation, nothing is submitted.
    assert client.post(url("submit", tenant), {}).status_code == 400
    assert draft_of(tenant) is not None

    response = client.post(url("submit", tenant), {"confirm": "on"})
    assert response.status_code == 302
    assert response["Location"] == url("overview", tenant)
    with tenant_scope(tenant.id):
        submitted = selectors.assessment_last_submitted(tenant=tenant)
        assert submitted.pk == draft.pk
        assert submitted.status == AssessmentStatus.SUBMITTED
        assert submitted.submitted_by == user
        assert ReadinessScore.objects.filter(assessment=submitted).exists()
        step = OnboardingStep.objects.get(key="baseline_readiness")
    assert step.done
    assert draft_of(tenant) is None

    # Read-only afterwards: no forms, a save is refused, the next assessment starts from it.
    page = client.get(url("assessment", tenant))
    assert page.context["editable"] is False
    assert 'type="radio"' not in page.content.decode()
    assert "Start assessment" in text_of(page)
    client.post(pillar_url(tenant, "strategy"), pillar_post("strategy", {strategy[0]: (0, "", "")}))
    assert answers_of(tenant, submitted)[strategy[0]].value == 3
    client.post(url("start", tenant))
    assert draft_of(tenant).based_on_id == submitted.pk
    overview = client.get(url("overview", tenant))
    assert overview.context["report"]["assessment"] == submitted.pk


# --- Rescore now ---------------------------------------------------------------------------------


def words_of(response) -> str:
    """The page's text without its tags."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def scan_runs(tenant) -> list[JobRun]:
    with tenant_scope(tenant.id):
        return list(JobRun.objects.filter(kind="readiness_scan").order_by("id"))


def test_rescore_now_runs_a_scan_job_and_the_overview_shows_the_run_and_result(
    client, tenant_a, tenant_b, framework, sent, committed
):
    user = signed_in(client, tenant_a)
    submitted_assessment(tenant_a, framework, value=3)
    before = rescored(tenant_a)
    page = client.get(url("overview", tenant_a))
    assert f'action="{url("rescore", tenant_a)}"' in page.content.decode()
    assert 'id="last-scan"' not in page.content.decode()  # no scan has run yet

    with committed():
        response = client.post(url("rescore", tenant_a))
    assert response.status_code == 302
    assert response["Location"] == url("overview", tenant_a) + "#last-scan"
    [run] = scan_runs(tenant_a)
    # The same service as the API's and the admin's "rescore now": a user-triggered job run.
    assert (run.tenant_id, run.trigger, run.triggered_by_user, run.status) == (
        tenant_a.id,
        "user",
        user,
        "queued",
    )
    assert [message["kwargs"]["run_id"] for message in sent] == [run.pk]  # sent on commit
    queued = words_of(client.get(url("overview", tenant_a)))
    assert f"Readiness scan queued as job run {run.pk}" in queued
    assert f"Latest readiness scan: job run {run.pk}, queued " in queued
    assert "asked for by acme-user" in queued

    assert deliver(run) == "succeeded"
    with tenant_scope(tenant_a.id):
        snapshot = ReadinessScore.objects.get(job_run_id=run.pk)
    assert snapshot.pk != before.pk
    done = client.get(url("overview", tenant_a))
    assert done.context["score"].pk == snapshot.pk
    text = words_of(done)
    assert f"Latest readiness scan: job run {run.pk}, succeeded " in text
    assert f"Result: overall {snapshot.overall} , level {snapshot.level}." in text
    assert scan_runs(tenant_b) == []


@pytest.mark.parametrize(
    ("role", "staff", "allowed"),
    [
        (TenantRole.MEMBER, False, True),
        (TenantRole.VIEWER, False, False),
        (MspRole.ENGINEER, True, True),
        (MspRole.ANALYST, True, False),
    ],
)
def test_rescore_now_needs_the_same_permission_as_the_api(
    client, tenant_a, framework, sent, role, staff, allowed
):
    if staff:
        login_verified(client, make_staff(tenant_a, role=role, username=f"staff-{role}"))
    else:
        signed_in(client, tenant_a, role, username=f"acme-{role}")
    page = client.get(url("overview", tenant_a)).content.decode()
    assert (f'action="{url("rescore", tenant_a)}"' in page) is allowed
    response = client.post(url("rescore", tenant_a))
    assert response.status_code == (302 if allowed else 403)
    assert len(scan_runs(tenant_a)) == (1 if allowed else 0)


def test_rescore_now_is_a_post(client, tenant_a, framework, sent):
    signed_in(client, tenant_a)
    assert client.get(url("rescore", tenant_a)).status_code == 405
    assert scan_runs(tenant_a) == []


# --- Who may write -------------------------------------------------------------------------------


def test_a_viewer_reads_but_cannot_write(client, tenant_a, framework):
    signed_in(client, tenant_a, TenantRole.VIEWER, username="acme-viewer")
    with tenant_scope(tenant_a.id):
        draft = services.assessment_start(tenant=tenant_a)
    page = client.get(url("assessment", tenant_a))
    assert page.status_code == 200
    assert page.context["editable"] is False
    assert 'type="radio"' not in page.content.decode()
    assert url("submit", tenant_a) not in page.content.decode()

    strategy = pillar_questions(framework, "strategy")
    assert client.post(url("start", tenant_a)).status_code == 403
    saved = client.post(
        pillar_url(tenant_a, "strategy"), pillar_post("strategy", {strategy[0]: (4, "", "")})
    )
    assert saved.status_code == 403
    assert client.get(url("submit", tenant_a)).status_code == 403
    assert client.post(url("submit", tenant_a), {"confirm": "on"}).status_code == 403
    assert answers_of(tenant_a, draft) == {}


def test_a_client_of_a_suspended_tenant_cannot_answer(client, framework):
    tenant = TenantFactory(slug="paused-co", status=TenantStatus.SUSPENDED)
    signed_in(client, tenant, username="paused-admin")
    assert client.post(url("start", tenant)).status_code == 403
    assert draft_of(tenant) is None


def test_an_engineer_answers_on_the_clients_behalf(client, tenant_a, framework):
    engineer = make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-on-behalf")
    login_verified(client, engineer)
    assert client.post(url("start", tenant_a)).status_code == 302
    draft = draft_of(tenant_a)
    assert draft.started_by == engineer
    strategy = pillar_questions(framework, "strategy")
    response = client.post(
        pillar_url(tenant_a, "strategy"),
        pillar_post("strategy", {strategy[0]: (2, "Answered in the quarterly review.", "")}),
    )
    assert response.status_code == 302
    assert answers_of(tenant_a, draft)[strategy[0]].answered_by == engineer
    assert client.get(url("assessment", tenant_a)).context["editable"] is True


def test_an_analyst_reads_but_cannot_answer(client, tenant_a, framework):
    analyst = make_staff(tenant_a, role=MspRole.ANALYST, username="analyst-reads")
    login_verified(client, analyst)
    assert client.get(url("assessment", tenant_a)).status_code == 200
    response = client.post(url("start", tenant_a))
    assert response.status_code == 403
    assert "an engineer or an MSP admin can do this" in text_of(response)
    assert draft_of(tenant_a) is None


@pytest.mark.parametrize(
    ("role", "status", "answer", "staff_write", "write"),
    [
        (TenantRole.ADMIN, TenantStatus.ACTIVE, True, False, True),
        (TenantRole.MEMBER, TenantStatus.ACTIVE, True, False, True),
        (TenantRole.VIEWER, TenantStatus.ACTIVE, False, False, False),
        (TenantRole.ADMIN, TenantStatus.SUSPENDED, False, False, False),
        (MspRole.ADMIN, TenantStatus.ACTIVE, True, True, True),
        (MspRole.ENGINEER, TenantStatus.SUSPENDED, True, True, True),
        (MspRole.ANALYST, TenantStatus.ACTIVE, False, False, False),
    ],
)
def test_the_answer_capability(role, status, answer, staff_write, write):
    tenant = TenantFactory.build(status=status)
    access = TenantAccess(tenant=tenant, role=role)
    assert access.allows("answer") is answer
    # The capabilities that were there keep their meaning.
    assert access.allows("staff_write") is staff_write
    assert access.allows("write") is write
    # Staff pass a portal page that asks for "answer" only with a write role; clients the same.
    assert PortalTenant(access=access, write_capability="answer").can_edit is answer
    # A page asking for "write" still refuses every staff member.
    expected = write and role not in MspRole.values
    assert PortalTenant(access=access, write_capability="write").can_edit is expected


# --- Query counts --------------------------------------------------------------------------------


def _queries(client, target) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(target)
    assert response.status_code == 200
    return len(captured)


def test_the_questionnaire_runs_the_same_queries_for_few_and_many_answers(
    client, tenant_a, framework
):
    signed_in(client, tenant_a)
    client.post(url("start", tenant_a))
    draft = draft_of(tenant_a)
    keys = question_keys(framework)
    with tenant_scope(tenant_a.id):
        services.assessment_answer(tenant=tenant_a, assessment=draft, question_key=keys[0], value=1)
    few = _queries(client, url("assessment", tenant_a))
    user = make_member(tenant_a, TenantRole.MEMBER, username="second-answerer")
    with tenant_scope(tenant_a.id):
        for key in keys:
            services.assessment_answer(
                tenant=tenant_a, assessment=draft, question_key=key, value=4, note="n", user=user
            )
    many = _queries(client, url("assessment", tenant_a))
    assert many == few
    assert client.get(url("assessment", tenant_a)).context["answered"] == len(keys)


def test_the_overview_runs_the_same_queries_for_few_and_many_snapshots(client, tenant_a, framework):
    signed_in(client, tenant_a)
    submitted_assessment(tenant_a, framework, value=2)
    rescored(tenant_a)
    rescored(tenant_a)
    few = _queries(client, url("overview", tenant_a))
    for _ in range(8):
        rescored(tenant_a)
    assert _queries(client, url("overview", tenant_a)) == few
