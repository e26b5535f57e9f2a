"""Portal pages for readiness, under ``/portal/<slug>/readiness/``: the maturity level and
score, the pillars against the industry's peers, the trend, the signals and the actions that
would raise the level most; the questionnaire (a pillar saved at a time, then submitted); and
each pilot AI system's pilot → production gates.

Tenant admins and members answer; viewers read; MSP engineers and admins answer on the
client's behalf (the ``answer`` capability). Every write goes through the readiness services.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from operations.inventory.selectors import ai_systems_in_tenants
from operations.jobs.selectors import job_run_latest_of_kind
from operations.readiness import selectors, services
from operations.readiness.gates import ai_systems_gates
from operations.readiness.models import AssessmentStatus, ReadinessFramework
from operations.readiness.portal.forms import ConfirmSubmitForm, PillarAnswersForm
from tenants.portal.access import PortalTenant, portal_tenant_view, render_portal
from tenants.portal.charts import PeerBand, Series, format_time, line_chart, radar_chart

#: Snapshots drawn in the score trend (newest last).
TREND_POINTS = 60
SECTION = "readiness"
PEER_LABEL = "Industry peers (middle half)"
PILOT = "pilot"

# Where the object behind a signal, an action or a gate criterion is shown in the portal; a
# kind without a page stays plain text.
_ESTATE_ANCHORS = {
    "ai_system": "systems",
    "compute": "compute",
    "deployment": "deployments",
    "site": "sites-heading",
    "dataset": "datasets-heading",
}


def link_href(slug: str, link: dict) -> str | None:
    kind = link.get("kind")
    if kind in _ESTATE_ANCHORS:
        return reverse("portal_estate:overview", args=[slug]) + "#" + _ESTATE_ANCHORS[kind]
    if kind == "finding":
        return reverse("portal_compliance:overview", args=[slug]) + "#failing-heading"
    if kind == "framework":
        return reverse("portal_compliance:overview", args=[slug]) + f"?framework={link['id']}"
    if kind == "incident":
        return reverse("portal_incidents:list", args=[slug])
    if kind == "recommendation":
        return reverse("portal_recommendations:list", args=[slug])
    if kind == "token":
        return reverse("portal:tokens", args=[slug])
    return None


def _with_hrefs(slug: str, links) -> list[dict]:
    return [{**link, "href": link_href(slug, link)} for link in links or ()]


def _framework_or_none() -> ReadinessFramework | None:
    try:
        return selectors.readiness_framework_current()
    except ReadinessFramework.DoesNotExist:
        return None


# --- Overview ------------------------------------------------------------------------------------


@portal_tenant_view(write_capability="answer")
@require_GET
def readiness_overview(request, page: PortalTenant):
    tenant = page.tenant
    framework = _framework_or_none()
    score = selectors.readiness_score_latest(tenant=tenant)
    draft = selectors.assessment_draft(tenant=tenant)
    context = {
        "framework": framework,
        "score": score,
        "draft": draft,
        "progress": (
            selectors.assessment_progress(tenant=tenant, assessment=draft) if draft else None
        ),
        "last_submitted": selectors.assessment_last_submitted(tenant=tenant),
        "pilots": pilot_gates(page),
        "last_scan": job_run_latest_of_kind(tenant=tenant, kind=services.SCAN_KIND),
    }
    if score is not None:
        report = selectors.readiness_score_report(score=score)
        pillar_titles = {pillar["key"]: pillar["title"] for pillar in report["pillars"]}
        for signal in report["signals"]:
            signal["links"] = _with_hrefs(tenant.slug, signal["links"])
            signal["pillar_title"] = pillar_titles.get(signal["pillar"], signal["pillar"])
        questionnaire = reverse("portal_readiness:assessment", args=[tenant.slug])
        for action in report["actions"]:
            action["links"] = _with_hrefs(tenant.slug, action["links"])
            if action["kind"] == "question":
                action["href"] = f"{questionnaire}#q-{action['key']}"
            elif action["kind"] == "assessment":
                action["href"] = questionnaire
        benchmark = selectors.readiness_benchmark(tenant=tenant, score=score)
        context["report"] = report
        context["benchmark"] = benchmark
        context["radar"] = _radar(report, benchmark)
        context["trend"] = _trend(selectors.readiness_score_list(tenant=tenant)[:TREND_POINTS])
        context["levels"] = score.framework.definition["levels"]
    elif framework is not None:
        context["levels"] = framework.definition["levels"]
    return render_portal(request, page, "readiness/overview.html", section=SECTION, **context)


@portal_tenant_view(write_capability="answer")
@require_POST
def rescore_now(request, page: PortalTenant):
    """The "rescore now" button: the same readiness scan, through the same service, as the
    API's ``scores/rescore/`` and the admin's action; the overview shows the run and result."""
    run = services.readiness_rescore_request(tenant=page.tenant, user=request.user)
    messages.success(
        request,
        f"Readiness scan queued as job run {run.pk}: the score below updates when it finishes.",
    )
    return redirect(reverse("portal_readiness:overview", args=[page.tenant.slug]) + "#last-scan")


def _radar(report: dict, benchmark: dict):
    peers = None
    if benchmark["available"]:
        bands = {row["key"]: row["peers"] for row in benchmark["pillars"]}
        keys = [pillar["key"] for pillar in report["pillars"]]

        def edge(name):
            return [bands[key][name] if bands.get(key) else None for key in keys]

        peers = PeerBand(
            minimum=edge("p25"), median=edge("median"), maximum=edge("p75"), label=PEER_LABEL
        )
    return radar_chart(
        title="Readiness by pillar",
        axes=[pillar["title"] for pillar in report["pillars"]],
        scores=[pillar["score"] for pillar in report["pillars"]],
        name="Your score",
        peers=peers,
    )


def _trend(scores):
    """``scores`` newest first (the snapshots' order); None with fewer than two."""
    scores = list(scores)
    if len(scores) < 2:
        return None
    zone = timezone.get_current_timezone()
    chart = line_chart(
        title="Overall readiness over time",
        series=[Series("Overall score", [(s.computed_at, s.overall) for s in reversed(scores)])],
        y_title="Overall score (0–100)",
        tz=zone,
        y_range=(0, 100),
    )
    return {
        "chart": chart,
        "first": scores[-1],
        "latest": scores[0],
        "since": format_time(scores[-1].computed_at, zone),
    }


# --- Pilot gates ---------------------------------------------------------------------------------


def pilot_gates(page: PortalTenant) -> list[dict]:
    """Each pilot AI system with its gate report, all in a fixed number of queries."""
    systems = [
        system
        for system in ai_systems_in_tenants(tenant_ids=[page.tenant.id])
        if system.stage == PILOT
    ]
    reports = ai_systems_gates(ai_systems=systems)
    rows = []
    for system in systems:
        report = reports[system.pk]
        criteria = [
            {**criterion, "links": _with_hrefs(page.tenant.slug, criterion.get("links"))}
            for criterion in report.criteria
        ]
        rows.append({"system": system, "report": report, "criteria": criteria})
    return rows


# --- The questionnaire ---------------------------------------------------------------------------


def _questionnaire(page: PortalTenant, assessment, *, bound: dict | None = None) -> dict:
    """Every pillar of ``assessment``'s framework with its questions, saved answers and (for a
    draft the user may answer) its form; ``bound`` replaces one pillar's form after an error."""
    tenant = page.tenant
    answers = {
        answer.question_key: answer
        for answer in selectors.assessment_answers(tenant=tenant, assessment=assessment)
    }
    editable = assessment.status == AssessmentStatus.DRAFT and page.can_edit
    pillars = []
    for pillar in assessment.framework.definition["pillars"]:
        questions = [{**question, "pillar": pillar["key"]} for question in pillar["questions"]]
        form = None
        if editable:
            form = (bound or {}).get(pillar["key"]) or PillarAnswersForm(
                questions=questions, answers=answers, prefix=pillar["key"]
            )
        rows = [
            {
                "question": question,
                "answer": answers.get(question["key"]),
                "label": _scale_label(question, answers.get(question["key"])),
            }
            for question in questions
        ]
        if form is not None:
            for row, fields in zip(rows, form.rows(), strict=True):
                row.update(fields)
        answered = sum(1 for row in rows if row["answer"] and row["answer"].value is not None)
        pillars.append(
            {
                "key": pillar["key"],
                "title": pillar["title"],
                "summary": pillar.get("summary", ""),
                "rows": rows,
                "form": form,
                "answered": answered,
            }
        )
    answered = sum(pillar["answered"] for pillar in pillars)
    total = sum(len(pillar["rows"]) for pillar in pillars)
    return {
        "assessment": assessment,
        "pillars": pillars,
        "editable": editable,
        "answered": answered,
        "total": total,
    }


def _scale_label(question: dict, answer) -> str:
    if answer is None or answer.value is None:
        return ""
    scale = question["scale"]
    return scale[answer.value] if 0 <= answer.value < len(scale) else str(answer.value)


@portal_tenant_view(write_capability="answer")
@require_GET
def assessment(request, page: PortalTenant):
    tenant = page.tenant
    draft = selectors.assessment_draft(tenant=tenant)
    shown = draft or selectors.assessment_last_submitted(tenant=tenant)
    context = {
        "draft": draft,
        "framework": _framework_or_none(),
        **(_questionnaire(page, shown) if shown else {"assessment": None}),
    }
    return render_portal(request, page, "readiness/assessment.html", section=SECTION, **context)


@portal_tenant_view(write_capability="answer")
@require_POST
def assessment_start(request, page: PortalTenant):
    try:
        started = services.assessment_start(tenant=page.tenant, user=request.user)
    except services.ReadinessConflict as error:
        messages.error(request, str(error))
    except ReadinessFramework.DoesNotExist:
        messages.error(request, "No readiness framework is loaded yet; your MSP team loads it.")
    else:
        copied = " with the answers of the last submitted one" if started.based_on_id else ""
        messages.success(request, f"Assessment started{copied}. Save each pillar as you go.")
    return redirect("portal_readiness:assessment", slug=page.tenant.slug)


@portal_tenant_view(write_capability="answer")
@require_POST
def assessment_pillar_save(request, page: PortalTenant, pillar: str):
    tenant = page.tenant
    draft = selectors.assessment_draft(tenant=tenant)
    if draft is None:
        messages.error(request, "There is no assessment in progress: start one first.")
        return redirect("portal_readiness:assessment", slug=tenant.slug)
    definition = next(
        (row for row in draft.framework.definition["pillars"] if row["key"] == pillar), None
    )
    if definition is None:
        messages.error(request, "That pillar is not part of this assessment.")
        return redirect("portal_readiness:assessment", slug=tenant.slug)
    questions = [{**question, "pillar": pillar} for question in definition["questions"]]
    keys = {question["key"] for question in questions}
    answers = {
        answer.question_key: answer
        for answer in selectors.assessment_answers(tenant=tenant, assessment=draft)
        if answer.question_key in keys
    }
    form = PillarAnswersForm(request.POST, questions=questions, answers=answers, prefix=pillar)
    if form.is_valid():
        changed = form.changed_answers(answers)
        try:
            for answer in changed:
                services.assessment_answer(
                    tenant=tenant, assessment=draft, user=request.user, **answer
                )
        except ValidationError as error:
            form.add_service_error(error)
        except services.ReadinessConflict as error:
            messages.error(request, str(error))
            return redirect("portal_readiness:assessment", slug=tenant.slug)
        else:
            saved = len(changed)
            messages.success(
                request,
                f"{definition['title']}: {saved} answer{'s' if saved != 1 else ''} saved."
                if saved
                else f"{definition['title']}: nothing changed.",
            )
            return redirect(
                reverse("portal_readiness:assessment", args=[tenant.slug]) + f"#pillar-{pillar}"
            )
    context = {
        "draft": draft,
        "framework": _framework_or_none(),
        **_questionnaire(page, draft, bound={pillar: form}),
    }
    return render_portal(
        request, page, "readiness/assessment.html", section=SECTION, status=400, **context
    )


@portal_tenant_view(write_capability="answer", edit_only=True)
@require_http_methods(["GET", "POST"])
def assessment_submit(request, page: PortalTenant):
    tenant = page.tenant
    draft = selectors.assessment_draft(tenant=tenant)
    if draft is None:
        messages.error(request, "There is no assessment in progress to submit.")
        return redirect("portal_readiness:assessment", slug=tenant.slug)
    progress = selectors.assessment_progress(tenant=tenant, assessment=draft)
    form = ConfirmSubmitForm(request.POST or None)
    error = None
    if request.method == "POST" and form.is_valid():
        try:
            services.assessment_submit(tenant=tenant, assessment=draft, user=request.user)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        except services.ReadinessConflict as exc:
            error = str(exc)
        else:
            messages.success(
                request,
                "Assessment submitted and scored. It is now read-only; the next assessment "
                "starts from its answers.",
            )
            return redirect("portal_readiness:overview", slug=tenant.slug)
    questions = selectors.framework_questions(draft.framework.definition)
    unanswered = [questions[key] for key in progress["unanswered"]]
    return render_portal(
        request,
        page,
        "readiness/submit.html",
        section=SECTION,
        status=400 if request.method == "POST" else 200,
        draft=draft,
        progress=progress,
        unanswered=unanswered,
        form=form,
        error=error,
    )
