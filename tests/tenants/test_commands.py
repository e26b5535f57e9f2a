"""The management commands behind the first-run contract: seed_demo and issue_token."""

from __future__ import annotations

import datetime
from base64 import b32decode
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Max, Min
from django.utils import timezone
from django_otp.oath import TOTP
from rest_framework.test import APIClient

from operations.compliance.models import Finding, FindingStatus, Score, Waiver
from operations.incidents.models import OPEN_STATUSES, Incident, TimelineEntry
from operations.inventory.models import AISystem, ComputeResource, Deployment
from operations.jobs.models import JobRun, JobSchedule, JobStatus
from operations.optimisation.models import Recommendation, RecommendationStatus
from operations.reports.models import Report
from operations.telemetry.models import TelemetryRollup
from operations.telemetry.storage import sample_store
from tenants import services
from tenants.models import (
    ApiToken,
    AuditAction,
    AuditEvent,
    Coverage,
    Membership,
    MspRole,
    OnboardingStep,
    PlanTier,
    StaffAssignment,
    Tenant,
    TenantRole,
    TenantStatus,
)
from tenants.scoping import tenant_scope
from tests.conftest import shared_rows
from tests.factories import TenantFactory, make_member, make_staff

User = get_user_model()
DEMO_PASSWORD = "groundwork-demo"


def run(command: str, *args) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def seed_people_and_lifecycle() -> dict[str, Tenant]:
    """seed_demo's staff, tenants (made or walked forward) and client users, without each area's
    demo data (ten days of telemetry and the rest: nearly all of a whole run's time)."""
    from msp.management.commands.seed_demo import Command

    return Command(stdout=StringIO(), stderr=StringIO()).seed(operations=False)


def members_url(slug: str) -> str:
    return f"/api/v1/tenants/{slug}/members/"


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def counts() -> dict[str, int]:
    # Inside every tenant's scope: on PostgreSQL, row-level security hides steps otherwise.
    with tenant_scope(*Tenant.objects.values_list("id", flat=True)):
        steps = OnboardingStep.objects.all()
        step_counts = {
            "steps": steps.count(),
            "steps_done": steps.filter(completed_at__isnull=False).count(),
        }
    return {
        "users": User.objects.count(),
        "tenants": Tenant.objects.count(),
        "memberships": Membership.objects.count(),
        "assignments": StaffAssignment.objects.count(),
        **step_counts,
        "audit_creates": AuditEvent.objects.filter(action=AuditAction.CREATE).count(),
        "audit_events": AuditEvent.objects.count(),
    }


# --- seed_demo ------------------------------------------------------------------------------


def rollup_span(tenant) -> tuple[datetime.datetime, datetime.datetime]:
    """The first and last hour of the tenant's telemetry."""
    with tenant_scope(tenant.id):
        hours = TelemetryRollup.objects.aggregate(first=Min("bucket"), last=Max("bucket"))
    return hours["first"], hours["last"]


def latest_scores(tenant) -> list[float]:
    """The tenant's compliance score per framework in its latest scan."""
    latest = Score.objects.filter(tenant=tenant).latest("computed_at").scan_id
    return [float(s) for s in Score.objects.filter(scan_id=latest).values_list("score", flat=True)]


def open_saving() -> float:
    rows = Recommendation.objects.filter(status=RecommendationStatus.OPEN)
    return float(sum(row.estimated_monthly_saving or 0 for row in rows))


@pytest.fixture(scope="class")
def demo(django_db_setup, django_db_blocker) -> str:
    """One seed_demo on the empty database for the whole class (it seeds five tenants and ten
    days of telemetry): each test starts from what it made and undoes only its own changes.
    Its output."""
    yield from shared_rows(django_db_blocker, lambda: run("seed_demo"))


@pytest.mark.django_db
class TestSeedDemo:
    def test_creates_tenants_in_their_lifecycle_states(self, demo):
        statuses = dict(Tenant.objects.values_list("slug", "status"))
        assert statuses["acme"] == TenantStatus.ACTIVE
        assert statuses["borealis"] == TenantStatus.ONBOARDING
        assert statuses["cobalt"] == TenantStatus.ACTIVE
        assert statuses["dunmore"] == TenantStatus.PROSPECT
        assert statuses["ember"] == TenantStatus.SUSPENDED

        acme = Tenant.objects.select_related("plan").get(slug="acme")
        assert acme.name == "Acme Analytics"
        assert (acme.industry, acme.region, acme.data_residency) == ("Finance", "eu-west", "EU")
        assert acme.plan.tier == PlanTier.ENTERPRISE
        assert acme.plan.coverage == Coverage.BUSINESS_HOURS
        assert acme.plan.timezone == "Europe/London"
        cobalt = Tenant.objects.select_related("plan").get(slug="cobalt")
        assert cobalt.plan.coverage == Coverage.ALWAYS
        assert cobalt.data_residency == "US"

    def test_onboarding_tenant_has_some_steps_done_and_active_ones_finished(self, demo):
        borealis = Tenant.objects.get(slug="borealis")
        with tenant_scope(borealis.id):
            steps = list(OnboardingStep.objects.all())
        done = [step for step in steps if step.done]
        assert len(steps) > len(done) > 0
        assert all(step.completed_by is not None for step in done)

        for slug in ("acme", "cobalt"):
            tenant = Tenant.objects.get(slug=slug)
            with tenant_scope(tenant.id):
                open_required = OnboardingStep.objects.filter(
                    required=True, completed_at__isnull=True
                )
                assert not open_required.exists(), slug

    def test_creates_staff_and_client_users_who_can_log_in(self, demo):
        admin = User.objects.get(username="admin")
        assert admin.msp_role == MspRole.ADMIN
        assert admin.is_staff
        assert admin.is_superuser
        assert admin.check_password(DEMO_PASSWORD)

        engineer = User.objects.get(username="engineer")
        assert engineer.msp_role == MspRole.ENGINEER
        assert engineer.staff_assignments.count() == 2
        analyst = User.objects.get(username="analyst")
        assert analyst.msp_role == MspRole.ANALYST
        assert analyst.staff_assignments.count() == 1

        for tenant in Tenant.objects.all():
            roles = dict(
                Membership.objects.filter(tenant=tenant).values_list("user__username", "role")
            )
            assert roles == {
                f"{tenant.slug}-admin": TenantRole.ADMIN,
                f"{tenant.slug}-member": TenantRole.MEMBER,
                f"{tenant.slug}-viewer": TenantRole.VIEWER,
            }
        assert User.objects.get(username="acme-viewer").check_password(DEMO_PASSWORD)

    def test_writes_go_through_services_and_are_audited_as_people_or_groundwork(self, demo):
        events = AuditEvent.objects.all()
        assert events.exists()
        # Named as a person (the MSP admin) or as Groundwork itself, never as a command.
        assert set(events.values_list("actor_label", "source").distinct()) <= {
            ("Groundwork (automatic)", "command"),
            ("Morgan Reyes", "command"),
        }
        assert events.filter(actor_label="Morgan Reyes", actor_user__username="admin").exists()
        acme = Tenant.objects.get(slug="acme")
        transitions = AuditEvent.objects.filter(
            tenant=acme, action=AuditAction.TRANSITION, object_type="tenants.Tenant"
        ).values_list("changes", flat=True)
        assert list(reversed(transitions)) == [
            {"status": ["prospect", "onboarding"]},
            {"status": ["onboarding", "active"]},
        ]

    def test_prints_every_login_and_the_urls(self, demo):
        output = demo

        for username in ("admin", "engineer", "analyst", "acme-admin", "dunmore-viewer"):
            assert any(
                line.split()[:2] == [username, DEMO_PASSWORD] for line in output.splitlines()
            ), username
        for path in ("/portal/", "/admin/", "/api/docs/", "/healthz"):
            assert f"http://127.0.0.1:8000{path}" in output

    def test_demo_staff_sign_in_with_the_printed_authenticator_key(self, demo, client):
        key = next(
            line.split()[-1] for line in demo.splitlines() if line.strip().startswith("key ")
        )

        client.post("/portal/login/", {"username": "engineer", "password": DEMO_PASSWORD})
        assert client.get("/admin/")["Location"].startswith("/portal/account/two-factor/verify/")
        code = f"{TOTP(b32decode(key)).token():06d}"
        client.post("/portal/account/two-factor/verify/", {"code": code})
        assert client.get("/admin/").status_code == 200

    # --- Each tenant's story (issue 14): what a visitor sees must differ, and be true --------

    def test_the_prospect_has_nothing_deployed_and_nothing_running(self, demo):
        dunmore = Tenant.objects.get(slug="dunmore")
        with tenant_scope(dunmore.id):
            assert ComputeResource.objects.count() == 0
            assert AISystem.objects.count() == 0
            assert Incident.objects.count() == 0
            assert JobRun.objects.count() == 0
            assert Finding.objects.count() == 0
            assert Recommendation.objects.count() == 0
            assert Report.objects.count() == 0
        since = timezone.now() - datetime.timedelta(days=60)
        with tenant_scope(dunmore.id):
            assert sample_store().resources_reporting(tenant_id=dunmore.id, since=since) == []

    def test_onboarding_tenant_has_a_pilot_only_and_a_first_scan_with_open_findings(self, demo):
        borealis = Tenant.objects.get(slug="borealis")
        now = timezone.now()
        with tenant_scope(borealis.id):
            assert list(AISystem.objects.values_list("stage", flat=True)) == ["pilot"]
            assert not Deployment.objects.filter(environment="production").exists()
            assert 0 < ComputeResource.objects.count() < 8
            assert list(Incident.objects.values_list("severity", "assignee__username")) == [
                ("SEV4", "engineer")
            ]
            scans = JobRun.objects.filter(kind="compliance_scan")
            assert scans.count() == 1
            assert Finding.objects.filter(status=FindingStatus.FAIL).count() >= 3
            assert not Waiver.objects.exists()
        first, last = rollup_span(borealis)
        # Two days of telemetry, up to now: its agents went in this week.
        assert now - last < datetime.timedelta(hours=2)
        assert datetime.timedelta(days=1) < last - first <= datetime.timedelta(days=2)

    def test_the_busy_tenant_has_open_and_serious_incidents_a_spend_jump_and_blocked_pilots(
        self, demo
    ):
        acme = Tenant.objects.get(slug="acme")
        with tenant_scope(acme.id):
            open_incidents = Incident.objects.filter(status__in=OPEN_STATUSES)
            assert open_incidents.filter(severity="SEV1").exists()
            assert set(open_incidents.values_list("status", flat=True)) >= {
                "triggered",
                "acknowledged",
                "investigating",
                "mitigated",
            }
            kinds = set(
                Recommendation.objects.filter(status=RecommendationStatus.OPEN).values_list(
                    "kind", flat=True
                )
            )
            assert "cost_anomaly" in kinds
            assert Report.objects.filter(kind="quarterly").exists()

    def test_the_calm_tenant_has_nothing_open_high_compliance_and_little_to_save(self, demo):
        acme, cobalt = Tenant.objects.get(slug="acme"), Tenant.objects.get(slug="cobalt")
        with tenant_scope(cobalt.id):
            incidents = list(Incident.objects.values_list("status", "severity"))
            assert incidents
            assert all(status in ("resolved", "closed") for status, _ in incidents)
            assert not JobRun.objects.filter(status=JobStatus.FAILED).exists()
            cobalt_score = min(latest_scores(cobalt))
            cobalt_saving = open_saving()
        with tenant_scope(acme.id):
            acme_score = max(latest_scores(acme))
            acme_saving = open_saving()
        assert cobalt_score >= 80 > acme_score
        assert cobalt_saving * 10 < acme_saving

    def test_the_suspended_tenant_stopped_days_ago_and_nothing_has_happened_since(self, demo):
        ember = Tenant.objects.get(slug="ember")
        now = timezone.now()
        _, last = rollup_span(ember)
        assert now - last > datetime.timedelta(days=3)
        with tenant_scope(ember.id):
            assert not Incident.objects.filter(status__in=OPEN_STATUSES).exists()
            assert Incident.objects.exists()  # what happened while it was active is kept
            # Its schedules were paused when it was suspended.
            assert JobSchedule.objects.exists()
            assert not JobSchedule.objects.filter(periodic_task__enabled=True).exists()
            newest_run = JobRun.objects.order_by("-created_at").first()
            assert now - newest_run.created_at > datetime.timedelta(days=3)
            assert ComputeResource.objects.count() > 8  # the estate is kept

    def test_every_open_incident_has_an_owner_and_no_sev1_sits_untouched_for_a_week(self, demo):
        week_ago = timezone.now() - datetime.timedelta(days=7)
        tenants = list(Tenant.objects.values_list("id", flat=True))
        with tenant_scope(*tenants):
            open_incidents = Incident.objects.filter(status__in=OPEN_STATUSES)
            assert open_incidents.exists()
            unowned = open_incidents.filter(assignee__isnull=True)
            # Only the incident raised minutes before the seed waits for its owner.
            assert list(unowned.values_list("dedupe_key", flat=True)) == ["demo:new-language"]
            for incident in open_incidents.filter(severity="SEV1"):
                assert incident.status != "triggered", incident.title
                last = TimelineEntry.objects.filter(incident=incident).latest("created_at")
                assert last.created_at > week_ago, incident.title

    def test_acme_sees_the_peer_benchmark_of_five_light_finance_peers(self, demo):
        from operations.readiness.selectors import BENCHMARK_MIN_PEERS, readiness_benchmark

        acme = Tenant.objects.get(slug="acme")
        peers = Tenant.objects.filter(industry=acme.industry).exclude(pk=acme.pk)
        assert peers.count() >= BENCHMARK_MIN_PEERS
        with tenant_scope(acme.id):
            benchmark = readiness_benchmark(tenant=acme)
        assert benchmark["available"] is True
        banded = [pillar for pillar in benchmark["pillars"] if pillar["peers"]]
        assert {"strategy", "talent", "culture"} <= {pillar["key"] for pillar in banded}
        assert any(pillar["peers"]["p25"] < pillar["peers"]["p75"] for pillar in banded)
        # The peers are background tenants: no demo login, no password to sign in with.
        for peer in peers:
            assert f"{peer.slug}-admin" not in demo
            assert not User.objects.get(username=f"{peer.slug}-admin").has_usable_password()
        assert "Finance peers for acme's benchmark" in demo

    def test_running_twice_changes_nothing(self, demo):
        before = counts()

        output = run("seed_demo")

        assert counts() == before
        assert "nothing changed" in output
        assert dict(Tenant.objects.values_list("slug", "status"))["ember"] == (
            TenantStatus.SUSPENDED
        )

    def test_leaves_a_tenant_that_is_past_its_demo_state_alone(self, demo):
        """A tenant moved on by hand (dunmore now onboarding) is not walked back or re-moved.
        Only the command's people-and-lifecycle part runs: the lifecycle is all it is about (and
        a whole second run is test_running_twice_changes_nothing)."""
        dunmore = services.tenant_transition(
            tenant=Tenant.objects.get(slug="dunmore"), to_status=TenantStatus.ONBOARDING
        )
        before = counts()

        seed_people_and_lifecycle()

        dunmore.refresh_from_db()
        assert dunmore.status == TenantStatus.ONBOARDING
        assert counts() == before


@pytest.mark.django_db
def test_seed_demo_advances_an_existing_tenant_that_is_behind():
    """An acme created earlier as a bare prospect is walked forward to active (by the command's
    people-and-lifecycle part: each area's data, which a whole run adds, is TestSeedDemo's)."""
    TenantFactory(name="Acme Analytics", slug="acme")

    tenants = seed_people_and_lifecycle()

    assert tenants["acme"].status == TenantStatus.ACTIVE
    assert Tenant.objects.get(slug="acme").status == TenantStatus.ACTIVE
    assert Tenant.objects.filter(slug="acme").count() == 1


# --- issue_token ----------------------------------------------------------------------------


@pytest.fixture
def two_tenants(db):
    acme = TenantFactory(name="Acme Analytics", slug="acme")
    borealis = TenantFactory(name="Borealis Bank", slug="borealis")
    make_member(acme, TenantRole.ADMIN, username="acme-admin")
    make_member(acme, TenantRole.MEMBER, username="acme-member")
    make_member(borealis, TenantRole.ADMIN, username="borealis-admin")
    return acme, borealis


def issue(*args) -> tuple[str, str]:
    """(whole output, token): the token is the last word of the output."""
    output = run("issue_token", *args)
    return output, output.split()[-1]


@pytest.mark.django_db
class TestIssueToken:
    def test_printed_token_authenticates_against_the_members_api(self, two_tenants):
        output, token = issue("--user", "acme-admin")

        assert output.strip().splitlines()[-1] == token
        response = bearer(token).get(members_url("acme"))
        assert response.status_code == 200, response.content
        usernames = {row["user"]["username"] for row in response.json()["results"]}
        assert usernames == {"acme-admin", "acme-member"}
        # Bound to the user's tenant: another tenant is the same 404 as a missing one.
        assert bearer(token).get(members_url("borealis")).status_code == 404

    def test_only_a_hash_is_stored_and_the_command_is_the_audited_actor(self, two_tenants):
        _output, token = issue("--user", "acme-admin", "--name", "ci sync")

        row = ApiToken.objects.get(name="ci sync")
        assert row.user.username == "acme-admin"
        assert row.tenant.slug == "acme"
        assert row.scopes == ["read"]
        assert row.expires_at is None
        assert token not in row.secret_hash
        assert token.startswith(f"gw_{row.prefix}_")
        event = AuditEvent.objects.get(object_type="tenants.ApiToken", object_id=str(row.pk))
        assert (event.actor_label, event.source, event.action) == (
            "issue_token",
            "command",
            AuditAction.CREATE,
        )

    def test_default_scope_is_read_only(self, two_tenants):
        _output, token = issue("--user", "acme-admin")

        response = bearer(token).post(
            members_url("acme"), {"username": "new-person", "role": TenantRole.VIEWER}
        )
        assert response.status_code == 403
        assert "write" in response.json()["error"]["message"]

    def test_scopes_option_grants_write(self, two_tenants):
        _output, token = issue("--user", "acme-admin", "--scopes", "read", "write")

        assert ApiToken.objects.get().scopes == ["read", "write"]
        response = bearer(token).post(
            members_url("acme"), {"username": "new-person", "role": TenantRole.VIEWER}
        )
        assert response.status_code == 201, response.content

    def test_expires_days_sets_the_expiry(self, two_tenants):
        before = timezone.now()
        issue("--user", "acme-admin", "--expires-days", "7")
        after = timezone.now()

        expires_at = ApiToken.objects.get().expires_at
        week = datetime.timedelta(days=7)
        assert before + week <= expires_at <= after + week

    def test_staff_token_for_a_chosen_tenant(self, two_tenants):
        acme, _borealis = two_tenants
        make_staff(acme, role=MspRole.ENGINEER, username="eng")

        _output, token = issue("--user", "eng", "--tenant", "acme", "--scopes", "read", "ingest")

        row = ApiToken.objects.get()
        assert row.tenant == acme
        assert row.scopes == ["read", "ingest"]
        assert bearer(token).get(members_url("acme")).status_code == 200

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--user", "nobody"], "No user named 'nobody'"),
            (["--user", "acme-admin", "--tenant", "nowhere"], "No tenant with slug 'nowhere'"),
            (["--user", "acme-admin", "--scopes", "read", "admin"], "Unknown scope(s): admin"),
            (["--user", "acme-admin", "--tenant", "borealis"], "bound to their tenant"),
            (["--user", "acme-admin", "--expires-days", "0"], "--expires-days"),
        ],
    )
    def test_errors_are_clear_and_issue_nothing(self, two_tenants, args, message):
        with pytest.raises(CommandError) as excinfo:
            run("issue_token", *args)

        assert message in str(excinfo.value)
        assert not ApiToken.objects.exists()
