"""Readiness in the MSP console: framework versions (read-only, loaded from the data files),
and per tenant the assessments with their answers and the score snapshots with the inputs
that produced them (read-only: written through the portal, the API and the scan). "Rescore
now" queues a readiness scan for the selected rows' tenants."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from operations.readiness import services
from operations.readiness.models import (
    Assessment,
    AssessmentAnswer,
    ReadinessFramework,
    ReadinessScore,
)
from operations.readiness.scoring import signal_points
from operations.readiness.selectors import framework_questions
from tenants.admin.base import (
    BoundedInlineFormSet,
    StaffScopedAdmin,
    VisibleTenantListFilter,
    is_admin_staff,
)
from tenants.scoping import tenant_scope

TENANT_FILTER = ("tenant", VisibleTenantListFilter)


class ReadOnlyAdminMixin:
    """Loaded from files or computed: looked at, never typed in."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _table(headers: tuple[str, ...], rows) -> str:
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)


@admin.register(ReadinessFramework)
class ReadinessFrameworkAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("code", "version", "title", "source_file", "checksum", "loaded_at")
    search_fields = ("code", "title")
    fields = ("code", "version", "title", "source_file", "checksum", "loaded_at", "outline")
    readonly_fields = fields

    def has_module_permission(self, request):
        return is_admin_staff(request.user)

    def has_view_permission(self, request, obj=None):
        return is_admin_staff(request.user)

    @admin.display(description="Pillars, questions and signals")
    def outline(self, obj):
        definition = obj.definition
        pillars = _table(
            ("Pillar", "Weight", "Questions", "Signals"),
            (
                (
                    p["title"],
                    p["weight"],
                    len(p["questions"]),
                    sum(1 for s in definition["signals"] if s["pillar"] == p["key"]),
                )
                for p in definition["pillars"]
            ),
        )
        levels = _table(
            ("Level", "Name", "From", "Meaning"),
            ((lv["level"], lv["name"], lv["min"], lv["meaning"]) for lv in definition["levels"]),
        )
        return format_html("{}<br>{}", pillars, levels)


class AssessmentAnswerInline(admin.TabularInline):
    model = AssessmentAnswer
    formset = BoundedInlineFormSet
    fields = ("question_key", "value", "note", "evidence_url", "answered_by", "answered_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return is_admin_staff(request.user)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class RescoreActionMixin:
    """The "rescore now" admin action: one readiness scan per selected row's tenant."""

    def has_rescore_permission(self, request):
        return self.can_write(request)

    @admin.action(description="Rescore the selected rows' tenants now", permissions=("rescore",))
    def rescore_tenants_now(self, request, queryset):
        tenants = {row.tenant_id: row.tenant for row in queryset.select_related("tenant")}
        for tenant in tenants.values():
            with tenant_scope(tenant.id):
                services.readiness_rescore_request(tenant=tenant, user=request.user)
        self.message_user(
            request, f"Queued a readiness scan for {len(tenants)} tenant(s).", messages.SUCCESS
        )


@admin.register(Assessment)
class AssessmentAdmin(RescoreActionMixin, ReadOnlyAdminMixin, StaffScopedAdmin, admin.ModelAdmin):
    list_display = ("id", "tenant", "framework", "status", "submitted_at", "submitted_by")
    list_filter = ("status", TENANT_FILTER)
    list_select_related = ("tenant", "framework", "submitted_by")
    ordering = ("-created_at",)
    inlines = (AssessmentAnswerInline,)
    actions = ("rescore_tenants_now",)


@admin.register(ReadinessScore)
class ReadinessScoreAdmin(
    RescoreActionMixin, ReadOnlyAdminMixin, StaffScopedAdmin, admin.ModelAdmin
):
    list_display = ("computed_at", "tenant", "overall", "level", "framework", "job_run_id")
    list_filter = ("level", TENANT_FILTER)
    list_select_related = ("tenant", "framework")
    ordering = ("-computed_at",)
    actions = ("rescore_tenants_now",)
    fields = (
        "tenant",
        "framework",
        "computed_at",
        "overall",
        "level",
        "assessment",
        "job_run_id",
        "triggered_by",
        "pillars_table",
        "signals_table",
        "answers_table",
    )
    readonly_fields = fields

    @admin.display(description="Pillars")
    def pillars_table(self, obj):
        titles = {p["key"]: p["title"] for p in obj.framework.definition["pillars"]}
        return _table(
            ("Pillar", "Score"),
            ((titles.get(key, key), "—" if v is None else v) for key, v in obj.pillars.items()),
        )

    @admin.display(description="Signals (inputs)")
    def signals_table(self, obj):
        stored = (obj.inputs or {}).get("signals") or {}
        rows = []
        for signal in obj.framework.definition["signals"]:
            value = (stored.get(signal["key"]) or {}).get("value")
            points = signal_points(value, target=signal["target"], floor=signal["floor"])
            rows.append(
                (
                    signal["title"],
                    "no data" if value is None else f"{value:g} {signal['unit']}",
                    f"{signal['target']:g} {signal['unit']}",
                    "—" if points is None else f"{points:.0f}",
                    (stored.get(signal["key"]) or {}).get("explanation", ""),
                )
            )
        return _table(("Signal", "Value", "Target", "Points", "Explanation"), rows)

    @admin.display(description="Answers (inputs)")
    def answers_table(self, obj):
        answers = (obj.inputs or {}).get("answers") or {}
        if not answers:
            return "No submitted assessment."
        questions = framework_questions(obj.framework.definition)
        rows = []
        for key, value in answers.items():
            question = questions.get(key)
            label = question["scale"][value] if question else ""
            rows.append((key, question["text"] if question else "", value, label))
        return _table(("Question", "Text", "Answer", "Meaning"), rows)
