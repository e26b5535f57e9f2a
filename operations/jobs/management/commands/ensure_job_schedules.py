from django.core.management.base import BaseCommand, CommandError

from operations.jobs.services import job_schedules_sync_for_tenant
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Give active tenants their nightly job schedules and pause other tenants' schedules "
        "(idempotent; edited times are kept)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Only this tenant (slug).")

    def handle(self, *args, tenant: str | None, **options):
        tenants = Tenant.objects.select_related("plan").order_by("slug")
        if tenant:
            tenants = tenants.filter(slug=tenant)
            if not tenants:
                raise CommandError(f"No tenant with slug {tenant!r}.")
        for each in tenants:
            schedules = job_schedules_sync_for_tenant(tenant=each)
            state = "active" if each.status == "active" else "paused"
            self.stdout.write(f"{each.slug}: {len(schedules)} schedule(s) {state}")
