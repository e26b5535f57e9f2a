"""The readiness API: frameworks, assessments (start, answer, submit, 409 once submitted),
scores (trend, latest explained, rescore now), the benchmark; roles; the isolation harness on
every route."""

from __future__ import annotations

import pytest

from operations.readiness.models import Assessment, AssessmentAnswer, ReadinessScore
from operations.readiness.services import readiness_rescore
from tenants.scoping import tenant_scope
from tests.factories import TenantFactory
from tests.isolation import MISSING_ID, TenantIsolationTests
from tests.readiness.builders_core import (
    question_keys,
    score_with_pillars,
    submitted_assessment,
)

pytestmark = pytest.mark.django_db


def base(tenant) -> str:
    return f"/api/v1/tenants/{tenant.slug}/readiness"


def put_answer(actor, tenant, assessment_id, key, value, **extra):
    return actor.client.put(
        f"{base(tenant)}/assessments/{assessment_id}/answers/{key}/",
        {"value": value, **extra},
        format="json",
    )


def test_frameworks_are_a_catalogue_with_the_whole_definition(admin_a, framework):
    listed = admin_a.client.get("/api/v1/readiness/frameworks/")
    assert listed.status_code == 200
    assert [row["version"] for row in listed.json()["results"]] == ["1.0"]
    detail = admin_a.client.get(f"/api/v1/readiness/frameworks/{framework.pk}/").json()
    assert len(detail["definition"]["pillars"]) == 7
    assert len(detail["definition"]["signals"]) == 17


def test_a_member_answers_and_submits_and_the_answers_are_then_locked(
    member_a, tenant_a, framework, sent
):
    started = member_a.client.post(f"{base(tenant_a)}/assessments/", {}, format="json")
    assert started.status_code == 201, started.content
    draft = started.json()
    assert (draft["status"], draft["progress"]["answered"]) == ("draft", 0)
    # A second draft is refused while this one is open.
    again = member_a.client.post(f"{base(tenant_a)}/assessments/", {}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"

    saved = put_answer(
        member_a,
        tenant_a,
        draft["id"],
        "strategy.vision",
        3,
        note="Approved by the board.",
        evidence_url="https://intranet.example.com/strategy",
    )
    assert saved.status_code == 200, saved.content
    assert saved.json()["answered_by"] == "acme-member"
    bad = put_answer(member_a, tenant_a, draft["id"], "strategy.vision", 9)
    assert bad.status_code == 400
    assert "value" in bad.json()["error"]["fields"]
    unknown = put_answer(member_a, tenant_a, draft["id"], "strategy.unknown", 1)
    assert unknown.status_code == 400

    early = member_a.client.post(f"{base(tenant_a)}/assessments/{draft['id']}/submit/")
    assert early.status_code == 400
    assert "25 of 26" in early.json()["error"]["fields"]["answers"][0]

    for key in question_keys(framework):
        assert put_answer(member_a, tenant_a, draft["id"], key, 2).status_code == 200
    submitted = member_a.client.post(f"{base(tenant_a)}/assessments/{draft['id']}/submit/")
    assert submitted.status_code == 200, submitted.content
    assert submitted.json()["status"] == "submitted"
    assert submitted.json()["progress"]["unanswered"] == []

    locked = put_answer(member_a, tenant_a, draft["id"], "strategy.vision", 4)
    assert locked.status_code == 409
    assert "can no longer change" in locked.json()["error"]["message"]
    resubmit = member_a.client.post(f"{base(tenant_a)}/assessments/{draft['id']}/submit/")
    assert resubmit.status_code == 409
    with tenant_scope(tenant_a.id):
        assert AssessmentAnswer.objects.get(question_key="strategy.vision").value == 2
        assert ReadinessScore.objects.count() == 1


def test_viewers_and_analysts_read_but_do_not_answer(viewer_a, analyst_a, tenant_a, framework):
    with tenant_scope(tenant_a.id):
        draft = Assessment.objects.create(tenant=tenant_a, framework=framework)
    for actor in (viewer_a, analyst_a):
        assert actor.client.get(f"{base(tenant_a)}/assessments/{draft.pk}/").status_code == 200
        assert put_answer(actor, tenant_a, draft.pk, "strategy.vision", 1).status_code == 403
        assert actor.client.post(f"{base(tenant_a)}/assessments/", {}).status_code == 403
        assert actor.client.post(f"{base(tenant_a)}/scores/rescore/").status_code == 403


def test_msp_staff_answer_on_the_tenants_behalf(engineer_a, tenant_a, framework):
    with tenant_scope(tenant_a.id):
        draft = Assessment.objects.create(tenant=tenant_a, framework=framework)
    response = put_answer(engineer_a, tenant_a, draft.pk, "talent.skills", 2)
    assert response.status_code == 200
    assert response.json()["answered_by"] == "eng-a"


def test_latest_explains_the_score_and_the_trend_lists_every_snapshot(
    admin_a, tenant_a, framework, django_assert_max_num_queries
):
    assert admin_a.client.get(f"{base(tenant_a)}/scores/latest/").status_code == 404
    submitted_assessment(tenant_a, framework, value=2)
    with tenant_scope(tenant_a.id):
        first = readiness_rescore(tenant=tenant_a)
        latest = readiness_rescore(tenant=tenant_a)
    with django_assert_max_num_queries(12):
        trend = admin_a.client.get(f"{base(tenant_a)}/scores/").json()["results"]
    assert [row["id"] for row in trend] == [latest.pk, first.pk]
    report = admin_a.client.get(f"{base(tenant_a)}/scores/latest/").json()
    assert report["id"] == latest.pk
    assert report["overall"] == str(latest.overall)
    level = next(lv for lv in framework.definition["levels"] if lv["level"] == latest.level)
    assert report["level"] == {k: level[k] for k in ("level", "name", "meaning")}
    strategy = next(p for p in report["pillars"] if p["key"] == "strategy")
    # Every answer 2 of 4; strategy has no signals.
    assert (strategy["score"], strategy["from_answers"], strategy["from_signals"]) == (
        50.0,
        50.0,
        None,
    )
    signal = next(s for s in report["signals"] if s["key"] == "mttr_90d")
    assert (signal["value"], signal["target"], signal["floor"]) == (None, 8.0, 72.0)
    assert signal["explanation"]
    assert 1 <= len(report["actions"]) <= 5
    gains = [action["gain"] for action in report["actions"]]
    assert gains == sorted(gains, reverse=True)


def test_rescore_now_enqueues_a_scan_of_this_tenant(admin_a, tenant_a, framework, sent):
    response = admin_a.client.post(f"{base(tenant_a)}/scores/rescore/")
    assert response.status_code == 202, response.content
    run_id = response.json()["job_run"]
    run = admin_a.client.get(f"/api/v1/tenants/{tenant_a.slug}/jobs/{run_id}/")
    assert run.status_code == 200
    assert (run.json()["kind"], run.json()["status"]) == ("readiness_scan", "queued")


def test_the_benchmark_shows_peers_only_from_five(admin_a, tenant_a, framework):
    score_with_pillars(tenant_a, framework, {"data": 55})
    others = [TenantFactory(industry=tenant_a.industry) for _ in range(5)]
    for peer, value in zip(others[:4], (30, 40, 60, 70), strict=True):
        score_with_pillars(peer, framework, {"data": value})
    url = f"{base(tenant_a)}/benchmark/"
    four = admin_a.client.get(url).json()
    assert four["available"] is False
    score_with_pillars(others[4], framework, {"data": 80})
    five = admin_a.client.get(url).json()
    data = next(p for p in five["pillars"] if p["key"] == "data")
    assert data == {
        "key": "data",
        "title": "Data",
        "score": 55.0,
        "peers": {"p25": 40, "median": 60, "p75": 70},
    }


# --- The isolation harness -----------------------------------------------------------------------


class ReadinessPrefixed(TenantIsolationTests):
    resource = "readiness"  # the first segment, as the meta-test counts routes
    route: str

    def url(self, tenant_slug: str, pk=None, action: str | None = None) -> str:
        url = f"/api/v1/tenants/{tenant_slug}/readiness/{self.route}/"
        if pk is not None:
            url += f"{pk}/"
        if action:
            url += f"{action}/"
        return url


class TestAssessmentIsolation(ReadinessPrefixed):
    route = "assessments"
    model = Assessment
    can_update = can_delete = False
    detail_actions = ("submit",)

    @pytest.fixture(autouse=True)
    def _framework(self, framework):
        return framework

    def make_object(self, tenant):
        from operations.readiness.selectors import readiness_framework_current

        # Submitted, so a create in the same tenant is not refused as a second draft.
        return submitted_assessment(tenant, readiness_framework_current(), value=1)

    def create_payload(self, tenant) -> dict:
        return {}

    def test_foreign_answers_are_404_and_change_nothing(self, caller, objects, tenant_a):
        _own, foreign = objects
        with tenant_scope(foreign.tenant_id):
            foreign.status = "draft"
            foreign.save()
        response = put_answer(caller, tenant_a, foreign.pk, "strategy.vision", 4)
        assert response.status_code == 404
        assert response.content == self.not_found_body(caller, tenant_a)
        missing = put_answer(caller, tenant_a, MISSING_ID, "strategy.vision", 4)
        assert missing.content == response.content
        with tenant_scope(foreign.tenant_id):
            assert (
                AssessmentAnswer.objects.get(
                    assessment=foreign, question_key="strategy.vision"
                ).value
                == 1
            )


class TestScoreIsolation(ReadinessPrefixed):
    route = "scores"
    model = ReadinessScore
    can_update = can_delete = can_create = False

    @pytest.fixture(autouse=True)
    def _framework(self, framework):
        return framework

    def make_object(self, tenant):
        from operations.readiness.selectors import readiness_framework_current

        return score_with_pillars(tenant, readiness_framework_current(), {"data": 50})

    def test_latest_and_rescore_stay_in_the_url_tenant(self, caller, objects, tenant_a, tenant_b):
        own, foreign = objects
        assert caller.client.get(self.url(tenant_a.slug) + "latest/").json()["id"] == own.pk
        assert caller.client.get(self.url(tenant_b.slug) + "latest/").status_code == 404
        assert caller.client.post(self.url(tenant_b.slug) + "rescore/").status_code == 404


class TestBenchmarkIsolation:
    def test_another_tenants_benchmark_is_the_same_404_as_a_missing_tenant(
        self, admin_a, tenant_a, tenant_b, framework
    ):
        assert admin_a.client.get(f"{base(tenant_a)}/benchmark/").status_code == 200
        foreign = admin_a.client.get(f"{base(tenant_b)}/benchmark/")
        missing = admin_a.client.get("/api/v1/tenants/no-such-tenant/readiness/benchmark/")
        assert foreign.status_code == missing.status_code == 404
        assert foreign.content == missing.content
