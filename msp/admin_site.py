"""The admin site: for active MSP staff only, whatever ``is_staff`` says, with a second factor.

Its index lists what staff work with first (tenants, then incidents and the estate), and the
scheduler's internal tables only for superusers.
"""

from django.contrib.admin import AdminSite

# The index's order; an app not named here follows, alphabetically.
APP_ORDER = (
    "tenants",
    "incidents",
    "readiness",
    "inventory",
    "telemetry",
    "compliance",
    "optimisation",
    "events",
    "jobs",
    "auth",
    "otp_totp",
    "otp_static",
    "axes",
    "django_celery_beat",
)
# Within an app, the models staff open most come first.
MODEL_ORDER = {"tenants": ("Tenant", "OnboardingStep", "Membership", "ApiToken", "AuditEvent")}

# Celery beat's own tables: jobs' schedules (JobSchedule) are how staff edit them.
SCHEDULER_INTERNAL_APP = "django_celery_beat"


def _rank(order, name):
    return (order.index(name), name) if name in order else (len(order), name)


class GroundworkAdminSite(AdminSite):
    site_header = "Groundwork — MSP console"
    site_title = "Groundwork"
    index_title = "Operate every client's AI estate"
    # The fleet dashboard is linked first, above the models.
    index_template = "admin/groundwork_index.html"

    def has_permission(self, request):
        user = request.user
        # is_verified comes from django-otp's middleware; without it, nobody is verified.
        verified = getattr(user, "is_verified", lambda: False)()
        return bool(user.is_active and user.is_staff and getattr(user, "msp_role", "") and verified)

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        for app in apps:
            order = MODEL_ORDER.get(app["app_label"], ())
            app["models"].sort(key=lambda model: _rank(order, model["object_name"]))
        return sorted(apps, key=lambda app: _rank(APP_ORDER, app["app_label"]))


class SuperuserOnlyAdminMixin:
    """An admin page only superusers open, in the index or by its URL."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


def restrict_to_superusers(site: AdminSite, app_label: str) -> None:
    """Re-register every model of ``app_label`` on ``site`` behind ``SuperuserOnlyAdminMixin``."""
    for model, model_admin in list(site._registry.items()):
        if model._meta.app_label != app_label or isinstance(model_admin, SuperuserOnlyAdminMixin):
            continue
        restricted = type(
            f"SuperuserOnly{type(model_admin).__name__}",
            (SuperuserOnlyAdminMixin, type(model_admin)),
            {},
        )
        site.unregister(model)
        site.register(model, restricted)
