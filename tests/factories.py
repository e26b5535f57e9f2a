"""Factories for every fixture. Several tenants in every test, as a matter of course."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants import services
from tenants.models import Membership, MspRole, StaffAssignment, Tenant, TenantRole

User = get_user_model()
PASSWORD = "correct-horse-battery"


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Client {n}")
    slug = factory.Sequence(lambda n: f"client-{n}")
    industry = "Finance"
    region = "eu-west"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return services.tenant_create(**kwargs)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StaffFactory(UserFactory):
    username = factory.Sequence(lambda n: f"staff{n}")
    msp_role = MspRole.ENGINEER
    is_staff = True


def make_member(tenant: Tenant, role: str = TenantRole.ADMIN, **kwargs) -> User:
    user = UserFactory(**kwargs)
    Membership.objects.create(user=user, tenant=tenant, role=role)
    return user


def make_staff(*tenants: Tenant, role: str = MspRole.ENGINEER, **kwargs) -> User:
    user = StaffFactory(msp_role=role, is_superuser=role == MspRole.ADMIN, **kwargs)
    for tenant in tenants:
        StaffAssignment.objects.create(user=user, tenant=tenant)
    return user


def make_token(user, *, scopes=("read", "write", "ingest"), tenant=None, **kwargs) -> str:
    _token, plaintext = services.token_issue(
        user=user, name="test", tenant=tenant, scopes=list(scopes), **kwargs
    )
    return plaintext


def login_verified(client, user) -> TOTPDevice:
    """Sign ``user`` in on a test client with a session that has passed its second factor.

    The user gets a confirmed authenticator (kept if they have one) and the session is marked
    verified by django-otp's own ``login``, as the verification page does. For MSP staff and
    users of tenants that require two-factor sign-in; others may use ``force_login``.
    """
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="test authenticator", confirmed=True)
    client.force_login(user)
    request = HttpRequest()
    request.session = client.session
    request.user = user
    otp_login(request, device)
    request.session.save()
    return device


def make_webhook_endpoint(tenant=None, *, url: str = "http://127.0.0.1:9/hook", **fields):
    """A webhook endpoint of ``tenant`` (MSP-wide without one), made directly: no URL check,
    so it needs no setting; the services' own tests go through ``endpoint_create``."""
    from operations.events.models import MspWebhookEndpoint, WebhookEndpoint
    from operations.events.services import secret_generate
    from tenants.scoping import tenant_scope

    if tenant is None:
        return MspWebhookEndpoint.objects.create(url=url, secret=secret_generate(), **fields)
    with tenant_scope(tenant.id):
        return WebhookEndpoint.objects.create(
            tenant=tenant, url=url, secret=secret_generate(), **fields
        )


def make_webhook_delivery(tenant=None, *, endpoint=None):
    """A queued test delivery to ``endpoint`` (a new one of ``tenant`` by default)."""
    from django.db import transaction

    from operations.events.services import endpoint_send_test
    from tenants.scoping import tenant_scope

    endpoint = endpoint or make_webhook_endpoint(tenant)
    if tenant is None:
        with transaction.atomic():
            return endpoint_send_test(tenant=None, endpoint=endpoint)
    with tenant_scope(tenant.id), transaction.atomic():
        return endpoint_send_test(tenant=tenant, endpoint=endpoint)


def make_gpu_device(tenant, *, compute=None, **fields):
    """A GPU of ``compute`` (a new two-GPU node of ``tenant`` by default), through the audited
    service, at the node's next free index unless ``index`` is given."""
    import uuid

    from operations.inventory.models import GpuDevice
    from operations.inventory.services import gpu_device_create
    from tenants.scoping import tenant_scope
    from tests.inventory.estate import make_gpu_node

    compute = compute or make_gpu_node(tenant)
    with tenant_scope(tenant.id):
        index = fields.pop("index", None)
        if index is None:
            index = GpuDevice.objects.filter(compute=compute).count()
        values = {
            "compute": compute,
            "index": index,
            "uuid": f"GPU-{uuid.uuid4()}",
            "model_name": compute.gpu_model,
        }
        return gpu_device_create(tenant=tenant, **{**values, **fields})
