"""The registry of job kinds: what can run, where, for whom, with which parameters.

A kind is a function ``func(run, parameters) -> dict | None`` (``run`` is the
:class:`~operations.jobs.execution.JobContext` of the attempt; the returned dict is the run's
result summary). Apps register their kinds in a ``job_kinds`` module, which the jobs app imports
at start-up::

    @job_kind("compliance_scan", title="Compliance scan", parameters=ScanParameters, nightly=True)
    def compliance_scan(run, parameters):
        summary = run.once("scan", lambda: compliance_run_for_tenant(tenant_id=run.tenant_id))
        return summary

A kind may run again after its worker died: its effects must be idempotent, or wrapped in
``run.once(key, fn)``, which commits ``fn``'s writes together with a checkpoint.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from django.core.exceptions import ValidationError
from rest_framework import serializers

from operations.jobs.exceptions import UnknownJobKind

JOBS_QUEUE = "jobs"
MAINTENANCE_QUEUE = "maintenance"
# The most executions a run may have (the execute task's Celery retry budget is one fewer).
MAX_ATTEMPTS_LIMIT = 10
# Capabilities (see ``TenantAccess.allows``) a caller needs to trigger a kind in a tenant.
TRIGGER_CAPABILITIES = ("write", "staff_write", "msp_admin")


@dataclass(frozen=True)
class JobKind:
    name: str
    func: Callable
    title: str = ""
    description: str = ""
    #: Celery queue the run's task goes to.
    queue: str = JOBS_QUEUE
    #: True: a run belongs to one tenant and runs in its scope; a fleet-wide run fans out one
    #: child run per tenant. False: the run belongs to no tenant (MSP-wide maintenance).
    tenant_scoped: bool = True
    #: DRF serializer class validating ``parameters`` (None: the kind takes none).
    parameters: type[serializers.Serializer] | None = None
    #: Capability needed to trigger it through the tenant API.
    trigger_capability: str = "write"
    #: Gets a nightly schedule per active tenant (``job_schedules_ensure_for_tenant``).
    nightly: bool = False
    #: Executions allowed in total (transient-error retries and worker losses both count).
    max_attempts: int = 3
    #: Per-kind Celery time limits in seconds (None: the app-wide defaults).
    soft_time_limit: int | None = None
    time_limit: int | None = None
    tags: tuple[str, ...] = field(default=())

    def __post_init__(self):
        if self.trigger_capability not in TRIGGER_CAPABILITIES:
            raise ValueError(f"{self.name}: unknown trigger capability {self.trigger_capability}")
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise ValueError(f"{self.name}: max_attempts must be 1 to {MAX_ATTEMPTS_LIMIT}")

    def clean_parameters(self, data) -> dict:
        """The validated parameters, or a ``ValidationError`` naming ``parameters.<field>``."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValidationError({"parameters": ["Expected an object."]})
        if self.parameters is None:
            if data:
                names = ", ".join(sorted(data))
                raise ValidationError({"parameters": [f"{self.name} takes no parameters: {names}"]})
            return {}
        if not data and self._defaults is not None:
            return copy.deepcopy(self._defaults)
        return self._clean(data)

    def _clean(self, data: dict) -> dict:
        serializer = self.parameters(data=data)
        if not serializer.is_valid():
            raise ValidationError(_dotted("parameters", serializer.errors))
        # Round-trip through JSON types: parameters are stored and sent as JSON.
        return dict(serializer.to_representation(serializer.validated_data))

    @cached_property
    def _defaults(self) -> dict | None:
        """The cleaned form of no parameters, when it is always the same (None otherwise).

        Most runs are submitted without parameters (schedules, fleet children, the bench), and
        a serializer costs more than the rest of a submit's Python. Worked out once only when
        nothing could make it differ: no field required, every default a constant (not a
        callable such as ``timezone.now``), no ``validate`` or ``validate_<field>`` hook.
        """
        serializer = self.parameters()
        if type(serializer).validate is not serializers.Serializer.validate:
            return None
        for name, fld in serializer.fields.items():
            if fld.required or hasattr(serializer, f"validate_{name}"):
                return None
            if fld.default is not serializers.empty and callable(fld.default):
                return None
        try:
            return self._clean({})
        except ValidationError:
            return None

    def parameter_fields(self) -> dict[str, dict]:
        """A short description of each parameter, for the API's list of kinds."""
        if self.parameters is None:
            return {}
        described = {}
        for name, fld in self.parameters().fields.items():
            described[name] = {
                "type": type(fld).__name__.removesuffix("Field").lower(),
                "required": fld.required,
                "help_text": str(fld.help_text or ""),
            }
        return described


def _dotted(prefix: str, errors) -> dict[str, list[str]]:
    if isinstance(errors, dict):
        flat: dict[str, list[str]] = {}
        for key, value in errors.items():
            path = prefix if key == "non_field_errors" else f"{prefix}.{key}"
            flat.update(_dotted(path, value))
        return flat
    return {prefix: [str(message) for message in errors]}


_KINDS: dict[str, JobKind] = {}


def register_job_kind(kind: JobKind) -> JobKind:
    """Add ``kind``; registering the same function twice (a module re-import) is harmless."""
    existing = _KINDS.get(kind.name)
    if existing is not None and existing.func.__qualname__ != kind.func.__qualname__:
        raise ValueError(f"job kind {kind.name!r} is already registered by {existing.func}")
    _KINDS[kind.name] = kind
    return kind


def unregister_job_kind(name: str) -> None:
    _KINDS.pop(name, None)


def job_kind(name: str, **options) -> Callable[[Callable], Callable]:
    """Decorator form of :func:`register_job_kind`."""

    def decorate(func: Callable) -> Callable:
        register_job_kind(JobKind(name=name, func=func, **options))
        return func

    return decorate


def get_job_kind(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise UnknownJobKind(name) from None


def job_kinds() -> list[JobKind]:
    return sorted(_KINDS.values(), key=lambda kind: kind.name)


def nightly_job_kinds() -> list[JobKind]:
    return [kind for kind in job_kinds() if kind.nightly and kind.tenant_scoped]
