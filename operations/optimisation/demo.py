"""Demo optimisation data: a scan of each demo tenant's telemetry and inventory, and a live
schedule so the demo's beat and worker visibly refresh recommendations.

``seed_optimisation(tenant)`` runs after the inventory, telemetry (ten days, rolled up: enough
history for the capacity trend and the cost anomaly), incidents, jobs and compliance seeds. It
rolls up any pending telemetry hours, scans the tenant through the same service as the nightly
job, and for an active tenant:

- makes a schedule running ``optimisation_scan`` every 30 minutes (the nightly one comes from
  the jobs seed, as for every nightly kind);
- accepts the retired-system recommendation once, so the lifecycle shows in the list.

With the demo estate this finds, per tenant: the idle ``<slug>-gpu-idle-01`` (about 2 %
utilisation); the ``<slug>-gpu-hot`` cluster, which climbed about 2 points a day to peak at
about 97 % (capacity forecast: saturated now, its daily peaks in the evidence); the tenant's
GPUs as a whole, whose daily peak follows it up (capacity forecast on the trend: 90 % in a few
days); and the retired AI system still holding a deployment on ``<slug>-gpu-main-02``. For
acme, seeded with the spend jump, a cost anomaly too: the last three whole UTC days each cost
about 30 % more than the usual day, led by the scaled-out production deployment. (The anomaly judges
the last whole day: a scan after the next UTC midnight no longer sees it as the last day.)
Idempotent: a re-run refreshes the same rows (upserts by tenant, kind and subject) and adds
nothing.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django_celery_beat.models import CrontabSchedule

from operations.jobs.models import JobSchedule
from operations.jobs.services import job_schedule_create
from operations.optimisation.models import Recommendation, RecommendationKind, RecommendationStatus
from operations.optimisation.services import optimisation_run_for_tenant, recommendation_accept
from operations.telemetry.services import telemetry_rollup_pending
from tenants.audit import AUTOMATIC_LABEL, AuditActor, audit_actor_unless_set
from tenants.models import TenantStatus
from tenants.scoping import tenant_scope

DEMO_ACTOR = AuditActor(label=AUTOMATIC_LABEL, source="command")
LIVE_SCHEDULE_KEY = "demo:optimisation-scan-every-30-minutes"


def _live_schedule(tenant) -> JobSchedule:
    existing = JobSchedule.objects.filter(key=LIVE_SCHEDULE_KEY).first()
    if existing is not None:
        return existing
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="7,37",
        hour="*",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=tenant.plan.timezone,
    )
    return job_schedule_create(
        tenant=tenant,
        key=LIVE_SCHEDULE_KEY,
        kind="optimisation_scan",
        crontab=crontab,
        description=f"Optimisation scan for {tenant.name}, every 30 minutes (demo)",
    )


def seed_optimisation(tenant, *, now: dt.datetime | None = None) -> dict:
    """Idempotent: refresh the tenant's recommendations from its demo telemetry."""
    now = now or timezone.now()
    with audit_actor_unless_set(DEMO_ACTOR), tenant_scope(tenant.id):
        telemetry_rollup_pending(tenant=tenant, now=now)
        summary = optimisation_run_for_tenant(tenant=tenant, as_of=now)
        if tenant.status == TenantStatus.ACTIVE:
            _live_schedule(tenant)
            retired = Recommendation.objects.filter(
                tenant=tenant,
                kind=RecommendationKind.RETIRED_CAPACITY,
                status=RecommendationStatus.OPEN,
                accepted_at__isnull=True,
            ).first()
            if retired is not None:
                recommendation_accept(tenant=tenant, recommendation=retired)
    return summary
