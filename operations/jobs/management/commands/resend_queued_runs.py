from django.core.management.base import BaseCommand, CommandError

from operations.jobs.services import job_runs_resend_queued
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Re-send queued job runs whose broker message was lost (Redis restarted empty), now. "
        "Runs whose message is still in the outbox or the broker are left alone; a re-send of "
        "a run that started meanwhile is dropped by the worker, so nothing runs twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=float,
            default=60,
            metavar="SECONDS",
            help="Only runs queued at least this long (default 60).",
        )
        parser.add_argument("--tenant", metavar="SLUG", help="Only this tenant's runs.")
        parser.add_argument("--limit", type=int, default=5000, help="At most this many runs.")

    def handle(self, *args, older_than, tenant, limit, **options):
        if older_than < 0 or limit < 1:
            raise CommandError("--older-than must be at least 0 and --limit at least 1.")
        target = None
        if tenant:
            target = Tenant.objects.filter(slug=tenant).first()
            if target is None:
                raise CommandError(f"No tenant {tenant!r}.")
        runs = job_runs_resend_queued(older_than=older_than, tenant=target, limit=limit)
        for run in runs:
            self.stdout.write(
                f"re-sent run {run.pk} ({run.kind}, tenant {run.tenant_id or 'fleet'}, "
                f"queued since {run.created_at:%Y-%m-%d %H:%M:%S})"
            )
        self.stdout.write(f"re-sent {len(runs)} queued run(s)")
