"""The tenant label on VictoriaMetrics: its name and each tenant's value.

Every series in VictoriaMetrics carries the tenant it belongs to as one label: named
``TELEMETRY_TENANT_LABEL`` (``tenant`` by default), valued the tenant's id, or the value
``TELEMETRY_TENANT_LABEL_VALUES`` gives its slug (an MSP whose own vmagent writes
``client="acme"`` maps the tenant ``acme`` to ``acme``). Groundwork sets it server-side on
everything it writes and matches it exactly in everything it reads.

A value must never be another tenant's: so a configured value starts with a letter (a bare id
is some tenant's default value) and no two tenants share one. Checked when the settings load
and again on every lookup (settings can change under tests).
"""

from __future__ import annotations

import re

from django.core.exceptions import ImproperlyConfigured

#: A Prometheus label name (the tenant label's name).
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: A configured value: a letter first, so it is never any tenant's id.
LABEL_VALUE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,127}")
#: Labels the read model gives a meaning of its own: never the tenant's.
RESERVED_LABELS = frozenset(
    {"__name__", "kind", "resource_id", "groundwork", "Hostname", "UUID", "gpu", "GPU_I_ID"}
)


def check_tenant_label_settings(name: str, values: dict[str, str]) -> None:
    """Raise ``ImproperlyConfigured`` unless ``name`` and ``values`` keep tenants apart."""
    if not LABEL_NAME.fullmatch(name or "") or name in RESERVED_LABELS:
        raise ImproperlyConfigured(
            f"TELEMETRY_TENANT_LABEL must be a label name other than {sorted(RESERVED_LABELS)}, "
            f"not {name!r}"
        )
    for slug, value in values.items():
        if not LABEL_VALUE.fullmatch(value or ""):
            raise ImproperlyConfigured(
                f"TELEMETRY_TENANT_LABEL_VALUES: {slug}'s value {value!r} must start with a "
                "letter (a bare number is another tenant's id) and hold only letters, digits, "
                "'_', '.', ':' and '-'"
            )
    if len(set(values.values())) != len(values):
        raise ImproperlyConfigured("TELEMETRY_TENANT_LABEL_VALUES: two tenants share a value")


def tenant_label_name() -> str:
    from django.conf import settings

    check_tenant_label_settings(settings.TELEMETRY_TENANT_LABEL, {})
    return settings.TELEMETRY_TENANT_LABEL


def tenant_label_value(tenant_id: int) -> str:
    """The tenant label's value for ``tenant_id``: its configured value, else its id."""
    from django.conf import settings

    tenant_id = int(tenant_id)
    values = settings.TELEMETRY_TENANT_LABEL_VALUES
    if not values:
        return str(tenant_id)
    check_tenant_label_settings(settings.TELEMETRY_TENANT_LABEL, values)
    from tenants.models import Tenant

    slug = Tenant.objects.filter(pk=tenant_id).values_list("slug", flat=True).first()
    return values.get(slug, str(tenant_id)) if slug else str(tenant_id)
