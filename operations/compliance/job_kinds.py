"""The ``compliance_scan`` job kind: every check over one tenant's estate, nightly.

Redelivery-safe: the scan runs inside ``run.once("scan", …)``, so its findings, scores and
incidents commit together with the run's checkpoint; a later attempt after a lost worker
reads the stored summary instead of scanning again. A fleet run fans out one child per tenant.
"""

from __future__ import annotations

from operations.compliance.services import compliance_run_for_tenant
from operations.jobs.registry import job_kind


@job_kind(
    "compliance_scan",
    title="Compliance scan",
    description=(
        "Runs every automated compliance check over the tenant's AI estate: updates "
        "findings, records a score per framework, and opens an incident for a prohibited "
        "practice."
    ),
    nightly=True,
)
def compliance_scan(run, parameters: dict) -> dict:
    summary = run.once(
        "scan", lambda: compliance_run_for_tenant(tenant=run.tenant, job_run_id=run.id)
    )
    run.log(
        f"{summary['checks']} checks: {summary['passed']} passed, {summary['failed']} failed, "
        f"{summary['waived']} waived, {summary['not_applicable']} not applicable."
    )
    return summary
