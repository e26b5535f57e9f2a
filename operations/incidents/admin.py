"""Incidents in the MSP console: filters for what needs attention, bulk actions, the timeline;
and the alert rules, each tenant's and the MSP-wide defaults.

Every write goes through ``operations.incidents.services`` (clocks, timeline, outbox, audit).
"""

from __future__ import annotations

import copy

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from operations.events.selectors import notifications_about
from operations.incidents import alerting, services
from operations.incidents.models import (
    OPEN_STATUSES,
    AlertRule,
    AlertRuleDefault,
    Incident,
    IncidentSource,
    Postmortem,
    PostmortemActionItem,
    TimelineEntry,
)
from operations.incidents.portal.forms import WorkflowNoteForm
from operations.incidents.selectors import (
    INCIDENT_ACTION_LABELS,
    incident_allowed_actions,
    incidents_breaching_within,
    regulator_overdue_expression,
)
from operations.telemetry.metrics import METRICS_BY_NAME
from tenants.admin.base import (
    AuditedInlineFormSet,
    StaffScopedAdmin,
    StaffScopedTabularInline,
    VisibleTenantListFilter,
    adopt,
    fresh_copy,
    is_admin_staff,
)
from tenants.models import MspRole
from tenants.scoping import tenant_scope
from tenants.selectors import TenantAccess

User = get_user_model()


class IncidentStateFilter(admin.SimpleListFilter):
    title = "needs attention"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (
            ("open", "Open"),
            ("breaching", "Breaching within an hour"),
            ("breached", "SLA breached"),
            ("waiting", "Waiting on client"),
            ("serious", "Serious AI incident"),
            ("regulator_overdue", "Regulator notification overdue"),
        )

    def queryset(self, request, queryset):
        value = self.value()
        if value == "open":
            return queryset.filter(status__in=OPEN_STATUSES)
        if value == "breaching":
            return incidents_breaching_within(queryset, minutes=60)
        if value == "breached":
            return queryset.filter(
                Q(ack_breached_at__isnull=False) | Q(resolve_breached_at__isnull=False)
            )
        if value == "waiting":
            return queryset.filter(waiting_since__isnull=False)
        if value == "serious":
            return queryset.filter(serious=True)
        if value == "regulator_overdue":
            return queryset.annotate(overdue=regulator_overdue_expression()).filter(overdue=True)
        return queryset


class IncidentAdminForm(forms.ModelForm):
    """Checks the owner and the Art. 73 assessment before anything is saved."""

    class Meta:
        model = Incident
        # The admin passes the fields of its fieldsets; these are the editable ones.
        fields = (
            "title",
            "description",
            "category",
            "severity",
            "assignee",
            "dedupe_key",
            "serious",
            "serious_kind",
            "aware_at",
            "regulator_notified_at",
        )

    def clean(self):
        cleaned = super().clean()
        incident = self.instance
        if incident.pk is None:
            return cleaned
        if "assignee" in self.changed_data:
            try:
                services.incident_assignee_check(
                    tenant=incident.tenant, assignee=cleaned.get("assignee")
                )
            except ValidationError as error:
                self.add_error(None, error)
        changes = {
            name: cleaned.get(name) for name in services.SERIOUS_FIELDS if name in self.changed_data
        }
        if changes:
            stored = fresh_copy(incident)
            try:
                services.serious_assessment_apply(copy.copy(stored), changes, timezone.now())
            except ValidationError as error:
                for name, errors in error.message_dict.items():
                    self.add_error(name if name in self.fields else None, errors)
        return cleaned


class TimelineEntryInline(StaffScopedTabularInline):
    """The whole timeline, internal entries included (the console is for MSP staff)."""

    model = TimelineEntry
    fk_name = "incident"
    extra = 0
    fields = ("created_at", "kind", "internal", "author_label", "body")
    readonly_fields = fields
    ordering = ("created_at", "id")
    verbose_name_plural = "timeline"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class CommentFormSet(AuditedInlineFormSet):
    """New comments only, written by the comment service."""

    @classmethod
    def get_default_prefix(cls):
        return "new_comment"  # the read-only timeline inline uses the model's own prefix

    def save_new(self, form, commit=True):
        incident = self.instance
        return services.incident_comment(
            tenant=incident.tenant,
            incident=incident,
            body=form.cleaned_data["body"],
            internal=form.cleaned_data["internal"],
            user=self.request.user if self.request else None,
        )


class CommentForm(forms.ModelForm):
    internal = forms.BooleanField(
        required=False, initial=True, help_text="Internal notes are for MSP staff only."
    )

    class Meta:
        model = TimelineEntry
        fields = ("internal", "body")
        widgets = {"body": forms.Textarea(attrs={"rows": 2, "cols": 60})}


class CommentInline(StaffScopedTabularInline):
    model = TimelineEntry
    fk_name = "incident"
    form = CommentForm
    formset = CommentFormSet
    extra = 1
    max_num = 1
    can_delete = False
    verbose_name = "comment"
    verbose_name_plural = "add a comment"

    def get_queryset(self, request):
        return super().get_queryset(request).none()

    def has_change_permission(self, request, obj=None):
        return False


_ADD_FIELDS = ("tenant", "title", "description", "severity", "category", "dedupe_key")


@admin.register(Incident)
class IncidentAdmin(StaffScopedAdmin, admin.ModelAdmin):
    form = IncidentAdminForm
    list_display = (
        "reference",
        "title",
        "tenant",
        "severity",
        "status",
        "assignee",
        "sla_state",
        "serious",
        "created_at",
    )
    list_display_links = ("reference", "title")
    list_filter = (
        IncidentStateFilter,
        "severity",
        "status",
        "category",
        "source",
        ("tenant", VisibleTenantListFilter),
    )
    list_select_related = ("tenant", "assignee")
    search_fields = ("reference", "title", "dedupe_key")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    actions = ("acknowledge_selected", "assign_to_me", "resolve_selected")
    inlines = (TimelineEntryInline, CommentInline)
    readonly_fields = (
        "reference",
        "status",
        "source",
        "reporter_label",
        "created_at",
        "acknowledged_at",
        "mitigated_at",
        "resolved_at",
        "closed_at",
        "ack_target_minutes",
        "ack_due_at",
        "ack_breached_at",
        "resolve_target_minutes",
        "resolve_due_at",
        "resolve_breached_at",
        "waiting_since",
        "sla_paused",
        "regulator_deadline",
        "notified",
    )
    fieldsets = (
        (None, {"fields": ("title", "description", "category", "severity", "assignee")}),
        (
            "Lifecycle",
            {
                "fields": (
                    "reference",
                    "status",
                    "source",
                    "reporter_label",
                    "dedupe_key",
                    "created_at",
                    "acknowledged_at",
                    "mitigated_at",
                    "resolved_at",
                    "closed_at",
                )
            },
        ),
        (
            "SLA clocks",
            {
                "fields": (
                    ("ack_target_minutes", "ack_due_at", "ack_breached_at"),
                    ("resolve_target_minutes", "resolve_due_at", "resolve_breached_at"),
                    ("waiting_since", "sla_paused"),
                )
            },
        ),
        (
            "EU AI Act Art. 73",
            {
                "fields": (
                    "serious",
                    "serious_kind",
                    "aware_at",
                    "regulator_deadline",
                    "regulator_notified_at",
                )
            },
        ),
        ("Who was notified", {"fields": ("notified",)}),
    )

    @admin.display(description="Notified")
    def notified(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        with tenant_scope(obj.tenant_id):
            records = notifications_about(tenant=obj.tenant, subject_ref=f"incident:{obj.pk}")
        if not records:
            return "Nobody yet."
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} · {} · {} → {} ({})</li>",
                (
                    (r.at.strftime("%Y-%m-%d %H:%M:%S"), r.topic, r.channel, r.recipient, r.status)
                    for r in records
                ),
            ),
        )

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return ((None, {"fields": _ADD_FIELDS}),)
        return super().get_fieldsets(request, obj)

    def get_inlines(self, request, obj):
        if obj is None:
            return ()
        if "comment" in incident_allowed_actions(obj, self._access(request, obj)):
            return self.inlines
        return (TimelineEntryInline,)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "assignee":
            # Narrowed to the incident's tenant by the form's clean().
            kwargs["queryset"] = User.objects.filter(
                is_active=True, msp_role__in=[MspRole.ADMIN, MspRole.ENGINEER]
            ).order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="SLA")
    def sla_state(self, obj: Incident) -> str:
        if obj.resolve_breached_at or obj.ack_breached_at:
            clocks = [
                name
                for name, at in (("ack", obj.ack_breached_at), ("resolve", obj.resolve_breached_at))
                if at
            ]
            return f"breached ({', '.join(clocks)})"
        if not obj.is_open:
            return "met"
        if obj.waiting_since:
            return "paused (waiting on client)"
        due = obj.ack_due_at if obj.acknowledged_at is None else obj.resolve_due_at
        if due is None:
            return "—"
        minutes = int((due - timezone.now()).total_seconds() // 60)
        return f"due in {minutes} min" if minutes >= 0 else "due (breach pending)"

    # --- writes through the services --------------------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            created = services.incident_create(
                tenant=obj.tenant,
                title=data["title"],
                description=data.get("description", ""),
                severity=data["severity"],
                category=data["category"],
                dedupe_key=data.get("dedupe_key", ""),
                source=IncidentSource.ADMIN,
                reporter=request.user,
            )
            adopt(obj, created)
            return
        stored = fresh_copy(obj)
        tenant = stored.tenant
        edits = {
            name: data[name]
            for name in (*services.EDITABLE_FIELDS, *services.SERIOUS_FIELDS)
            if name in form.changed_data
        }
        if edits:
            stored = services.incident_update(
                tenant=tenant, incident=stored, user=request.user, **edits
            )
        if "severity" in form.changed_data:
            stored = services.incident_change_severity(
                tenant=tenant, incident=stored, severity=data["severity"], user=request.user
            )
        if "assignee" in form.changed_data:
            stored = services.incident_assign(
                tenant=tenant, incident=stored, assignee=data["assignee"], user=request.user
            )
        adopt(obj, stored)

    def delete_model(self, request, obj):
        raise PermissionError("Incidents are never deleted; close them.")

    def has_delete_permission(self, request, obj=None):
        return False

    # --- workflow buttons on the incident's page ----------------------------------------------

    def _access(self, request, incident: Incident) -> TenantAccess:
        # The console's staff member acts with their MSP role in the tenant they can see.
        return TenantAccess(tenant=incident.tenant, role=request.user.msp_role)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/act/<slug:action>/",
                self.admin_site.admin_view(self.act_view),
                name="{}_{}_act".format(*info),
            ),
            *super().get_urls(),
        ]

    def act_view(self, request, object_id, action):
        """The change page's workflow buttons post here; the service does the move."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        incident = self.get_object(request, unquote(object_id))
        if incident is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, incident):
            raise PermissionDenied
        allowed = incident_allowed_actions(incident, self._access(request, incident))
        form = WorkflowNoteForm(request.POST)
        if action not in INCIDENT_ACTION_LABELS or action not in allowed:
            self.message_user(
                request, f"{incident.reference} cannot {action} now.", messages.WARNING
            )
        elif not form.is_valid():
            self.message_user(request, form.problems(), messages.ERROR)
        else:
            self.run_on_each(
                request,
                Incident.objects.unscoped().filter(pk=incident.pk),
                verb=INCIDENT_ACTION_LABELS[action] + ":",
                label=lambda obj: obj.reference,
                run=lambda obj: services.incident_perform(
                    tenant=obj.tenant,
                    incident=obj,
                    action=action,
                    user=request.user,
                    note=form.cleaned_data["note"],
                    note_internal=form.note_internal,
                ),
            )
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:incidents_incident_change", args=[incident.pk])
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and self.has_change_permission(request, obj):
            allowed = incident_allowed_actions(obj, self._access(request, obj))
            context["workflow_buttons"] = [
                {
                    "name": name,
                    "label": label,
                    "url": reverse(
                        f"{self.admin_site.name}:incidents_incident_act", args=[obj.pk, name]
                    ),
                }
                for name, label in INCIDENT_ACTION_LABELS.items()
                if name in allowed
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- bulk actions -------------------------------------------------------------------------

    @admin.action(description="Acknowledge selected incidents", permissions=("change",))
    def acknowledge_selected(self, request, queryset):
        self.run_on_each(
            request,
            queryset,
            verb="Acknowledged",
            label=lambda incident: incident.reference,
            run=lambda incident: services.incident_acknowledge(
                tenant=incident.tenant, incident=incident, user=request.user
            ),
        )

    @admin.action(description="Assign selected incidents to me", permissions=("change",))
    def assign_to_me(self, request, queryset):
        self.run_on_each(
            request,
            queryset,
            verb="Assigned to you",
            label=lambda incident: incident.reference,
            run=lambda incident: services.incident_assign(
                tenant=incident.tenant, incident=incident, assignee=request.user, user=request.user
            ),
        )

    @admin.action(description="Resolve selected incidents", permissions=("change",))
    def resolve_selected(self, request, queryset):
        self.run_on_each(
            request,
            queryset,
            verb="Resolved",
            label=lambda incident: incident.reference,
            run=lambda incident: services.incident_resolve(
                tenant=incident.tenant, incident=incident, user=request.user
            ),
        )


class ActionItemInline(StaffScopedTabularInline):
    model = PostmortemActionItem
    fields = ("description", "owner", "due_date", "done")
    readonly_fields = fields
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Postmortem)
class PostmortemAdmin(StaffScopedAdmin, admin.ModelAdmin):
    """Read here; written through the API (``…/incidents/{id}/postmortem``), which checks that
    the incident is a resolved SEV1/SEV2."""

    list_display = ("incident", "tenant", "updated_at", "updated_by_label")
    list_filter = (("tenant", VisibleTenantListFilter),)
    list_select_related = ("incident", "tenant")
    search_fields = ("incident__reference", "summary")
    fields = (
        "incident",
        "summary",
        "impact",
        "root_cause",
        "timeline_excerpt",
        "updated_at",
        "updated_by_label",
    )
    readonly_fields = fields
    inlines = (ActionItemInline,)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Alert rules ---------------------------------------------------------------------------------

_METRIC_CHOICES = [(name, name) for name in sorted(METRICS_BY_NAME)]
_RULE_FIELDSETS = (
    (None, {"fields": ("name", "description", "enabled")}),
    (
        "Condition",
        {"fields": ("target", "metric", "condition", "threshold", "window_minutes")},
    ),
    (
        "Resources (empty: all)",
        {"fields": ("resource_pattern", "site_code", "gpu_model", "environment")},
    ),
    ("Incident", {"fields": ("severity", "category", "auto_resolve")}),
)


class AlertRuleForm(forms.ModelForm):
    metric = forms.ChoiceField(choices=_METRIC_CHOICES)

    class Meta:
        model = AlertRule
        fields = [*alerting.ALERT_RULE_FIELDS, "default_rule"]


class AlertRuleDefaultForm(AlertRuleForm):
    class Meta:
        model = AlertRuleDefault
        fields = list(alerting.ALERT_RULE_FIELDS)


def _rule_changes(form, *, change: bool) -> dict:
    names = [n for n in alerting.ALERT_RULE_FIELDS if n in form.cleaned_data]
    if change:
        names = [n for n in names if n in form.changed_data]
    return {name: form.cleaned_data[name] for name in names}


@admin.register(AlertRule)
class AlertRuleAdmin(StaffScopedAdmin, admin.ModelAdmin):
    """Each tenant's own rules and overrides of the MSP-wide defaults (written by the service)."""

    form = AlertRuleForm
    list_display = (
        "name",
        "tenant",
        "enabled",
        "metric",
        "condition",
        "threshold",
        "window_minutes",
        "severity",
        "auto_resolve",
        "default_rule",
    )
    list_filter = (
        ("tenant", VisibleTenantListFilter),
        "enabled",
        "target",
        "metric",
        "condition",
        "severity",
        "auto_resolve",
        ("default_rule", admin.EmptyFieldListFilter),
    )
    list_select_related = ("tenant", "default_rule")
    search_fields = ("name", "description", "resource_pattern")
    ordering = ("tenant__name", "name", "id")
    actions = ("evaluate_now",)
    fieldsets = (
        (None, {"fields": ("tenant", "name", "description", "enabled")}),
        *_RULE_FIELDSETS[1:],
        ("MSP-wide default", {"fields": ("default_rule",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        # An override stays attached to the default it overrides.
        return (*readonly, "default_rule") if obj is not None else readonly

    def save_model(self, request, obj, form, change):
        fields = _rule_changes(form, change=change)
        if change:
            stored = fresh_copy(obj)
            rule = alerting.alert_rule_update(tenant=stored.tenant, rule=stored, **fields)
        else:
            rule = alerting.alert_rule_create(
                tenant=obj.tenant, default_rule=form.cleaned_data.get("default_rule"), **fields
            )
        adopt(obj, rule)

    def delete_model(self, request, obj):
        alerting.alert_rule_delete(tenant=obj.tenant, rule=obj)

    @admin.action(description="Evaluate the selected rules' tenants now", permissions=["change"])
    def evaluate_now(self, request, queryset):
        if not self.can_write(request):
            raise PermissionDenied
        tenants = {rule.tenant for rule in queryset.select_related("tenant")}
        for tenant in sorted(tenants, key=lambda t: t.name):
            counts = alerting.alert_rules_evaluate(tenant=tenant).as_dict()["counts"]
            summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n) or "nothing"
            self.message_user(request, f"{tenant.name}: {summary}.", messages.SUCCESS)


@admin.register(AlertRuleDefault)
class AlertRuleDefaultAdmin(admin.ModelAdmin):
    """MSP-wide default rules: every MSP staff member reads them, MSP admins write them.

    Not tenant-owned (no tenant at all); writes go through the audited services."""

    form = AlertRuleDefaultForm
    list_display = (
        "name",
        "enabled",
        "metric",
        "condition",
        "threshold",
        "window_minutes",
        "severity",
        "auto_resolve",
    )
    list_filter = ("enabled", "target", "metric", "condition", "severity", "auto_resolve")
    search_fields = ("name", "description", "resource_pattern")
    ordering = ("name", "id")
    fieldsets = _RULE_FIELDSETS

    def has_module_permission(self, request):
        return is_admin_staff(request.user)

    def has_view_permission(self, request, obj=None):
        return is_admin_staff(request.user)

    def has_add_permission(self, request):
        return is_admin_staff(request.user) and request.user.msp_role == MspRole.ADMIN

    def has_change_permission(self, request, obj=None):
        return self.has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_add_permission(request)

    def save_model(self, request, obj, form, change):
        fields = _rule_changes(form, change=change)
        rule = alerting.alert_rule_default_save(rule=fresh_copy(obj) if change else None, **fields)
        adopt(obj, rule)

    def delete_model(self, request, obj):
        alerting.alert_rule_default_delete(rule=obj)

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            alerting.alert_rule_default_delete(rule=rule)
