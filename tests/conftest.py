from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from django.db import transaction
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from tenants.models import MspRole, TenantRole
from tests.factories import TenantFactory, make_member, make_staff, make_token

requires_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL"), reason="needs PostgreSQL: set DATABASE_URL"
)
requires_redis = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="needs Redis: set REDIS_URL"
)


T = TypeVar("T")

# Property tests' example counts: a quick pass on every run, the full count on demand
# (HYPOTHESIS_PROFILE=thorough). Loaded here, before any test module makes its settings.
hypothesis_settings.register_profile("quick", max_examples=100)
hypothesis_settings.register_profile("thorough", max_examples=400)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist load`` that keeps a class, or a parametrized function's cases, on one worker
    (tests/scheduling.py): their shared rows are then made once, not once per worker."""
    if config.getoption("dist") != "load":
        return None
    from tests.scheduling import GroupsTogetherScheduling

    return GroupsTogetherScheduling(config, log)


def shared_rows(django_db_blocker, make: Callable[[], T]) -> Iterator[T]:
    """For a class- or module-scoped fixture: ``make()`` the rows once, in an outer transaction
    that each test's own transaction (then a savepoint) nests in, so every test starts from them
    as made and undoes only its own changes; the scope's end rolls them back. Use it as
    ``yield from shared_rows(django_db_blocker, make)``. Only for tests with ``db``: a
    ``transactional_db`` test would flush the rows (and cannot run inside the transaction). Under
    xdist a class's tests, or one parametrized function's cases, run on one worker (the scheduler
    above); other tests of a module may not: each worker that runs some makes the rows once."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer._from_testcase = True  # as TestCase marks its own: durable blocks may nest in it
        outer.__enter__()
        try:
            made = make()
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    try:
        yield made
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


class Actor:
    """A user with an API client already carrying their bearer token, or, given no token,
    signed in with a session (only a signed-in person may create API tokens)."""

    def __init__(self, user, token: str | None):
        self.user = user
        self.token = token
        self.client = APIClient()
        if token is None:
            self.client.force_login(user)
        else:
            self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def tenant_a(db):
    return TenantFactory(name="Acme Analytics", slug="acme")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(name="Borealis Bank", slug="borealis")


@pytest.fixture
def admin_a(tenant_a):
    """Tenant admin of A, with a token."""
    user = make_member(tenant_a, TenantRole.ADMIN, username="acme-admin")
    return Actor(user, make_token(user))


@pytest.fixture
def admin_a_signed_in(admin_a):
    """The same tenant admin of A, signed in with a session instead of a token."""
    return Actor(admin_a.user, None)


@pytest.fixture
def admin_b(tenant_b):
    user = make_member(tenant_b, TenantRole.ADMIN, username="borealis-admin")
    return Actor(user, make_token(user))


@pytest.fixture
def msp_admin(db):
    user = make_staff(role=MspRole.ADMIN, username="msp-admin")
    return Actor(user, make_token(user))


@pytest.fixture
def engineer_a(tenant_a):
    """MSP engineer assigned to tenant A only."""
    user = make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-a")
    return Actor(user, make_token(user))


@pytest.fixture
def member_a(tenant_a):
    """Tenant member of A (can raise incidents and comment), with a token."""
    user = make_member(tenant_a, TenantRole.MEMBER, username="acme-member")
    return Actor(user, make_token(user))


@pytest.fixture
def viewer_a(tenant_a):
    """Tenant viewer of A (reads only), with a token."""
    user = make_member(tenant_a, TenantRole.VIEWER, username="acme-viewer")
    return Actor(user, make_token(user))


@pytest.fixture
def analyst_a(tenant_a):
    """MSP analyst (read-only staff) assigned to tenant A only."""
    user = make_staff(tenant_a, role=MspRole.ANALYST, username="analyst-a")
    return Actor(user, make_token(user))


@pytest.fixture
def pool(tmp_path):
    """Real Celery workers sharing the test database (skips where they cannot)."""
    from tests.jobs.worker import WorkerPool, why_workers_cannot_share_the_database

    reason = why_workers_cannot_share_the_database()
    if reason:
        pytest.skip(reason)
    workers = WorkerPool(tmp_path)
    try:
        yield workers
    finally:
        workers.stop_all()
