"""The inventory in the admin: every model's pages for MSP staff, scoped to their tenants, and
writes through the services (validated and audited)."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from operations.inventory.demo import seed_inventory
from operations.inventory.models import (
    AISystem,
    AISystemDataset,
    CloudAccount,
    ComputeResource,
    Dataset,
    Deployment,
    Link,
    Site,
    Stage,
)
from tenants.models import AuditEvent, MspRole
from tenants.scoping import tenant_scope
from tests.conftest import shared_rows
from tests.factories import TenantFactory, login_verified, make_staff
from tests.inventory import estate
from tests.readiness.gate_builders import ready_pilot

pytestmark = pytest.mark.django_db

MODELS = (Site, Link, CloudAccount, ComputeResource, AISystem, AISystemDataset, Deployment, Dataset)


def url(model, view: str, *args) -> str:
    return reverse(f"admin:inventory_{model._meta.model_name}_{view}", args=args)


def text(response) -> str:
    return html.unescape(response.content.decode())


def form_data(response) -> dict:
    """What a browser posts for an admin page as rendered (main form and inlines)."""
    data: dict = {}

    def add(form):
        for bound in form:
            value = bound.value()
            if value is None or value is False:
                continue
            if value is True:
                data[bound.html_name] = "on"
            elif isinstance(value, (list, tuple)):
                data[bound.html_name] = [str(item) for item in value]
            else:
                data[bound.html_name] = str(value)
            if bound.field.show_hidden_initial:
                data[bound.html_initial_name] = data[bound.html_name]

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


@pytest.fixture(scope="class")
def shared_estates(django_db_setup, django_db_blocker):
    """Two tenants with their estates and the MSP staff who read them, made once for TestReads
    (its tests only read, or are refused a write): each test undoes only its own changes."""

    def make():
        tenant_a = TenantFactory(name="Acme Analytics", slug="acme")
        tenant_b = TenantFactory(name="Borealis Bank", slug="borealis")
        seed_inventory(tenant_a, profile="finance")
        seed_inventory(tenant_b, profile="logistics")
        return {
            "tenant_a": tenant_a,
            "tenant_b": tenant_b,
            "boss": make_staff(role=MspRole.ADMIN, username="boss"),
            "eng": make_staff(tenant_a, role=MspRole.ENGINEER, username="eng"),
            "ana": make_staff(tenant_a, role=MspRole.ANALYST, username="ana"),
        }

    yield from shared_rows(django_db_blocker, make)


@pytest.fixture
def msp_admin_client(client, db):
    login_verified(client, make_staff(role=MspRole.ADMIN, username="boss"))
    return client


@pytest.fixture
def engineer_client(client, tenant_a):
    login_verified(client, make_staff(tenant_a, role=MspRole.ENGINEER, username="eng"))
    return client


def one_of(model, tenant):
    with tenant_scope(tenant.id):
        return model.objects.order_by("pk").first()


class TestReads:
    """On the shared estates (TestWrites makes its own rows: it must not inherit these)."""

    @pytest.fixture
    def tenant_a(self, db, shared_estates):
        return shared_estates["tenant_a"]

    @pytest.fixture
    def tenant_b(self, db, shared_estates):
        return shared_estates["tenant_b"]

    @pytest.fixture
    def msp_admin_client(self, client, db, shared_estates):
        login_verified(client, shared_estates["boss"])
        return client

    @pytest.fixture
    def engineer_client(self, client, db, shared_estates):
        login_verified(client, shared_estates["eng"])
        return client

    @pytest.mark.parametrize("model", MODELS, ids=[m.__name__ for m in MODELS])
    def test_msp_admin_pages_for_every_model(self, msp_admin_client, tenant_a, tenant_b, model):
        changelist = msp_admin_client.get(url(model, "changelist"))
        assert changelist.status_code == 200
        tenants = {row.tenant_id for row in changelist.context["cl"].result_list}
        assert tenants == {tenant_a.id, tenant_b.id}
        obj = one_of(model, tenant_b)
        assert msp_admin_client.get(url(model, "change", obj.pk)).status_code == 200
        assert msp_admin_client.get(url(model, "add")).status_code == 200
        searched = msp_admin_client.get(url(model, "changelist"), {"q": "borealis"})
        assert searched.status_code == 200

    @pytest.mark.parametrize("model", MODELS, ids=[m.__name__ for m in MODELS])
    def test_an_engineer_sees_only_assigned_tenants(
        self, engineer_client, tenant_a, tenant_b, model
    ):
        changelist = engineer_client.get(url(model, "changelist"))
        assert changelist.status_code == 200
        assert {row.tenant_id for row in changelist.context["cl"].result_list} == {tenant_a.id}
        foreign = one_of(model, tenant_b)
        assert engineer_client.get(url(model, "change", foreign.pk)).status_code in (302, 404)

    def test_an_analyst_reads_but_cannot_change(self, client, shared_estates, tenant_a):
        login_verified(client, shared_estates["ana"])
        site = one_of(Site, tenant_a)
        assert client.get(url(Site, "changelist")).status_code == 200
        assert client.get(url(Site, "add")).status_code == 403
        before = AuditEvent.objects.count()
        response = client.post(url(Site, "change", site.pk), {"name": "Hacked"})
        assert response.status_code == 403
        with tenant_scope(tenant_a.id):
            assert Site.objects.get(pk=site.pk).name == site.name
        assert AuditEvent.objects.count() == before

    def test_the_cluster_page_lists_its_nodes(self, msp_admin_client, tenant_a):
        with tenant_scope(tenant_a.id):
            cluster = ComputeResource.objects.get(hostname="acme-gpu-hot")
            node = ComputeResource.objects.get(hostname="acme-gpu-hot-01")
        page = msp_admin_client.get(url(ComputeResource, "change", cluster.pk))
        assert "acme-gpu-hot-04" in text(page)
        assert not msp_admin_client.get(url(ComputeResource, "change", node.pk)).context[
            "inline_admin_formsets"
        ]

    def test_the_ai_system_page_shows_deployments_and_dataset_usage(
        self, msp_admin_client, tenant_a
    ):
        with tenant_scope(tenant_a.id):
            system = AISystem.objects.get(name="Credit scoring")
        page = text(msp_admin_client.get(url(AISystem, "change", system.pk)))
        assert "credit-scoring-prod" in page
        assert "Loan applications 2019-2025" in page


class TestWrites:
    def test_adding_a_site_goes_through_the_service(self, engineer_client, tenant_a):
        response = engineer_client.post(
            url(Site, "add"),
            {
                "tenant": tenant_a.pk,
                "code": "par-1",
                "name": "Paris",
                "kind": "edge",
                "country": "FR",
            },
        )
        assert response.status_code == 302, text(response)
        with tenant_scope(tenant_a.id):
            site = Site.objects.get(code="par-1")
        event = AuditEvent.objects.get(object_type="inventory.Site", object_id=str(site.pk))
        assert event.action == "create"
        assert event.actor_label == "eng"

    def test_a_link_across_tenants_is_refused(self, msp_admin_client, tenant_a, tenant_b):
        own, foreign = estate.make_site(tenant_a), estate.make_site(tenant_b)
        response = msp_admin_client.post(
            url(Link, "add"),
            {
                "tenant": tenant_a.pk,
                "site_a": own.pk,
                "site_b": foreign.pk,
                "bandwidth_mbps": 10,
                "latency_ms": 1,
                "redundancy": "none",
            },
        )
        assert response.status_code == 200
        assert "does not exist in this tenant" in text(response)
        with tenant_scope(tenant_a.id, tenant_b.id):
            assert Link.objects.count() == 0

    def test_a_retired_system_gains_no_deployment(self, engineer_client, tenant_a):
        system = estate.make_ai_system(tenant_a, name="Old", stage=Stage.RETIRED)
        before = AuditEvent.objects.count()
        response = engineer_client.post(
            url(Deployment, "add"),
            {
                "tenant": tenant_a.pk,
                "name": "late",
                "ai_system": system.pk,
                "model_version": "1",
                "environment": "production",
            },
        )
        assert response.status_code == 200
        assert "a retired system gains no deployments" in text(response)
        assert AuditEvent.objects.count() == before

    def test_a_deployment_added_inline_is_audited(self, engineer_client, tenant_a):
        system = estate.make_ai_system(tenant_a, name="Live", stage=Stage.PRODUCTION)
        page = engineer_client.get(url(AISystem, "change", system.pk))
        data = form_data(page)
        prefix = next(
            inline.formset.prefix
            for inline in page.context["inline_admin_formsets"]
            if inline.formset.model is Deployment
        )
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": "1",
                f"{prefix}-0-name": "live-prod",
                f"{prefix}-0-model_version": "2.0",
                f"{prefix}-0-environment": "production",
            }
        )
        response = engineer_client.post(url(AISystem, "change", system.pk), data)
        assert response.status_code == 302, text(response)
        with tenant_scope(tenant_a.id):
            deployment = Deployment.objects.get(name="live-prod")
        assert deployment.tenant_id == tenant_a.id
        assert deployment.ai_system_id == system.pk
        assert AuditEvent.objects.filter(
            object_type="inventory.Deployment", object_id=str(deployment.pk), action="create"
        ).exists()

    def test_a_forged_total_forms_builds_no_more_than_the_stored_rows_and_a_hundred(
        self, engineer_client, tenant_a
    ):
        """TOTAL_FORMS of 10**6 used to build Django's cap, 2,000 forms an inline (seconds a
        post): now the stored rows plus 100 at most, refused with the formset's error, and
        nothing saved."""
        system = estate.make_ai_system(tenant_a, name="Forged", stage=Stage.PRODUCTION)
        page = engineer_client.get(url(AISystem, "change", system.pk))
        data = form_data(page)
        prefixes = [inline.formset.prefix for inline in page.context["inline_admin_formsets"]]
        data.update({f"{prefix}-TOTAL_FORMS": str(10**6) for prefix in prefixes})
        before = AuditEvent.objects.count()
        response = engineer_client.post(url(AISystem, "change", system.pk), data)
        assert response.status_code == 200
        formsets = [inline.formset for inline in response.context["inline_admin_formsets"]]
        assert formsets
        assert all(len(formset.forms) <= 100 for formset in formsets)
        assert "Please submit at most 100 forms." in text(response)
        assert AuditEvent.objects.count() == before

    def test_lifecycle_actions(self, engineer_client, tenant_a):
        proposed = estate.make_ai_system(tenant_a, stage=Stage.PROPOSED)
        pilot = ready_pilot(tenant_a)  # passes the readiness gates
        gated = estate.make_ai_system(tenant_a, stage=Stage.PILOT, risk_tier="unclassified")
        response = engineer_client.post(
            url(AISystem, "changelist"),
            {
                "action": "move_to_production",
                "_selected_action": [proposed.pk, pilot.pk, gated.pk],
            },
            follow=True,
        )
        page = text(response)
        assert "cannot move from proposed to production" in page
        assert "cannot move to production" in page
        assert "Risk tier classified" in page
        with tenant_scope(tenant_a.id):
            assert AISystem.objects.get(pk=proposed.pk).stage == Stage.PROPOSED
            assert AISystem.objects.get(pk=gated.pk).stage == Stage.PILOT
            assert AISystem.objects.get(pk=pilot.pk).stage == Stage.PRODUCTION
        assert AuditEvent.objects.filter(
            object_id=str(pilot.pk), object_type="inventory.AISystem", action="transition"
        ).exists()

    def test_the_stage_is_read_only_on_the_change_page(self, engineer_client, tenant_a):
        system = estate.make_ai_system(tenant_a, stage=Stage.PILOT)
        page = engineer_client.get(url(AISystem, "change", system.pk))
        assert "stage" not in page.context["adminform"].form.fields

    def test_autocomplete_offers_only_visible_tenants(self, engineer_client, tenant_a, tenant_b):
        estate.make_site(tenant_a, code="mine-1")
        estate.make_site(tenant_b, code="theirs-1")
        response = engineer_client.get(
            reverse("admin:autocomplete"),
            {"app_label": "inventory", "model_name": "link", "field_name": "site_a", "term": "1"},
        )
        assert response.status_code == 200
        labels = [row["text"] for row in response.json()["results"]]
        assert any("mine-1" in label for label in labels)
        assert not any("theirs-1" in label for label in labels)
