"""Jobs in the MSP console: runs with progress bars and logs, schedules, and the outbox.

Runs are created by services (never by the add form); staff watch them, run them again and
cancel them. MSP admins also see fleet runs, which belong to no tenant.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from operations.jobs import services
from operations.jobs.conf import engine_settings
from operations.jobs.exceptions import JobStateConflict
from operations.jobs.models import JobDispatch, JobRun, JobSchedule
from operations.jobs.outbox import outbox_drain
from operations.jobs.selectors import job_run_log_tail
from tenants.admin.base import StaffScopedAdmin, VisibleTenantListFilter, is_admin_staff
from tenants.scoping import active_scope


def _pre(value) -> str:
    return format_html("<pre style='white-space: pre-wrap; margin: 0'>{}</pre>", value)


def _json(value) -> str:
    return _pre(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def _label(key) -> str:
    return str(key).replace("_", " ").capitalize()


def _table(value, depth: int = 0) -> str:
    """A job's result as people read it: a dict is a two-column table, a list of dicts with
    the same keys a table with a header row, a list of plain values one line."""
    if depth > 4:  # deeper than people read: show the rest as JSON
        return _json(value)
    if isinstance(value, dict):
        if not value:
            return "—"
        rows = format_html_join(
            "",
            '<tr><th scope="row">{}</th><td>{}</td></tr>',
            ((_label(key), _table(item, depth + 1)) for key, item in value.items()),
        )
        return format_html('<table class="job-result">{}</table>', rows)
    if isinstance(value, list):
        if not value:
            return "—"
        keys = list(value[0]) if isinstance(value[0], dict) else None
        if keys and all(isinstance(item, dict) and list(item) == keys for item in value):
            head = format_html_join("", '<th scope="col">{}</th>', ((_label(k),) for k in keys))
            body = format_html_join(
                "",
                "<tr>{}</tr>",
                (
                    (
                        format_html_join(
                            "", "<td>{}</td>", ((_table(item[k], depth + 1),) for k in keys)
                        ),
                    )
                    for item in value
                ),
            )
            return format_html(
                '<table class="job-result"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
                head,
                body,
            )
        return format_html_join(", ", "{}", ((_table(item, depth + 1),) for item in value))
    if value is None:
        return "—"
    return format_html("{}", value)


class FleetRunFilter(admin.SimpleListFilter):
    title = "fleet run"
    parameter_name = "fleet_run"

    def lookups(self, request, model_admin):
        choices = [("child", "Part of a fleet run"), ("single", "Single-tenant run")]
        value = self.value()
        if value and value.isdigit():
            choices.append((value, f"Children of fleet run #{value}"))
        return choices

    def queryset(self, request, queryset):
        value = self.value()
        if value == "child":
            return queryset.filter(parent__isnull=False)
        if value == "single":
            return queryset.filter(parent__isnull=True, tenant__isnull=False)
        if value and value.isdigit():
            return queryset.filter(parent_id=int(value))
        return queryset


@admin.register(JobRun)
class JobRunAdmin(StaffScopedAdmin, admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "tenant_or_fleet",
        "status",
        "progress_bar",
        "triggered_by_label",
        "attempts",
        "created_at",
        "duration",
    )
    list_display_links = ("id", "kind")
    list_filter = (
        "status",
        "kind",
        "trigger",
        ("tenant", VisibleTenantListFilter),
        FleetRunFilter,
    )
    list_select_related = ("tenant",)
    search_fields = ("=id", "kind", "triggered_by_label", "progress_message", "error")
    date_hierarchy = "created_at"
    # Newest first, ties broken by id so runs created in the same instant keep their order.
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    actions = ("run_again", "run_fleet_wide", "cancel_runs")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "kind",
                    "tenant_or_fleet",
                    "status",
                    "progress_bar",
                    "progress_message",
                    "parameters_display",
                    "result_display",
                    "error",
                )
            },
        ),
        ("Log", {"fields": ("log_display",)}),
        (
            "Error detail (MSP staff only)",
            {"classes": ("collapse",), "fields": ("traceback_display",)},
        ),
        ("Fleet", {"fields": ("fleet_summary", "parent_link")}),
        (
            "Trigger and timing",
            {
                "fields": (
                    "trigger",
                    "triggered_by_label",
                    "triggered_by_user",
                    "schedule",
                    "created_at",
                    "started_at",
                    "finished_at",
                    "duration",
                    "cancel_requested_at",
                    "cancel_requested_by",
                )
            },
        ),
        (
            "Delivery",
            {
                "classes": ("collapse",),
                "fields": (
                    "task_id",
                    "queue",
                    "attempts",
                    "max_attempts",
                    "worker",
                    "heartbeat_at",
                    "lease_expires_at",
                    "requeued_at",
                    "checkpoints_display",
                ),
            },
        ),
    )
    readonly_fields = tuple(name for _title, options in fieldsets for name in options["fields"])

    # Fleet runs belong to no tenant; MSP admins see them beside the tenants' runs.
    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        user = request.user
        if is_admin_staff(user) and user.is_msp_admin and active_scope() is not None:
            queryset = queryset | JobRun.fleet.all()
        return queryset

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_run_permission(self, request):
        return self.can_write(request)

    def has_fleet_permission(self, request):
        return self.can_write(request) and request.user.is_msp_admin

    # -- columns --
    @admin.display(description="Tenant", ordering="tenant__name")
    def tenant_or_fleet(self, obj):
        return obj.tenant if obj.tenant_id else "— fleet —"

    @admin.display(description="Progress", ordering="progress")
    def progress_bar(self, obj):
        return format_html(
            '<progress value="{}" max="100" title="{}" style="width: 8em"></progress> {}%',
            obj.progress,
            obj.progress_message,
            obj.progress,
        )

    @admin.display(description="Duration")
    def duration(self, obj):
        seconds = obj.duration_seconds
        return "—" if seconds is None else f"{seconds:.1f} s"

    @admin.display(description="Parameters")
    def parameters_display(self, obj):
        return _table(obj.parameters)

    @admin.display(description="Result")
    def result_display(self, obj):
        return _table(obj.result)

    @admin.display(description="Checkpoints")
    def checkpoints_display(self, obj):
        return _json(obj.checkpoints)

    @admin.display(description="Traceback")
    def traceback_display(self, obj):
        return _pre(obj.traceback or "—")

    @admin.display(description="Log lines")
    def log_display(self, obj):
        lines, truncated = job_run_log_tail(run=obj, limit=engine_settings().detail_log_limit)
        if not lines:
            return "—"
        rows = format_html_join(
            "\n",
            "{} {} [attempt {}] {}",
            (
                (
                    timezone.localtime(line.at).strftime("%Y-%m-%d %H:%M:%S %Z"),
                    line.level.upper().ljust(7),
                    line.attempt,
                    line.message,
                )
                for line in lines
            ),
        )
        note = "(older lines left out)\n" if truncated else ""
        return format_html("<pre style='white-space: pre-wrap; margin: 0'>{}{}</pre>", note, rows)

    @admin.display(description="Children")
    def fleet_summary(self, obj):
        if not obj.is_fleet:
            return "—"
        link = reverse("admin:jobs_jobrun_changelist") + f"?fleet_run={obj.pk}"
        return format_html(
            "{} of {} tenants done: {} succeeded, {} failed, {} cancelled. "
            '<a href="{}">See them</a>',
            obj.children_finished,
            obj.children_total,
            obj.children_succeeded,
            obj.children_failed,
            obj.children_cancelled,
            link,
        )

    @admin.display(description="Fleet run")
    def parent_link(self, obj):
        if obj.parent_id is None:
            return "—"
        return format_html(
            '<a href="{}">#{}</a>',
            reverse("admin:jobs_jobrun_change", args=[obj.parent_id]),
            obj.parent_id,
        )

    # -- actions --
    @admin.action(description="Run again now (same kind and parameters)", permissions=["run"])
    def run_again(self, request, queryset):
        created = [services.job_run_again(run=run, user=request.user) for run in queryset]
        self.message_user(request, f"Queued {len(created)} new run(s).", messages.SUCCESS)

    @admin.action(description="Run these kinds across the fleet", permissions=["fleet"])
    def run_fleet_wide(self, request, queryset):
        kinds = {}
        for run in queryset:
            kinds.setdefault(run.kind, run.parameters)
        for kind, parameters in kinds.items():
            services.job_submit_fleet(kind=kind, parameters=parameters, user=request.user)
        self.message_user(request, f"Started {len(kinds)} fleet run(s).", messages.SUCCESS)

    @admin.action(description="Cancel", permissions=["run"])
    def cancel_runs(self, request, queryset):
        cancelled, finished = 0, 0
        for run in queryset:
            try:
                services.job_cancel(run=run, user=request.user)
                cancelled += 1
            except JobStateConflict:
                finished += 1
        self.message_user(
            request,
            f"Cancelled or asked to stop: {cancelled}. Already finished: {finished}.",
            messages.SUCCESS if cancelled else messages.WARNING,
        )


class JobScheduleForm(forms.ModelForm):
    """When it runs (in its time zone) and whether it is paused; saved by the service."""

    hour = forms.IntegerField(min_value=0, max_value=23)
    minute = forms.IntegerField(min_value=0, max_value=59)
    enabled = forms.BooleanField(required=False)

    class Meta:
        model = JobSchedule
        fields = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        task = getattr(self.instance, "periodic_task", None)
        crontab = task.crontab if task is not None else None
        if crontab is not None and crontab.hour.isdigit() and crontab.minute.isdigit():
            self.initial.setdefault("hour", int(crontab.hour))
            self.initial.setdefault("minute", int(crontab.minute))
        if task is not None:
            self.initial.setdefault("enabled", task.enabled)


@admin.register(JobSchedule)
class JobScheduleAdmin(StaffScopedAdmin, admin.ModelAdmin):
    form = JobScheduleForm
    list_display = ("key", "tenant", "kind", "runs_at", "enabled", "last_run_at", "run_count")
    list_filter = ("kind", "periodic_task__enabled", ("tenant", VisibleTenantListFilter))
    list_select_related = ("tenant", "periodic_task__crontab")
    search_fields = ("key", "kind", "tenant__name")
    fields = ("key", "kind", "parameters", "runs_at", "hour", "minute", "enabled", "beat_entry")
    readonly_fields = ("key", "kind", "parameters", "runs_at", "beat_entry")
    actions = ("run_now", "pause", "resume")

    def has_add_permission(self, request, obj=None):
        # Nightly schedules come with the tenant's activation (job_schedules_ensure_for_tenant).
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # pause instead: the history of its runs keeps pointing at it

    def has_run_permission(self, request):
        return self.can_write(request)

    def save_model(self, request, obj, form, change):
        services.job_schedule_update(
            schedule=obj,
            hour=form.cleaned_data["hour"],
            minute=form.cleaned_data["minute"],
            enabled=form.cleaned_data["enabled"],
        )

    @admin.display(description="Runs at")
    def runs_at(self, obj):
        crontab = obj.periodic_task.crontab
        if crontab is None:
            return "—"
        if crontab.hour.isdigit() and crontab.minute.isdigit():
            return f"{int(crontab.hour):02d}:{int(crontab.minute):02d} {crontab.timezone} daily"
        return f"{crontab} ({crontab.timezone})"

    @admin.display(boolean=True, description="Enabled", ordering="periodic_task__enabled")
    def enabled(self, obj):
        return obj.periodic_task.enabled

    @admin.display(description="Last run", ordering="periodic_task__last_run_at")
    def last_run_at(self, obj):
        return obj.periodic_task.last_run_at

    @admin.display(description="Runs")
    def run_count(self, obj):
        return obj.periodic_task.total_run_count

    @admin.display(description="Beat entry")
    def beat_entry(self, obj):
        task = obj.periodic_task
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:django_celery_beat_periodictask_change", args=[task.pk]),
            task.name,
        )

    @admin.action(description="Run now (the schedule is left as it is)", permissions=["run"])
    def run_now(self, request, queryset):
        for schedule in queryset.select_related("tenant"):
            services.job_schedule_run_now(schedule=schedule, user=request.user)
        self.message_user(request, f"Queued {queryset.count()} run(s).", messages.SUCCESS)

    def _set_enabled(self, queryset, enabled: bool) -> None:
        for schedule in queryset.select_related("periodic_task__crontab"):
            crontab = schedule.periodic_task.crontab
            services.job_schedule_update(
                schedule=schedule,
                hour=int(crontab.hour),
                minute=int(crontab.minute),
                enabled=enabled,
            )

    @admin.action(description="Pause", permissions=["run"])
    def pause(self, request, queryset):
        self._set_enabled(queryset, False)

    @admin.action(description="Resume", permissions=["run"])
    def resume(self, request, queryset):
        self._set_enabled(queryset, True)


@admin.register(JobDispatch)
class JobDispatchAdmin(admin.ModelAdmin):
    """Messages waiting for the broker. Routing data only; MSP admins only."""

    list_display = ("label", "task_name", "queue", "created_at", "available_at", "attempts")
    readonly_fields = (
        "label",
        "task_name",
        "task_id",
        "queue",
        "kwargs",
        "options",
        "created_at",
        "available_at",
        "attempts",
        "last_error",
    )
    actions = ("send_now",)

    def _msp_admin(self, request) -> bool:
        return is_admin_staff(request.user) and request.user.is_msp_admin

    def has_module_permission(self, request):
        return self._msp_admin(request)

    def has_view_permission(self, request, obj=None):
        return self._msp_admin(request)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_send_permission(self, request):
        return self._msp_admin(request)

    @admin.action(description="Send everything waiting now", permissions=["send"])
    def send_now(self, request, queryset):
        result = outbox_drain(include_waiting=True)
        level = messages.ERROR if result.failed else messages.SUCCESS
        self.message_user(
            request, f"Sent {result.sent}; still pending {result.pending}. {result.error}", level
        )
