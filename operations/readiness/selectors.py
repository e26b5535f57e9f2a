"""Reads of the readiness context: frameworks, assessments, score snapshots explained, and the
anonymised peer benchmark."""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass

from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery

from operations.readiness.models import (
    Assessment,
    AssessmentAnswer,
    AssessmentStatus,
    ReadinessFramework,
    ReadinessScore,
)
from operations.readiness.scoring import (
    score_actions,
    score_from_inputs,
    signal_points,
)
from tenants.models import Tenant, TenantStatus
from tenants.scoping import TenantScopeMissing, active_scope, all_tenants_scope

FRAMEWORK_CODE = "ai-readiness"
# The benchmark shows a band only when at least this many other tenants contribute, and
# rounds it to this many points, so no single peer's score can be read from it.
BENCHMARK_MIN_PEERS = 5
BENCHMARK_BAND_POINTS = 5


# --- Frameworks ----------------------------------------------------------------------------------


def readiness_framework_list() -> QuerySet[ReadinessFramework]:
    return ReadinessFramework.objects.order_by("code", "-loaded_at", "-id")


def readiness_framework_current(*, code: str = FRAMEWORK_CODE) -> ReadinessFramework:
    """The newest loaded version: new assessments and scores use it."""
    framework = readiness_framework_list().filter(code=code).first()
    if framework is None:
        raise ReadinessFramework.DoesNotExist(
            f"No readiness framework '{code}' is loaded: run load_readiness_frameworks."
        )
    return framework


_scoring_framework: dict[tuple[int, str], ReadinessFramework] = {}


def readiness_framework_for_scoring(*, code: str = FRAMEWORK_CODE) -> ReadinessFramework:
    """The current version, its definition parsed once per process and version: a fleet scan
    asks for it once per tenant."""
    key = readiness_framework_list().filter(code=code).values_list("pk", "checksum").first()
    return _framework_for_scoring(key, code=code)


def _framework_for_scoring(key: tuple[int, str] | None, *, code: str) -> ReadinessFramework:
    if key is None or key[0] is None:
        return readiness_framework_current(code=code)  # raises, naming the command to run
    framework = _scoring_framework.get(key)
    if framework is None:
        framework = readiness_framework_current(code=code)
        _scoring_framework.clear()
        _scoring_framework[(framework.pk, framework.checksum)] = framework
    return framework


@dataclass(frozen=True)
class RescoreInputs:
    done: ReadinessScore | None  # the snapshot the job run made already
    framework: ReadinessFramework | None  # None when ``done``
    assessment_id: int | None
    answers: dict[str, int | None]


@functools.cache
def _rescore_inputs_sql() -> str:
    """``readiness_rescore_inputs``' query as plain SQL, built once per process (a fleet scan
    runs it for every tenant; compiling its subqueries through the ORM cost more than running
    them). Every tenant-owned table is filtered by the tenant explicitly."""
    tables = {
        model.__name__: f'"{model._meta.db_table}"'
        for model in (Assessment, AssessmentAnswer, ReadinessFramework, ReadinessScore)
    }
    # Our own tables' names; every value is a parameter.
    return (
        'SELECT a."assessment_id", a."question_key", a."value", '  # noqa: S608
        f'(SELECT f."id" FROM {tables["ReadinessFramework"]} f WHERE f."code" = %(code)s '
        'ORDER BY f."loaded_at" DESC, f."id" DESC LIMIT 1), '
        f'(SELECT f."checksum" FROM {tables["ReadinessFramework"]} f WHERE f."code" = %(code)s '
        'ORDER BY f."loaded_at" DESC, f."id" DESC LIMIT 1), '
        f'(SELECT s."id" FROM {tables["ReadinessScore"]} s WHERE s."tenant_id" = %(tenant)s '
        'AND s."job_run_id" = %(job_run)s LIMIT 1) '
        f'FROM {tables["AssessmentAnswer"]} a WHERE a."tenant_id" = %(tenant)s '
        f'AND a."assessment_id" = (SELECT s."id" FROM {tables["Assessment"]} s '
        'WHERE s."tenant_id" = %(tenant)s AND s."status" = %(submitted)s '
        'ORDER BY s."submitted_at" DESC, s."id" DESC LIMIT 1) '
        'ORDER BY a."question_key"'
    )


def readiness_rescore_inputs(
    *, tenant, job_run_id: int | None = None, code: str = FRAMEWORK_CODE
) -> RescoreInputs:
    """What a snapshot starts from: the snapshot job run ``job_run_id`` made already, else the
    framework to score on (``readiness_framework_for_scoring``) and the latest submitted answers
    (``assessment_latest_submitted_answers``). One query once the tenant has submitted an
    assessment (a fleet scan reads this for every tenant)."""
    scope = active_scope()
    if scope is None or tenant.id not in scope.tenant_ids:
        raise TenantScopeMissing(f"readiness_rescore_inputs(tenant={tenant.id}) outside its scope.")
    with connection.cursor() as cursor:
        cursor.execute(
            _rescore_inputs_sql(),
            {
                "tenant": tenant.id,
                "submitted": AssessmentStatus.SUBMITTED.value,
                "code": code,
                "job_run": job_run_id,  # None: no snapshot is "done" (= NULL matches nothing)
            },
        )
        rows = cursor.fetchall()
    done = (
        ReadinessScore.objects.filter(tenant=tenant, job_run_id=job_run_id).order_by()
        if job_run_id is not None
        else None
    )
    if not rows:
        made = done.first() if done is not None else None
        if made is not None:
            return RescoreInputs(done=made, framework=None, assessment_id=None, answers={})
        return RescoreInputs(
            done=None,
            framework=readiness_framework_for_scoring(code=code),
            assessment_id=None,
            answers={},
        )
    assessment_id, _key, _value, framework_pk, checksum, done_id = rows[0]
    if done_id is not None:
        made = ReadinessScore.objects.get(tenant=tenant, pk=done_id)
        return RescoreInputs(done=made, framework=None, assessment_id=None, answers={})
    return RescoreInputs(
        done=None,
        framework=_framework_for_scoring((framework_pk, checksum), code=code),
        assessment_id=assessment_id,
        answers={key: value for _id, key, value, *_rest in rows},
    )


def framework_questions(definition: dict) -> dict[str, dict]:
    """{question key: question, with its pillar's key}, in the framework's order."""
    return {
        question["key"]: {**question, "pillar": pillar["key"]}
        for pillar in definition["pillars"]
        for question in pillar["questions"]
    }


# --- Assessments ---------------------------------------------------------------------------------


def assessment_list(*, tenant) -> QuerySet[Assessment]:
    return Assessment.objects.filter(tenant=tenant).select_related(
        "framework", "started_by", "submitted_by"
    )


def assessment_draft(*, tenant) -> Assessment | None:
    return assessment_list(tenant=tenant).filter(status=AssessmentStatus.DRAFT).first()


def assessment_last_submitted(*, tenant) -> Assessment | None:
    return (
        assessment_list(tenant=tenant)
        .filter(status=AssessmentStatus.SUBMITTED)
        .order_by("-submitted_at", "-id")
        .first()
    )


def assessment_latest_submitted_answers(*, tenant) -> tuple[int | None, dict[str, int | None]]:
    """(id, {question key: value}) of the latest submitted assessment, in one query; (None, {})
    before the first submission (a submitted assessment has every question answered)."""
    latest = (
        Assessment.objects.filter(tenant=tenant, status=AssessmentStatus.SUBMITTED)
        .order_by("-submitted_at", "-id")
        .values("id")[:1]
    )
    rows = AssessmentAnswer.objects.filter(tenant=tenant, assessment_id=Subquery(latest))
    found = list(rows.values_list("assessment_id", "question_key", "value"))
    if not found:
        return None, {}
    return found[0][0], {key: value for _id, key, value in found}


def assessment_answers(*, tenant, assessment: Assessment) -> QuerySet[AssessmentAnswer]:
    return AssessmentAnswer.objects.filter(tenant=tenant, assessment=assessment).select_related(
        "answered_by"
    )


def assessment_progress(*, tenant, assessment: Assessment) -> dict:
    """How many of the framework's questions have an answer on the scale."""
    questions = framework_questions(assessment.framework.definition)
    answered = set(
        assessment_answers(tenant=tenant, assessment=assessment)
        .filter(value__isnull=False, question_key__in=list(questions))
        .values_list("question_key", flat=True)
    )
    return {
        "questions": len(questions),
        "answered": len(answered),
        "unanswered": [key for key in questions if key not in answered],
    }


# --- Scores --------------------------------------------------------------------------------------


def readiness_score_list(*, tenant) -> QuerySet[ReadinessScore]:
    return ReadinessScore.objects.filter(tenant=tenant).select_related("framework")


def readiness_score_latest(*, tenant) -> ReadinessScore | None:
    return readiness_score_list(tenant=tenant).order_by("-computed_at", "-id").first()


def readiness_level_latest(*, tenant) -> dict | None:
    """``{"level", "overall"}`` of the newest snapshot, or None (one query, no JSON columns)."""
    return (
        ReadinessScore.objects.filter(tenant=tenant)
        .order_by("-computed_at", "-id")
        .values("level", "overall")
        .first()
    )


def readiness_score_report(*, score: ReadinessScore) -> dict:
    """A snapshot explained: its level, each pillar with its two parts, each signal with its
    value against the target, and the five actions that would raise the score most. Everything
    comes from the snapshot's own inputs and framework version, so it never changes later."""
    definition = score.framework.definition
    inputs = score.inputs or {}
    result = score_from_inputs(definition, inputs)
    level = next(row for row in definition["levels"] if row["level"] == score.level)
    stored_signals = inputs.get("signals") or {}
    signals = []
    for signal in definition["signals"]:
        stored = stored_signals.get(signal["key"]) or {}
        value = stored.get("value")
        signals.append(
            {
                "key": signal["key"],
                "title": signal["title"],
                "pillar": signal["pillar"],
                "area": signal.get("area", ""),
                "unit": signal["unit"],
                "value": value,
                "target": signal["target"],
                "floor": signal["floor"],
                "weight": signal["weight"],
                "points": signal_points(value, target=signal["target"], floor=signal["floor"]),
                "explanation": stored.get("explanation") or ("No data." if value is None else ""),
                "links": stored.get("links") or [],
            }
        )
    return {
        "id": score.pk,
        "computed_at": score.computed_at,
        "framework": {
            "id": score.framework_id,
            "code": score.framework.code,
            "version": score.framework.version,
        },
        "assessment": score.assessment_id,
        "overall": score.overall,
        "level": {"level": level["level"], "name": level["name"], "meaning": level["meaning"]},
        "pillars": [
            {
                "key": pillar["key"],
                "title": pillar["title"],
                "weight": pillar["weight"],
                "score": (score.pillars or {}).get(pillar["key"]),
                "from_answers": result.parts[pillar["key"]]["answers"],
                "from_signals": result.parts[pillar["key"]]["signals"],
            }
            for pillar in definition["pillars"]
        ],
        "signals": signals,
        "actions": score_actions(definition, inputs),
    }


# --- Benchmark -----------------------------------------------------------------------------------


def _band(values: list[float]) -> dict:
    """p25 and p75 widened outwards to whole bands of BENCHMARK_BAND_POINTS; the median as the
    lower edge of the band it lies in."""
    step = BENCHMARK_BAND_POINTS
    low, median, high = statistics.quantiles(values, n=4, method="inclusive")
    return {
        "p25": max(0, math.floor(low / step) * step),
        "median": max(0, math.floor(median / step) * step),
        "p75": min(100, math.ceil(high / step) * step),
    }


def _peer_latest_pillars(tenant) -> list[dict]:
    """The pillars of the latest score of each other tenant in ``tenant``'s industry. Reads
    across tenants, so inside the explicit MSP-wide scope; only the numbers leave here."""
    peers = (
        Tenant.objects.filter(industry=tenant.industry)
        .exclude(pk=tenant.pk)
        .exclude(status=TenantStatus.OFFBOARDED)
    )
    with all_tenants_scope(include_offboarded=False) as tenant_ids:
        if not tenant_ids:
            return []
        latest = Subquery(
            ReadinessScore.objects.filter(tenant=OuterRef("pk"))
            .order_by("-computed_at", "-id")
            .values("id")[:1]
        )
        latest_ids = [
            pk
            for pk in peers.annotate(latest_score=latest).values_list("latest_score", flat=True)
            if pk is not None
        ]
        return list(
            ReadinessScore.objects.filter(pk__in=latest_ids).values_list("pillars", flat=True)
        )


def readiness_benchmark(*, tenant, score: ReadinessScore | None = None) -> dict:
    """Each pillar of ``tenant``'s latest score beside the band of its industry peers' latest
    scores: shown only with at least BENCHMARK_MIN_PEERS peers, rounded to bands, never naming
    or counting them exactly."""
    score = score or readiness_score_latest(tenant=tenant)
    framework = score.framework if score else readiness_framework_current()
    peer_pillars = _peer_latest_pillars(tenant) if tenant.industry else []
    pillars = []
    for pillar in framework.definition["pillars"]:
        values = [
            float(row[pillar["key"]])
            for row in peer_pillars
            if isinstance(row, dict) and row.get(pillar["key"]) is not None
        ]
        enough = len(values) >= BENCHMARK_MIN_PEERS
        pillars.append(
            {
                "key": pillar["key"],
                "title": pillar["title"],
                "score": (score.pillars or {}).get(pillar["key"]) if score else None,
                "peers": _band(values) if enough else None,
            }
        )
    return {
        "industry": tenant.industry,
        "minimum_peers": BENCHMARK_MIN_PEERS,
        "band_points": BENCHMARK_BAND_POINTS,
        "available": any(p["peers"] is not None for p in pillars),
        "pillars": pillars,
    }


def readiness_score_before(*, tenant, moment) -> ReadinessScore | None:
    """The tenant's newest readiness score computed before ``moment`` (a report's period end
    or start), or None."""
    return (
        readiness_score_list(tenant=tenant)
        .filter(computed_at__lt=moment)
        .order_by("-computed_at", "-id")
        .first()
    )
