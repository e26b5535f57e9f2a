"""Sign-in security in the admin: failed sign-ins and lockouts (msp_admin unlocks them).

Second-factor devices get no admin pages of their own (django-otp's would show the secret
keys); a lost device is reset from the user's page, through ``services.mfa_reset``.
"""

from __future__ import annotations

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin, messages
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants import services
from tenants.admin.base import MspAdminOnlyMixin

for _model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(AccessAttempt)
class FailedSignInAdmin(MspAdminOnlyMixin, admin.ModelAdmin):
    """Failed sign-ins per username, address and browser, from django-axes."""

    list_display = ("username", "ip_address", "failures_since_start", "attempt_time", "path_info")
    list_filter = ("path_info",)
    search_fields = ("username", "ip_address")
    ordering = ("-attempt_time",)
    fields = ("username", "ip_address", "user_agent", "path_info", "failures_since_start")
    readonly_fields = fields
    actions = ("unlock",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return self._is_msp_admin(request)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # unlocking is the one way to delete, and audited
        return actions

    @admin.action(description="Unlock (forget these failed sign-ins)", permissions=["delete"])
    def unlock(self, request, queryset):
        count = services.signin_unlock(attempts=queryset)
        self.message_user(
            request,
            f"Unlocked {count} record(s). Limits: {settings.AXES_FAILURE_LIMIT} failures per "
            f"username and address, {settings.LOGIN_ADDRESS_FAILURE_LIMIT} per address.",
            messages.SUCCESS,
        )

    def delete_model(self, request, obj):
        services.signin_unlock(attempts=[obj])
