"""The ``readiness_scan`` job kind: a readiness score snapshot of one tenant, nightly.

Redelivery-safe: the snapshot is written inside ``run.once``, and ``readiness_rescore`` keeps
one snapshot per job run, so a later attempt reads the stored summary instead.
"""

from __future__ import annotations

from operations.jobs.registry import job_kind
from operations.readiness.services import readiness_rescore


def _summary(score) -> dict:
    return {
        "score_id": score.pk,
        "overall": str(score.overall),
        "level": score.level,
        "pillars": score.pillars,
        "framework": score.framework_id,
        "assessment": score.assessment_id,
    }


@job_kind(
    "readiness_scan",
    title="Readiness scan",
    description=(
        "Scores the tenant's AI readiness from the live signals of its estate and its latest "
        "submitted assessment, and keeps the snapshot with the inputs that produced it."
    ),
    nightly=True,
)
def readiness_scan(run, parameters: dict) -> dict:
    summary = run.once(
        "score", lambda: _summary(readiness_rescore(tenant=run.tenant, job_run_id=run.id))
    )
    run.log(f"Readiness {summary['overall']} (level {summary['level']}).")
    return summary
