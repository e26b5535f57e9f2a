"""Load the demo: MSP staff, several client tenants in different lifecycle states, their users,
and each tenant's estate, telemetry, incidents, jobs, findings and recommendations, as much of
each as its ``Activity`` says (a prospect has nothing deployed; a suspended client's feed stopped).

It lives in ``msp``, which wires the contexts together: ``tenants`` imports none of them.

Idempotent: everything is looked up by slug or username first, so a second run writes nothing.
Writes go through ``tenants.services`` so the audit log shows what the demo did.
"""

from __future__ import annotations

import datetime as dt
import os
import unicodedata
from base64 import b32encode
from collections import Counter
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_otp.oath import TOTP

from operations.compliance.demo import seed_compliance
from operations.events.demo import seed_events
from operations.incidents.demo import (
    BUSY_SCENARIOS,
    CALM_SCENARIOS,
    ONBOARDING_SCENARIOS,
    PAST_SCENARIOS,
    seed_incident_owners,
    seed_incidents,
)
from operations.inventory.demo import seed_inventory
from operations.jobs.demo import seed_jobs
from operations.optimisation.demo import seed_optimisation
from operations.readiness.demo import seed_readiness
from operations.readiness.demo_gates import seed_gates
from operations.reports.demo import seed_reports
from operations.telemetry.demo import DETAIL_DAYS, seed_telemetry
from tenants import selectors, services
from tenants.audit import AUTOMATIC_LABEL, AuditActor, audit_actor
from tenants.models import (
    Coverage,
    Membership,
    MspRole,
    OnboardingStep,
    PlanTier,
    Tenant,
    TenantRole,
    TenantStatus,
)
from tenants.scoping import tenant_scope

User = get_user_model()

DEMO_PASSWORD = "groundwork-demo"  # noqa: S105 - the documented demo password, shown on screen
# MSP staff must give a second factor; demo staff share this published authenticator key.
# Demo only: anyone who reads this file can make their codes.
DEMO_TOTP_KEY = b"groundwork-demo-2fa!"

# How far along the lifecycle each status is, and the path that reaches it from prospect.
_STATUS_PATH: tuple[str, ...] = (
    TenantStatus.PROSPECT,
    TenantStatus.ONBOARDING,
    TenantStatus.ACTIVE,
    TenantStatus.SUSPENDED,
)
_REQUIRED_STEPS = (
    "contract_signed",
    "contacts_named",
    "first_inventory",
    "baseline_readiness",
    "governance_owner",
)


def _ascii(name: str) -> str:
    """'Chloé' -> 'chloe', for e-mail addresses."""
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()


@dataclass(frozen=True)
class StaffSpec:
    username: str
    role: str
    first_name: str
    last_name: str
    tenants: tuple[str, ...] = ()


@dataclass(frozen=True)
class Activity:
    """How much a tenant's demo has going on; each area's seed gets its part as parameters."""

    #: "none" (nothing deployed), "pilot" (an onboarding client's first pilot), "full" or
    #: "kept" (the full estate in the good order a mature client keeps it).
    estate: str = "full"
    telemetry_days: int = 10
    #: Every GPU node on the diurnal load, no spike: a well-sized estate.
    calm_telemetry: bool = False
    #: The feed stopped this many days ago; everything else is seeded as of then.
    quiet_days: int = 0
    spend_jump: bool = False
    incidents: tuple[str, ...] = BUSY_SCENARIOS
    alert_rules: bool = True
    #: Every open incident resolved at the end (a client about to be suspended).
    incidents_closed_out: bool = False
    jobs: bool = True
    #: A failed job run among the demo's runs (a calm tenant's all went through).
    job_failures: bool = True
    compliance_scans: int = 2
    waiver: bool = True
    optimisation: bool = True
    #: Acme's pilots blocked at the production gate, and its draft quarterly review.
    gates: bool = False
    review: bool = False


#: Everything at once: open and breached incidents, a spend jump, blocked pilots.
BUSY = Activity(spend_jump=True, gates=True, review=True)
#: A mature client: a well-kept estate, steady load, a couple of faults fixed quickly.
CALM = Activity(estate="kept", calm_telemetry=True, incidents=CALM_SCENARIOS, job_failures=False)
#: Mid-onboarding: a pilot, two days of telemetry, a question, a first compliance scan.
ONBOARDING = Activity(
    estate="pilot",
    telemetry_days=2,
    incidents=ONBOARDING_SCENARIOS,
    alert_rules=False,
    compliance_scans=1,
    waiver=False,
)
#: Suspended four days ago: the estate is kept, the feed stopped, nothing has happened since.
SUSPENDED = Activity(
    telemetry_days=6,
    quiet_days=4,
    incidents=PAST_SCENARIOS,
    alert_rules=False,
    incidents_closed_out=True,
)
#: Signed nothing yet: no estate and no operations; its readiness is scored on nothing.
PROSPECT = Activity(
    estate="none",
    telemetry_days=0,
    incidents=(),
    alert_rules=False,
    jobs=False,
    compliance_scans=0,
    optimisation=False,
)


@dataclass(frozen=True)
class TenantSpec:
    slug: str
    name: str
    status: str
    industry: str
    region: str
    data_residency: str
    plan: dict = field(default_factory=dict)
    steps_done: tuple[str, ...] = ()
    # (first name, last name) of the client admin, member and viewer.
    people: tuple[tuple[str, str], ...] = ()
    # Which demo AI estate the tenant gets (operations.inventory.demo profiles); None: no
    # estate and no demo logins, only a readiness assessment (a benchmark peer).
    estate: str | None = "finance"
    activity: Activity = BUSY


STAFF: tuple[StaffSpec, ...] = (
    StaffSpec("admin", MspRole.ADMIN, "Morgan", "Reyes"),
    StaffSpec("engineer", MspRole.ENGINEER, "Priya", "Natarajan", ("acme", "borealis")),
    StaffSpec("analyst", MspRole.ANALYST, "Tomás", "Lindqvist", ("cobalt",)),
)

TENANTS: tuple[TenantSpec, ...] = (
    TenantSpec(
        slug="acme",
        name="Acme Analytics",
        status=TenantStatus.ACTIVE,
        industry="Finance",
        region="eu-west",
        data_residency="EU",
        plan={
            "tier": PlanTier.ENTERPRISE,
            "coverage": Coverage.BUSINESS_HOURS,
            "timezone": "Europe/London",
            "business_days": [0, 1, 2, 3, 4],
            "business_hours_start": "08:00",
            "business_hours_end": "18:00",
            "frameworks_in_scope": ["eu-ai-act", "iso-42001"],
            "sev1_acknowledge_minutes": 10,
            "sev1_resolve_minutes": 120,
        },
        steps_done=(*_REQUIRED_STEPS, "integrations_connected"),
        people=(("Alice", "Moreau"), ("Ben", "Okafor"), ("Chloé", "Dubois")),
    ),
    TenantSpec(
        slug="borealis",
        name="Borealis Bank",
        status=TenantStatus.ONBOARDING,
        industry="Banking",
        region="eu-north",
        data_residency="EU",
        plan={"tier": PlanTier.PROFESSIONAL, "frameworks_in_scope": ["eu-ai-act"]},
        steps_done=("contract_signed", "contacts_named"),
        people=(("Ingrid", "Halvorsen"), ("Mikael", "Virtanen"), ("Sofia", "Berg")),
        activity=ONBOARDING,
    ),
    TenantSpec(
        slug="cobalt",
        name="Cobalt Health",
        status=TenantStatus.ACTIVE,
        industry="Healthcare",
        region="us-east",
        data_residency="US",
        plan={
            "tier": PlanTier.ENTERPRISE,
            "coverage": Coverage.ALWAYS,
            "timezone": "America/New_York",
            "frameworks_in_scope": ["nist-ai-rmf", "iso-42001"],
        },
        steps_done=_REQUIRED_STEPS,
        people=(("Grace", "Whitfield"), ("Marcus", "Bell"), ("Dana", "Kowalski")),
        estate="health",
        activity=CALM,
    ),
    TenantSpec(
        slug="dunmore",
        name="Dunmore Logistics",
        status=TenantStatus.PROSPECT,
        industry="Logistics",
        region="uk-south",
        data_residency="UK",
        plan={"tier": PlanTier.ESSENTIAL},
        people=(("Fiona", "Campbell"), ("Rory", "MacLeod"), ("Isla", "Fraser")),
        estate="logistics",
        activity=PROSPECT,
    ),
    TenantSpec(
        slug="ember",
        name="Ember Retail",
        status=TenantStatus.SUSPENDED,
        industry="Retail",
        region="eu-central",
        data_residency="DE,FR",
        plan={"tier": PlanTier.PROFESSIONAL, "frameworks_in_scope": ["eu-ai-act"]},
        steps_done=_REQUIRED_STEPS,
        people=(("Lena", "Vogel"), ("Hugo", "Lefèvre"), ("Nina", "Schmidt")),
        estate="logistics",
        activity=SUSPENDED,
    ),
)

# The MSP's other finance clients: readiness shows a peer band only with five or more tenants
# of the same industry, so acme sees one. Light on purpose (an assessment and a score each,
# people without a password): they keep `make demo` quick.
BENCHMARK_PEERS: tuple[TenantSpec, ...] = tuple(
    TenantSpec(
        slug=slug,
        name=name,
        status=TenantStatus.ACTIVE,
        industry="Finance",
        region=region,
        data_residency=residency,
        steps_done=_REQUIRED_STEPS,
        people=people,
        estate=None,
    )
    for slug, name, region, residency, people in (
        (
            "fjord",
            "Fjord Capital",
            "eu-north",
            "EU",
            (("Astrid", "Lund"), ("Erik", "Holm"), ("Maja", "Sand")),
        ),
        (
            "granite",
            "Granite Mutual",
            "uk-south",
            "UK",
            (("Owen", "Price"), ("Carys", "Evans"), ("Rhys", "Morgan")),
        ),
        (
            "harbour",
            "Harbour Pay",
            "eu-west",
            "EU",
            (("Aoife", "Byrne"), ("Cian", "Walsh"), ("Niamh", "Ryan")),
        ),
        (
            "ivy",
            "Ivy Lending",
            "us-east",
            "US",
            (("Jordan", "Hayes"), ("Riley", "Brooks"), ("Casey", "Ward")),
        ),
        (
            "juniper",
            "Juniper Wealth",
            "eu-central",
            "EU",
            (("Lukas", "Brandt"), ("Mia", "Krüger"), ("Jonas", "Weber")),
        ),
    )
)
ALL_TENANTS = (*TENANTS, *BENCHMARK_PEERS)

CLIENT_ROLES: tuple[tuple[str, str], ...] = (
    ("admin", TenantRole.ADMIN),
    ("member", TenantRole.MEMBER),
    ("viewer", TenantRole.VIEWER),
)


class Command(BaseCommand):
    help = "Load demo tenants, MSP staff and client users (idempotent). Password: groundwork-demo."

    def handle(self, *args, **options):
        self._report(self.seed())

    def seed(self, *, operations: bool = True) -> dict[str, Tenant]:
        """The demo, without the report: the staff, the tenants (made or walked forward to their
        demo status), their people and, unless ``operations`` is false, each area's demo data.
        Without operations it is only the people and lifecycle part (the tests call it so: each
        area's data, ten days of telemetry first, is nearly all of a run's time)."""
        self.changes: Counter[str] = Counter()
        self.logins: list[tuple[str, str, str]] = []  # (username, role, tenant)
        # One transaction: an interrupted run leaves nothing half-made for the next one.
        automatic = AuditActor(label=AUTOMATIC_LABEL, source="command")
        with audit_actor(automatic), transaction.atomic():
            staff = {spec.username: self._staff_user(spec) for spec in STAFF}
            # The MSP's admin did the rest, as a person the audit log names.
            admin = staff["admin"]
            with audit_actor(AuditActor(label=admin.get_full_name(), user=admin, source="command")):
                tenants = self._tenants_and_people(staff)
                if operations:
                    for spec in ALL_TENANTS:
                        self._operations(spec, tenants[spec.slug])
        return tenants

    def _tenants_and_people(self, staff: dict) -> dict[str, Tenant]:
        """The tenants, their staff assignments and client users, in that order."""
        tenants: dict[str, Tenant] = {}
        for spec in ALL_TENANTS:
            # The assigned engineer ticks the checklist; the MSP admin does it elsewhere.
            engineer = next(s for s in STAFF if s.role == MspRole.ENGINEER)
            owner = staff[engineer.username if spec.slug in engineer.tenants else "admin"]
            tenants[spec.slug] = self._tenant(spec, completed_by=owner)
        for spec in STAFF:
            for slug in spec.tenants:
                user = staff[spec.username]
                if not user.staff_assignments.filter(tenant=tenants[slug]).exists():
                    services.staff_assign(tenant=tenants[slug], user=user)
                    self.changes["staff assignment(s)"] += 1
        for spec in ALL_TENANTS:
            self._client_users(spec, tenants[spec.slug])
        return tenants

    # --- Operations: each area seeds itself, idempotently -------------------------------------

    def _operations(self, spec: TenantSpec, tenant: Tenant) -> None:
        if spec.estate is None:
            # A benchmark peer: its readiness score is all the demo needs of it.
            if seed_readiness(tenant)["assessments"]:
                self.changes["benchmark peer assessment(s)"] += 1
            return
        activity = spec.activity
        # A suspended client's story stops when its feed did.
        as_of = timezone.now() - dt.timedelta(days=activity.quiet_days)
        if activity.estate != "none":
            counts = seed_inventory(tenant, profile=spec.estate, scope=activity.estate)
            created = sum(section.get("created", 0) for section in counts.values())
            if created:
                self.changes["inventory row(s)"] += created
        if activity.telemetry_days:
            # Before incidents: the demo's alert-style incidents point at its patterns.
            seed_telemetry(
                tenant,
                days=activity.telemetry_days,
                detail_days=min(DETAIL_DAYS, activity.telemetry_days),
                spend_jump=activity.spend_jump,
                calm=activity.calm_telemetry,
                quiet_days=activity.quiet_days,
            )
        incidents = seed_incidents(
            tenant, scenarios=activity.incidents, alert_rules=activity.alert_rules, now=as_of
        )
        if incidents:
            self.changes["incident(s)"] += len(incidents)
        if activity.jobs:
            seed_jobs(tenant, failures=activity.job_failures, now=as_of)
        # After the estate, telemetry and incidents they read.
        if activity.compliance_scans:
            seed_compliance(
                tenant, scans=activity.compliance_scans, waiver=activity.waiver, now=as_of
            )
        if activity.optimisation:
            seed_optimisation(tenant, now=as_of)
        if activity.gates:
            # Two pilots blocked for different reasons, one let through by an override.
            admin = User.objects.filter(username="admin").first()
            made = seed_gates(tenant, granted_by=admin)
            for kind, count in made.items():
                if count:
                    self.changes[f"readiness gate {kind}"] += count
        if incidents:
            # On the run that made them: every open incident the above opened gets an owner.
            seed_incident_owners(tenant, close_out=activity.incidents_closed_out, now=as_of)
        # Last: its snapshots read the signals of everything above.
        made = seed_readiness(tenant)
        if made["assessments"]:
            self.changes["readiness assessment(s)"] += made["assessments"]

        # Both for active tenants only.
        if seed_events(tenant):
            self.changes["webhook demo row(s)"] += 1
        # After everything a report reads: last month's report, and a draft review for acme.
        made = seed_reports(tenant, with_review=activity.review)
        if made:
            self.changes["report(s)"] += made

    # --- Staff ------------------------------------------------------------------------------

    def _staff_user(self, spec: StaffSpec):
        user = User.objects.filter(username=spec.username).first()
        if user is None:
            user = services.staff_user_create(
                username=spec.username,
                msp_role=spec.role,
                password=DEMO_PASSWORD,
                email=f"{spec.username}@groundwork.example.com",
                first_name=spec.first_name,
                last_name=spec.last_name,
            )
            self.changes["MSP staff user(s)"] += 1
        elif user.msp_role != spec.role:
            self.stderr.write(
                self.style.WARNING(
                    f"User '{spec.username}' exists with MSP role '{user.msp_role or 'none'}', "
                    f"not {spec.role}; left as it is."
                )
            )
        if selectors.mfa_authenticator_for(user=user) is None:
            services.mfa_authenticator_provision(
                user=user, key=DEMO_TOTP_KEY, name="Demo authenticator"
            )
            self.changes["demo authenticator(s)"] += 1
        assigned = ", ".join(spec.tenants) if spec.tenants else "all tenants"
        self.logins.append((spec.username, spec.role, assigned))
        return user

    # --- Tenants ----------------------------------------------------------------------------

    def _tenant(self, spec: TenantSpec, *, completed_by) -> Tenant:
        tenant = Tenant.objects.filter(slug=spec.slug).first()
        if tenant is None:
            tenant = services.tenant_create(
                name=spec.name,
                slug=spec.slug,
                industry=spec.industry,
                region=spec.region,
                data_residency=spec.data_residency,
            )
            if spec.plan:
                services.service_plan_update(tenant=tenant, **spec.plan)
            self.changes["tenant(s)"] += 1
        return self._advance(tenant, spec, completed_by=completed_by)

    def _advance(self, tenant: Tenant, spec: TenantSpec, *, completed_by) -> Tenant:
        """Walk the tenant forward to its demo status; never back, never past it."""
        if tenant.status not in _STATUS_PATH:
            return tenant  # offboarded: the end of the road
        current = _STATUS_PATH.index(tenant.status)
        target = _STATUS_PATH.index(spec.status)
        for status in _STATUS_PATH[current + 1 : target + 1]:
            if status == TenantStatus.ACTIVE and tenant.status == TenantStatus.ONBOARDING:
                self._complete_steps(tenant, spec.steps_done, user=completed_by)
            tenant = services.tenant_transition(tenant=tenant, to_status=status)
            if status == TenantStatus.ONBOARDING:
                self._complete_steps(tenant, spec.steps_done, user=completed_by)
            self.changes["lifecycle transition(s)"] += 1
        return tenant

    def _complete_steps(self, tenant: Tenant, keys: tuple[str, ...], *, user) -> None:
        # OnboardingStep is tenant-owned: its manager only answers inside the tenant's scope.
        with tenant_scope(tenant.id):
            for step in OnboardingStep.objects.filter(key__in=keys, completed_at__isnull=True):
                services.onboarding_step_set_done(
                    tenant=tenant, step=step, done=True, user=user, notes="Done (demo data)."
                )

    # --- Client users -----------------------------------------------------------------------

    def _client_users(self, spec: TenantSpec, tenant: Tenant) -> None:
        for (suffix, role), (first_name, last_name) in zip(CLIENT_ROLES, spec.people, strict=True):
            username = f"{spec.slug}-{suffix}"
            user = User.objects.filter(username__iexact=username).first()
            if user is None:
                services.membership_create(
                    tenant=tenant,
                    username=username,
                    role=role,
                    email=f"{_ascii(first_name)}.{_ascii(last_name)}@{spec.slug}.example.com",
                    # A benchmark peer's people do not sign in (and hashing is slow).
                    password=DEMO_PASSWORD if spec.estate is not None else None,
                    first_name=first_name,
                    last_name=last_name,
                )
                self.changes["client user(s)"] += 1
            else:
                membership = Membership.objects.filter(user=user).select_related("tenant").first()
                if membership is None or membership.tenant_id != tenant.id:
                    self.stderr.write(
                        self.style.WARNING(
                            f"User '{username}' exists but is not a member of {spec.slug}; "
                            "left as it is."
                        )
                    )
            if spec.estate is not None:
                self.logins.append((username, role, spec.slug))

    # --- Output -----------------------------------------------------------------------------

    def _report(self, tenants: dict[str, Tenant]) -> None:
        if self.changes:
            done = ", ".join(f"{count} {what}" for what, count in self.changes.items())
            self.stdout.write(self.style.SUCCESS(f"seed_demo: created or advanced {done}."))
        else:
            self.stdout.write("seed_demo: the demo data is already in place; nothing changed.")

        self.stdout.write("")
        self.stdout.write("Tenants")
        for spec in TENANTS:
            tenant = tenants[spec.slug]
            self.stdout.write(f"  {tenant.slug:<10} {tenant.name:<20} {tenant.status}")
        peers = ", ".join(spec.slug for spec in BENCHMARK_PEERS)
        self.stdout.write(
            f"  and {len(BENCHMARK_PEERS)} Finance peers for acme's benchmark: {peers}"
        )

        headers = ("username", "password", "role", "tenant")
        rows = [(username, DEMO_PASSWORD, role, where) for username, role, where in self.logins]
        widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]
        self.stdout.write("")
        self.stdout.write(
            "Demo logins (MSP staff at /admin/ and /portal/, client users at /portal/)"
        )
        for row in (headers, None, *rows):
            cells = (
                ("-" * w for w in widths)
                if row is None
                else (c.ljust(w) for c, w in zip(row, widths, strict=True))
            )
            self.stdout.write("  ".join(cells).rstrip())

        demo_key = b32encode(DEMO_TOTP_KEY).decode()
        totp = TOTP(DEMO_TOTP_KEY)
        self.stdout.write("")
        self.stdout.write("Two-factor sign-in (MSP staff): add this key to an authenticator app")
        self.stdout.write(f"  key            {demo_key}")
        self.stdout.write(
            f"  otpauth URI    otpauth://totp/Groundwork:demo?secret={demo_key}&issuer=Groundwork"
        )
        self.stdout.write(f"  or run         oathtool --totp -b {demo_key}")
        self.stdout.write(f"  code right now {totp.token():06d} (each code lasts 30 seconds)")

        base = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
        self.stdout.write("")
        self.stdout.write("URLs")
        for label, path in (
            ("Client portal", "/portal/"),
            ("MSP admin", "/admin/"),
            ("API docs", "/api/docs/"),
            ("Health", "/healthz"),
        ):
            self.stdout.write(f"  {label:<14} {base}{path}")
