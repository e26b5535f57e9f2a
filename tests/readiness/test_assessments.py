"""Assessments (start, partial answers, submit, immutability, onboarding), score snapshots,
the readiness_scan job kind, and the anonymised benchmark."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from operations.jobs import services as job_services
from operations.jobs.registry import get_job_kind
from operations.readiness import selectors, services
from operations.readiness.models import AssessmentAnswer, AssessmentStatus, ReadinessScore
from operations.readiness.scoring import score_from_inputs
from operations.readiness.signals import SIGNAL_KEYS
from tenants import services as tenant_services
from tenants.models import AuditEvent, OnboardingStep, TenantRole, TenantStatus
from tenants.scoping import tenant_scope
from tests.factories import TenantFactory, make_member
from tests.jobs.conftest import deliver, reload
from tests.readiness.builders_core import (
    question_keys,
    score_with_pillars,
    submitted_assessment,
)

pytestmark = pytest.mark.django_db


def answer_all(tenant, assessment, framework, value, user=None):
    for key in question_keys(framework):
        services.assessment_answer(
            tenant=tenant, assessment=assessment, question_key=key, value=value, user=user
        )


def onboarding_tenant():
    tenant = TenantFactory(slug="onboarding-co")
    return tenant_services.tenant_transition(tenant=tenant, to_status=TenantStatus.ONBOARDING)


def baseline_step(tenant) -> OnboardingStep:
    with tenant_scope(tenant.id):
        return OnboardingStep.objects.get(key="baseline_readiness")


def test_a_draft_saves_partial_answers_with_who_and_when(tenant_a, framework):
    user = make_member(tenant_a, TenantRole.MEMBER, username="answerer")
    with tenant_scope(tenant_a.id):
        draft = services.assessment_start(tenant=tenant_a, user=user)
        assert draft.framework == framework
        assert draft.based_on is None
        services.assessment_answer(
            tenant=tenant_a,
            assessment=draft,
            question_key="strategy.vision",
            value=3,
            note="Board approved in March.",
            evidence_url="https://intranet.example.com/ai-strategy",
            user=user,
        )
        # A second save of the same question replaces the first.
        answer = services.assessment_answer(
            tenant=tenant_a,
            assessment=draft,
            question_key="strategy.vision",
            value=4,
            note="Funded too.",
            user=user,
        )
        assert (answer.value, answer.note, answer.answered_by) == (4, "Funded too.", user)
        assert AssessmentAnswer.objects.filter(assessment=draft).count() == 1
        progress = selectors.assessment_progress(tenant=tenant_a, assessment=draft)
        assert (progress["answered"], progress["questions"]) == (1, 26)
        audited = AuditEvent.objects.filter(
            tenant=tenant_a, object_type="readiness.AssessmentAnswer"
        )
        assert sorted(audited.values_list("action", flat=True)) == ["create", "update"]


def test_one_draft_at_a_time(tenant_a, framework):
    with tenant_scope(tenant_a.id):
        services.assessment_start(tenant=tenant_a)
        with pytest.raises(services.ReadinessConflict, match="already in progress"):
            services.assessment_start(tenant=tenant_a)


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [("strategy.nope", 2, "question_key"), ("strategy.vision", 5, "value")],
)
def test_an_answer_off_the_framework_or_the_scale_is_refused(
    tenant_a, framework, key, value, field
):
    with tenant_scope(tenant_a.id):
        draft = services.assessment_start(tenant=tenant_a)
        with pytest.raises(ValidationError) as caught:
            services.assessment_answer(
                tenant=tenant_a, assessment=draft, question_key=key, value=value
            )
        assert field in caught.value.message_dict


def test_an_incomplete_draft_cannot_be_submitted(tenant_a, framework):
    with tenant_scope(tenant_a.id):
        draft = services.assessment_start(tenant=tenant_a)
        services.assessment_answer(
            tenant=tenant_a, assessment=draft, question_key="strategy.vision", value=1
        )
        with pytest.raises(ValidationError, match="25 of 26 questions are unanswered"):
            services.assessment_submit(tenant=tenant_a, assessment=draft)


def test_submitting_locks_the_assessment_scores_it_and_completes_onboarding(framework):
    tenant = onboarding_tenant()
    user = make_member(tenant, TenantRole.ADMIN, username="onb-admin")
    assert not baseline_step(tenant).done
    with tenant_scope(tenant.id):
        draft = services.assessment_start(tenant=tenant, user=user)
        answer_all(tenant, draft, framework, 3, user=user)
        submitted = services.assessment_submit(tenant=tenant, assessment=draft, user=user)
        assert submitted.status == AssessmentStatus.SUBMITTED
        assert submitted.submitted_by == user
        score = ReadinessScore.objects.get()
        assert score.assessment == submitted
        assert score.pillars["strategy"] == 75.0  # every answer 3 of 4
        assert score.triggered_by == user
        # Any later write is refused, and nothing changes.
        with pytest.raises(services.AssessmentLocked, match="can no longer change"):
            services.assessment_answer(
                tenant=tenant, assessment=draft, question_key="strategy.vision", value=0
            )
        with pytest.raises(services.AssessmentLocked):
            services.assessment_submit(tenant=tenant, assessment=draft)
        assert (
            AssessmentAnswer.objects.get(assessment=draft, question_key="strategy.vision").value
            == 3
        )
    step = baseline_step(tenant)
    assert step.done
    assert step.completed_by == user
    assert AuditEvent.objects.filter(
        tenant=tenant, object_type="readiness.Assessment", action="transition"
    ).exists()


def test_a_second_submission_leaves_the_onboarding_step_as_it_was(tenant_a, framework):
    tenant = onboarding_tenant()
    with tenant_scope(tenant.id):
        for value in (1, 2):
            draft = services.assessment_start(tenant=tenant)
            answer_all(tenant, draft, framework, value)
            services.assessment_submit(tenant=tenant, assessment=draft)
        first_done = baseline_step(tenant).completed_at
        assert first_done is not None
    assert baseline_step(tenant).completed_at == first_done


def test_the_next_assessment_starts_from_the_last_submitted_one(tenant_a, framework):
    previous = submitted_assessment(tenant_a, framework, value=3)
    with tenant_scope(tenant_a.id):
        AssessmentAnswer.objects.filter(assessment=previous, question_key="data.quality").update(
            note="Checked weekly", evidence_url="https://example.com/q"
        )
        draft = services.assessment_start(tenant=tenant_a)
        assert draft.based_on == previous
        copied = {a.question_key: a for a in AssessmentAnswer.objects.filter(assessment=draft)}
        assert set(copied) == set(question_keys(framework))
        assert {a.value for a in copied.values()} == {3}
        assert copied["data.quality"].note == "Checked weekly"
        # The copy is a new draft: changing it leaves the submitted one as it was.
        services.assessment_answer(
            tenant=tenant_a, assessment=draft, question_key="data.quality", value=4
        )
        assert (
            AssessmentAnswer.objects.get(assessment=previous, question_key="data.quality").value
            == 3
        )


def test_a_snapshot_keeps_its_inputs_and_framework_and_reproduces_itself(tenant_a, framework):
    assessment = submitted_assessment(tenant_a, framework, value=1)
    with tenant_scope(tenant_a.id):
        score = services.readiness_rescore(tenant=tenant_a)
        score.refresh_from_db()
    assert score.framework == framework
    assert score.inputs["assessment_id"] == assessment.pk
    assert score.inputs["answers"]["culture.change"] == 1
    # Every signal is recorded, with its value (None: no data) and what explains it.
    assert set(score.inputs["signals"]) == set(SIGNAL_KEYS)
    for stored in score.inputs["signals"].values():
        assert {"value", "explanation", "links"} <= set(stored)
    # Strategy has no signals: its answers alone, 1 of 4.
    assert score.pillars["strategy"] == 25.0
    again = score_from_inputs(framework.definition, score.inputs)
    assert again.overall == score.overall
    assert again.level == score.level
    assert again.pillars == score.pillars


def test_a_rescore_costs_the_same_queries_whatever_the_estate(tenant_a, tenant_b, framework):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.inventory.estate import make_ai_system, make_dataset, make_deployment

    submitted_assessment(tenant_a, framework, value=2)
    submitted_assessment(tenant_b, framework, value=3)
    for tenant, size in ((tenant_a, 1), (tenant_b, 5)):
        for _ in range(size):
            system = make_ai_system(tenant, stage="production")
            make_deployment(tenant, ai_system=system)
            make_dataset(tenant)
    selectors.readiness_framework_for_scoring()  # the definition is parsed once per process
    counts = []
    for tenant in (tenant_a, tenant_b):
        with tenant_scope(tenant.id), CaptureQueriesContext(connection) as queries:
            services.readiness_rescore(tenant=tenant)
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_scan_job_writes_one_snapshot_even_when_redelivered(
    tenant_a, tenant_b, framework, sent
):
    assert get_job_kind("readiness_scan").nightly
    submitted_assessment(tenant_a, framework, value=4)
    run = job_services.job_submit(tenant=tenant_a, kind="readiness_scan")
    assert deliver(run) == "succeeded"
    run = reload(run)
    with tenant_scope(tenant_a.id):
        snapshot = ReadinessScore.objects.get(job_run_id=run.pk)
        assert (run.result["overall"], run.result["level"]) == (
            str(snapshot.overall),
            snapshot.level,
        )
        assert snapshot.pillars["talent"] == 100.0  # answers only, all 4 of 4
        # Called again for the same run (a redelivery reaching the service): the same snapshot.
        again = services.readiness_rescore(tenant=tenant_a, job_run_id=run.pk)
        assert again.pk == run.result["score_id"]
    with tenant_scope(tenant_b.id):
        assert not ReadinessScore.objects.exists()


def test_rescore_now_enqueues_an_audited_scan_run(tenant_a, framework, sent):
    user = make_member(tenant_a, TenantRole.ADMIN, username="rescorer")
    with tenant_scope(tenant_a.id):
        run = services.readiness_rescore_request(tenant=tenant_a, user=user)
    assert (run.kind, run.trigger, run.triggered_by_user) == ("readiness_scan", "user", user)
    assert deliver(run) == "succeeded"


# --- Benchmark -----------------------------------------------------------------------------------


def peers(count: int, industry: str = "Finance") -> list:
    return [TenantFactory(industry=industry) for _ in range(count)]


def test_no_band_with_fewer_than_five_other_tenants(tenant_a, framework):
    score_with_pillars(tenant_a, framework, {"data": 50})
    for peer, value in zip(peers(4), (10, 20, 30, 40), strict=True):
        score_with_pillars(peer, framework, {"data": value})
    for other in peers(3, industry="Retail"):
        score_with_pillars(other, framework, {"data": 90})  # another industry does not count
    with tenant_scope(tenant_a.id):
        report = selectors.readiness_benchmark(tenant=tenant_a)
    assert report["available"] is False
    data = next(p for p in report["pillars"] if p["key"] == "data")
    assert data == {"key": "data", "title": "Data", "score": 50, "peers": None}


def test_the_band_uses_only_each_peers_latest_score_and_never_the_own(tenant_a, framework):
    score_with_pillars(tenant_a, framework, {"data": 0})
    group = peers(5)
    for peer, value in zip(group, (40, 50, 60, 70, 80), strict=True):
        score_with_pillars(peer, framework, {"data": 5})  # an older snapshot, superseded
        score_with_pillars(peer, framework, {"data": value})
    with tenant_scope(tenant_a.id):
        report = selectors.readiness_benchmark(tenant=tenant_a)
    data = next(p for p in report["pillars"] if p["key"] == "data")
    assert data["peers"] == {"p25": 50, "median": 60, "p75": 70}
    strategy = next(p for p in report["pillars"] if p["key"] == "strategy")
    assert strategy["peers"] is None  # no peer has a strategy score


def test_one_peers_score_cannot_be_recovered_from_the_band(tenant_a, framework):
    """What tenant A sees is the same whatever one peer's exact score is (within its 5-point
    band), so that peer's score cannot be read back; and no peer is named or counted."""
    group = peers(5)
    base = [41.0, 52.5, 63.0, 71.5, 88.0]
    for peer, value in zip(group, base, strict=True):
        score_with_pillars(peer, framework, {"governance": value})

    def seen() -> dict:
        with tenant_scope(tenant_a.id):
            return selectors.readiness_benchmark(tenant=tenant_a)

    first = seen()
    band = next(p for p in first["pillars"] if p["key"] == "governance")["peers"]
    # Every figure is a 5-point band edge, so no exact score (52.5, 71.5…) is ever shown.
    assert all(value % 5 == 0 for value in band.values())
    assert not set(band.values()) & set(base)
    # Move each peer in turn within its band: the benchmark does not change.
    for index, peer in enumerate(group):
        for nudged in (base[index] - 0.9, base[index] + 0.9):
            score_with_pillars(peer, framework, {"governance": nudged})
            assert seen() == first, (index, nudged)
        score_with_pillars(peer, framework, {"governance": base[index]})
    text = str(first)
    for peer in group:
        assert peer.name not in text
        assert peer.slug not in text


# --- Demo ----------------------------------------------------------------------------------------


def test_the_demo_puts_tenants_at_different_levels_and_is_idempotent(framework):
    from operations.readiness.demo import seed_readiness

    tenants = {slug: TenantFactory(slug=slug) for slug in ("cobalt", "acme", "borealis", "dunmore")}
    for slug in ("cobalt", "acme"):
        make_member(tenants[slug], TenantRole.ADMIN, username=f"{slug}-admin")
    made = {slug: seed_readiness(tenant) for slug, tenant in tenants.items()}
    assert made["cobalt"] == {"assessments": 2, "scores": 3}
    assert made["borealis"] == {"assessments": 1, "scores": 1}
    assert made["dunmore"] == {"assessments": 0, "scores": 1}
    latest = {}
    for slug, tenant in tenants.items():
        with tenant_scope(tenant.id):
            latest[slug] = selectors.readiness_score_latest(tenant=tenant)
    assert latest["cobalt"].level > latest["acme"].level > latest["dunmore"].level
    with tenant_scope(tenants["borealis"].id):
        draft = selectors.assessment_draft(tenant=tenants["borealis"])
        progress = selectors.assessment_progress(tenant=tenants["borealis"], assessment=draft)
        assert progress["answered"] == 10
        assert latest["borealis"].assessment is None  # not submitted: signals only
    with tenant_scope(tenants["cobalt"].id):
        trend = selectors.readiness_score_list(tenant=tenants["cobalt"]).order_by("computed_at")
        times = [score.computed_at for score in trend]
        assert times[0] < times[-1]
    assert all(seed_readiness(t) == {"assessments": 0, "scores": 0} for t in tenants.values())


def test_the_rescore_inputs_are_the_framework_the_latest_answers_and_a_run_s_snapshot(
    tenant_a, tenant_b, framework
):
    with tenant_scope(tenant_a.id):
        start = selectors.readiness_rescore_inputs(tenant=tenant_a, job_run_id=41)
        assert (start.done, start.framework.pk, start.assessment_id, start.answers) == (
            None,
            framework.pk,
            None,
            {},
        )
        # Before any assessment: a run's snapshot is found all the same.
        made = services.readiness_rescore(tenant=tenant_a, job_run_id=41)
        assert selectors.readiness_rescore_inputs(tenant=tenant_a, job_run_id=41).done == made
    first = submitted_assessment(tenant_a, framework, value=1)
    latest = submitted_assessment(tenant_a, framework, value=3)
    with tenant_scope(tenant_a.id):
        start = selectors.readiness_rescore_inputs(tenant=tenant_a, job_run_id=42)
        assert start.done is None
        assert start.framework.pk == framework.pk
        assert start.assessment_id == latest.pk != first.pk
        assert start.answers == selectors.assessment_latest_submitted_answers(tenant=tenant_a)[1]
        assert set(start.answers.values()) == {3}
        made = services.readiness_rescore(tenant=tenant_a, job_run_id=42)
        again = selectors.readiness_rescore_inputs(tenant=tenant_a, job_run_id=42)
        assert (again.done, again.framework) == (made, None)
        assert selectors.readiness_rescore_inputs(tenant=tenant_a).done is None
    submitted_assessment(tenant_b, framework, value=2)
    with tenant_scope(tenant_b.id):
        # Another tenant's run of the same id is not this tenant's snapshot.
        assert selectors.readiness_rescore_inputs(tenant=tenant_b, job_run_id=42).done is None
