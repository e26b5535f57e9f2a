import json
import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from operations.jobs.execution import runs_in
from operations.jobs.models import JobTrigger
from operations.jobs.services import job_submit, job_submit_fleet
from tenants.audit import AuditActor, audit_actor
from tenants.models import Tenant
from tenants.scoping import scoped_atomic


class Command(BaseCommand):
    help = "Submit a job run: in one tenant, MSP-wide, or fleet-wide (one child per tenant)."

    def add_arguments(self, parser):
        parser.add_argument("kind")
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--tenant", help="Tenant slug.")
        target.add_argument("--fleet", action="store_true", help="Every active tenant.")
        parser.add_argument("--parameters", default="{}", help="JSON object.")
        parser.add_argument("--wait", type=float, default=0, help="Wait up to N s for the end.")

    def handle(self, *args, kind, tenant, fleet, parameters, wait, **options):
        try:
            params = json.loads(parameters)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--parameters is not JSON: {exc}") from exc
        with audit_actor(AuditActor(label="manage.py run_job", source="command")):
            try:
                if fleet:
                    run = job_submit_fleet(
                        kind=kind, parameters=params, trigger=JobTrigger.SYSTEM, label="run_job"
                    )
                else:
                    target = None
                    if tenant:
                        target = Tenant.objects.filter(slug=tenant).first()
                        if target is None:
                            raise CommandError(f"No tenant with slug {tenant!r}.")
                    run = job_submit(
                        tenant=target, kind=kind, parameters=params, label="manage.py run_job"
                    )
            except ValidationError as exc:
                raise CommandError(f"Refused: {exc.message_dict}") from exc
        self.stdout.write(f"queued {run.kind} run {run.pk} (task {run.task_id})")
        deadline = time.monotonic() + wait
        while wait and time.monotonic() < deadline:
            with scoped_atomic(run.tenant_id):
                run = runs_in(run.tenant_id).get(pk=run.pk)
            if run.is_finished:
                self.stdout.write(f"{run.status}: {json.dumps(run.result)} {run.error}".strip())
                return
            time.sleep(0.5)
        if wait:
            self.stdout.write(f"still {run.status} after {wait:.0f} s ({run.progress}%)")
