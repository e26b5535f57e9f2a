"""The ``readiness_scan`` job kind: a readiness score snapshot of one tenant, nightly.

Redelivery-safe: the snapshot is written inside ``run.once``, and ``readiness_rescore`` keeps
one snapshot per job run, so a later attempt reads the stored summary instead. The telemetry
store out of reach (the coverage signal reads it) is transient: the run is retried with backoff
rather than failed, and no snapshot is written without that signal.
"""

from __future__ import annotations

from operations.jobs.exceptions import TransientJobError
from operations.jobs.registry import job_kind
from operations.readiness.services import readiness_rescore
from operations.telemetry.exceptions import TelemetryUnavailable


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
    try:
        summary = run.once(
            "score", lambda: _summary(readiness_rescore(tenant=run.tenant, job_run_id=run.id))
        )
    except TelemetryUnavailable as exc:
        raise TransientJobError(str(exc)) from exc
    run.log(f"Readiness {summary['overall']} (level {summary['level']}).")
    return summary
