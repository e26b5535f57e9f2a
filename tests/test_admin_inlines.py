"""Every admin inline bounds what one post can make it build.

Django builds as many forms as a post's ``TOTAL_FORMS`` says, up to its own cap of 2,000 an
inline (seconds of work a post), read-only inlines included: each inline's formset is a
``BoundedInlineFormSet`` (stored rows plus 100), enumerated from the admin site so a new inline
is covered unlisted. Celery beat's own admin is left as it is: superusers only
(``msp.admin_site.restrict_to_superusers``).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from operations.events.models import OnCallOverride, OnCallRotation
from tenants.admin.base import BoundedInlineFormSet
from tenants.models import MspRole
from tests.factories import login_verified, make_staff
from tests.inventory.test_admin import form_data, text

OURS = ("msp.", "tenants.", "operations.")


def _inlines() -> list[tuple[str, type]]:
    return [
        (f"{model._meta.label}.{inline.__name__}", inline)
        for model, model_admin in admin.site._registry.items()
        for inline in model_admin.inlines
        if inline.__module__.startswith(OURS)
    ]


INLINES = _inlines()


def test_the_admin_has_inlines():
    assert len(INLINES) >= 10


@pytest.mark.parametrize(("name", "inline"), INLINES, ids=[name for name, _ in INLINES])
def test_every_inline_formset_is_bounded(name, inline):
    assert issubclass(inline.formset, BoundedInlineFormSet), name


@pytest.mark.django_db
def test_a_forged_total_forms_on_a_plain_inline_is_refused_and_saves_nothing(client):
    """The on-call rotation's overrides: a plain Django inline, not an audited one."""
    msp_admin = make_staff(role=MspRole.ADMIN, username="msp-inline-admin")
    rotation = OnCallRotation.objects.create(
        name="Primary", shift="weekly", starts_at=timezone.now(), members=[msp_admin.pk]
    )
    OnCallOverride.objects.create(
        rotation=rotation,
        user=msp_admin,
        starts_at=timezone.now(),
        ends_at=timezone.now() + dt.timedelta(hours=4),
    )
    login_verified(client, msp_admin)
    change = reverse("admin:events_oncallrotation_change", args=[rotation.pk])
    data = form_data(client.get(change))
    data["overrides-TOTAL_FORMS"] = str(10**6)

    response = client.post(change, data)

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert len(formset.forms) <= 101  # the stored row and 100 new at most
    assert "Please submit at most 101 forms." in text(response)
    assert OnCallOverride.objects.filter(rotation=rotation).count() == 1
