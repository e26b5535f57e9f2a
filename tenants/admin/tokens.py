"""API tokens: listed and revoked here, issued elsewhere (the secret is shown only once)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Q
from django.utils import timezone

from tenants import services
from tenants.admin.base import StaffScopedAdmin, VisibleTenantListFilter
from tenants.models import ApiToken


class TokenStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("usable", "Usable"), ("expired", "Expired"), ("revoked", "Revoked"))

    def queryset(self, request, queryset):
        now = timezone.now()
        not_expired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        if self.value() == "usable":
            return queryset.filter(not_expired, revoked_at__isnull=True)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(StaffScopedAdmin, admin.ModelAdmin):
    """View and revoke. Issue tokens in the portal, the API or ``manage.py issue_token``."""

    list_display = (
        "name",
        "prefix",
        "user",
        "tenant",
        "scope_list",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    list_filter = (
        TokenStateFilter,
        ("tenant", VisibleTenantListFilter),
        "created_at",
        "expires_at",
    )
    list_select_related = ("user", "tenant")
    search_fields = ("name", "prefix", "user__username", "tenant__name")
    date_hierarchy = "created_at"
    # secret_hash is never listed, shown or searchable.
    fields = (
        "name",
        "prefix",
        "user",
        "tenant",
        "scope_list",
        "created_at",
        "created_by",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    readonly_fields = fields
    actions = ("revoke",)

    def lookup_allowed(self, lookup, value, request=None):
        # No filtering on the hash from the URL either: it would be an oracle for it.
        return not lookup.startswith("secret_hash") and super().lookup_allowed(
            lookup, value, request
        )

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # Revoked, never deleted: audit events point at tokens.

    def has_revoke_permission(self, request):
        return self.can_write(request)

    @admin.display(description="Scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke(self, request, queryset):
        revoked = []
        for token in queryset:
            if token.revoked_at is None:
                services.token_revoke(token=token)
                revoked.append(str(token))
        if revoked:
            self.message_user(request, f"Revoked: {', '.join(revoked)}.", messages.SUCCESS)
        else:
            self.message_user(request, "The selected tokens were already revoked.")
