"""The AI estate of a tenant: sites, compute, cloud accounts, links, AI systems, deployments
and datasets. Every model is tenant-owned; natural keys are unique per tenant."""

from __future__ import annotations

import re

from django.core.exceptions import NON_FIELD_ERRORS, ObjectDoesNotExist, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django_countries.fields import CountryField

from tenants.scoping import TenantOwnedModel

GPU_UUID = re.compile(r"^(GPU|MIG)-[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")


class InventoryModel(TenantOwnedModel):
    """Validation shared by the inventory: per-tenant duplicates name their field."""

    #: Field that carries a per-tenant duplicate error (default: the constraint's last field).
    duplicate_error_field: str | None = None
    #: Message for that error (default: "This <fields> is already used by another <model>.").
    duplicate_error_message: str | None = None
    #: Foreign keys to other tenant-owned rows, which must be in this row's tenant.
    tenant_relations: tuple[str, ...] = ()

    class Meta:
        abstract = True

    def validate_constraints(self, exclude=None):
        try:
            super().validate_constraints(exclude=exclude)
        except ValidationError as error:
            errors = self._duplicates_on_their_field(error.update_error_dict({}))
            raise ValidationError(errors) from error

    def _duplicates_on_their_field(self, errors: dict) -> dict:
        # Django reports "unique per tenant" as a non-field error naming the tenant; the
        # caller never chose the tenant, so say which of their fields clashes instead.
        remaining = []
        for error in errors.pop(NON_FIELD_ERRORS, []):
            check = (getattr(error, "params", None) or {}).get("unique_check")
            if getattr(error, "code", None) != "unique_together" or not check:
                remaining.append(error)
                continue
            named = [name for name in check if name != "tenant"]
            field = self.duplicate_error_field or named[-1]
            labels = " and ".join(str(self._meta.get_field(name).verbose_name) for name in named)
            message = self.duplicate_error_message or (
                f"This {labels} is already used by another {self._meta.verbose_name}."
            )
            errors.setdefault(field, []).append(ValidationError(message, code="unique"))
        if remaining:
            errors[NON_FIELD_ERRORS] = remaining
        return errors

    def clean_fields(self, exclude=None):
        # Foreign keys to other inventory rows are checked by _check_relations (in clean()),
        # which gives the same answer whether row-level security hides a foreign row or not;
        # here only a missing required one.
        exclude = set(exclude or ())
        errors: dict = {}
        try:
            super().clean_fields(exclude=exclude | set(self.tenant_relations))
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        for name in self.tenant_relations:
            model_field = self._meta.get_field(name)
            if name in exclude or model_field.null:
                continue
            if getattr(self, model_field.attname) is None:
                message = model_field.error_messages["null"]
                errors.setdefault(name, []).append(ValidationError(message, code="null"))
        if errors:
            raise ValidationError(errors)

    def _check_relations(self, errors: dict) -> None:
        """Related inventory rows must exist in this row's tenant (the admin can offer several)."""
        for name in self.tenant_relations:
            model_field = self._meta.get_field(name)
            if getattr(self, model_field.attname) is None:
                continue
            try:
                related = getattr(self, name)
            except ObjectDoesNotExist:
                related = None
            if related is None or related.tenant_id != self.tenant_id:
                label = model_field.related_model._meta.verbose_name
                errors.setdefault(name, []).append(f"That {label} does not exist in this tenant.")

    def clean(self):
        errors: dict = {}
        self._check_relations(errors)
        self.check_rules(errors)
        if errors:
            raise ValidationError(errors)

    def check_rules(self, errors: dict) -> None:
        """Rules of the row itself; relations named in ``errors`` have failed already."""


class TimestampedTenantOwnedModel(InventoryModel):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def _unique_per_tenant(*fields: str, name: str) -> models.UniqueConstraint:
    return models.UniqueConstraint(fields=["tenant", *fields], name=name)


# --- Sites and connectivity ---------------------------------------------------------------------


class SiteKind(models.TextChoices):
    ON_PREM = "on_prem_dc", "On-prem data centre"
    COLOCATION = "colocation", "Colocation"
    CLOUD_REGION = "cloud_region", "Cloud region"
    EDGE = "edge", "Edge"


class Site(TimestampedTenantOwnedModel):
    code = models.SlugField(max_length=50, help_text="Natural key, e.g. 'lon-dc1'.")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=SiteKind.choices)
    country = CountryField()
    region = models.CharField(max_length=100, blank=True, help_text="e.g. eu-west-2, London")
    provider = models.CharField(max_length=100, blank=True, help_text="Cloud or colo provider.")

    class Meta:
        ordering = ["code"]
        constraints = [_unique_per_tenant("code", name="inventory_site_code_per_tenant")]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class Redundancy(models.TextChoices):
    NONE = "none", "None"
    ACTIVE_PASSIVE = "active_passive", "Active/passive"
    ACTIVE_ACTIVE = "active_active", "Active/active"


class Link(TimestampedTenantOwnedModel):
    """Connectivity between two sites of the same tenant."""

    site_a = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    site_b = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    bandwidth_mbps = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    latency_ms = models.DecimalField(
        max_digits=8, decimal_places=2, validators=[MinValueValidator(0)]
    )
    redundancy = models.CharField(
        max_length=20, choices=Redundancy.choices, default=Redundancy.NONE
    )
    provider = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["site_a__code", "site_b__code"]
        constraints = [
            _unique_per_tenant("site_a", "site_b", name="inventory_link_sites_per_tenant"),
            models.CheckConstraint(
                condition=~models.Q(site_a=models.F("site_b")), name="inventory_link_distinct_sites"
            ),
        ]

    duplicate_error_field = "site_b"
    tenant_relations = ("site_a", "site_b")
    duplicate_error_message = "A link between these two sites already exists."

    def __str__(self) -> str:
        return f"{self.site_a_id} ↔ {self.site_b_id}"

    def check_rules(self, errors: dict) -> None:
        if "site_a" in errors or "site_b" in errors:
            return
        if self.site_a_id == self.site_b_id:
            errors["site_b"] = ["A link joins two different sites."]
            return
        # A↔B and B↔A are the same link.
        reverse = Link.objects.filter(
            tenant_id=self.tenant_id, site_a_id=self.site_b_id, site_b_id=self.site_a_id
        )
        if reverse.exclude(pk=self.pk).exists():
            errors["site_b"] = ["A link between these two sites already exists."]


# --- Cloud and compute --------------------------------------------------------------------------


class CloudProvider(models.TextChoices):
    AWS = "aws", "AWS"
    AZURE = "azure", "Microsoft Azure"
    GCP = "gcp", "Google Cloud"
    OCI = "oci", "Oracle Cloud"
    OTHER = "other", "Other"


class CloudAccount(TimestampedTenantOwnedModel):
    provider = models.CharField(max_length=20, choices=CloudProvider.choices)
    account_id = models.CharField(max_length=100, help_text="Provider's account/subscription id.")
    name = models.CharField(max_length=200, blank=True)
    monthly_budget = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    currency = models.CharField(max_length=3, default="USD")

    class Meta:
        ordering = ["provider", "account_id"]
        constraints = [
            _unique_per_tenant("provider", "account_id", name="inventory_cloud_account_per_tenant")
        ]

    duplicate_error_field = "account_id"

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.account_id}"

    @property
    def natural_key_text(self) -> str:
        """``provider:account_id``, how imports and exports refer to the account."""
        return cloud_account_key(self.provider, self.account_id)


def cloud_account_key(provider: str | None, account_id: str | None) -> str | None:
    """An account's ``provider:account_id`` from its two columns (None without an account)."""
    return None if account_id is None else f"{provider}:{account_id}"


class ComputeKind(models.TextChoices):
    GPU_CLUSTER = "gpu_cluster", "GPU cluster"
    GPU_NODE = "gpu_node", "GPU node"
    CPU_NODE = "cpu_node", "CPU node"
    MANAGED_ENDPOINT = "managed_endpoint", "Managed endpoint"


class ComputeStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    MAINTENANCE = "maintenance", "Maintenance"
    OFFLINE = "offline", "Offline"
    RETIRED = "retired", "Retired"


class ComputeResource(TimestampedTenantOwnedModel):
    hostname = models.CharField(max_length=200, help_text="Natural key: hostname or name.")
    kind = models.CharField(max_length=20, choices=ComputeKind.choices)
    status = models.CharField(
        max_length=20, choices=ComputeStatus.choices, default=ComputeStatus.ACTIVE
    )
    site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cluster = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="nodes",
        limit_choices_to={"kind": "gpu_cluster"},
    )
    cloud_account = models.ForeignKey(
        CloudAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    gpu_model = models.CharField(max_length=100, blank=True, help_text="e.g. NVIDIA H100 80GB")
    gpu_count = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(100000)])
    gpu_memory_gb = models.PositiveIntegerField(default=0, help_text="Per GPU.")
    hourly_cost = models.DecimalField(
        max_digits=12, decimal_places=4, default=0, validators=[MinValueValidator(0)]
    )
    gpu_uuids = models.JSONField(
        default=list, blank=True, help_text="GPU UUIDs as dcgm-exporter reports them."
    )

    class Meta:
        ordering = ["hostname"]
        constraints = [_unique_per_tenant("hostname", name="inventory_compute_hostname_per_tenant")]
        indexes = [models.Index(fields=["tenant", "kind", "status"], name="inventory_compute_kind")]

    def __str__(self) -> str:
        return self.hostname

    tenant_relations = ("site", "cluster", "cloud_account")

    def check_rules(self, errors: dict) -> None:
        cluster = self.cluster if self.cluster_id is not None and "cluster" not in errors else None
        if cluster is not None:
            if self.pk is not None and cluster.pk == self.pk:
                errors["cluster"] = ["A resource cannot be its own cluster."]
            elif cluster.kind != ComputeKind.GPU_CLUSTER:
                errors["cluster"] = [f"'{cluster.hostname}' is not a GPU cluster."]
            elif self.kind not in (ComputeKind.GPU_NODE, ComputeKind.CPU_NODE):
                errors["cluster"] = ["Only GPU and CPU nodes belong to a cluster."]
        uuids = self.gpu_uuids
        if not isinstance(uuids, list) or not all(isinstance(u, str) for u in uuids):
            errors["gpu_uuids"] = ["Give a list of GPU UUIDs."]
        else:
            bad = [u for u in uuids if not GPU_UUID.match(u)]
            if bad:
                errors["gpu_uuids"] = [f"Not a GPU UUID (GPU-<uuid>): {', '.join(bad[:3])}."]
            elif len(set(uuids)) != len(uuids):
                errors["gpu_uuids"] = ["A GPU UUID is listed twice."]
            elif self.kind == ComputeKind.GPU_NODE and len(uuids) > self.gpu_count:
                errors["gpu_uuids"] = [
                    f"{len(uuids)} GPU UUIDs for a node with {self.gpu_count} GPUs."
                ]


class GpuDevice(TimestampedTenantOwnedModel):
    """One GPU of a compute resource (or one MIG instance of it), as dcgm-exporter names it.

    Telemetry keeps a series per GPU (``ResourceKind.GPU``, resource id = this row's id) beside
    the node's aggregate. Rows are learned on first sight from a scrape's ``gpu``/``UUID``/
    ``GPU_I_ID`` labels (audited) or entered by staff; ``ComputeResource.gpu_uuids`` seeded the
    first ones (migration inventory 0006).
    """

    compute = models.ForeignKey(ComputeResource, on_delete=models.CASCADE, related_name="gpus")
    index = models.PositiveSmallIntegerField(help_text="dcgm-exporter's gpu label (0, 1, …).")
    uuid = models.CharField(
        max_length=64, blank=True, help_text="GPU-<uuid> as dcgm-exporter reports it."
    )
    mig_instance = models.CharField(
        max_length=32,
        blank=True,
        help_text="MIG GPU instance id (GPU_I_ID); empty for a whole GPU.",
    )
    mig_profile = models.CharField(
        max_length=64, blank=True, help_text="MIG profile (GPU_I_PROFILE), e.g. 1g.10gb."
    )
    model_name = models.CharField(
        max_length=100, blank=True, help_text="modelName label, e.g. NVIDIA H100 80GB HBM3."
    )
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["compute", "index", "mig_instance"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "compute", "index", "mig_instance"],
                name="inventory_gpu_position_per_compute",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "uuid"], name="inventory_gpu_uuid")]

    tenant_relations = ("compute",)

    def __str__(self) -> str:
        mig = f" MIG {self.mig_instance}" if self.mig_instance else ""
        return f"{self.compute} GPU {self.index}{mig}"

    def check_rules(self, errors: dict) -> None:
        if self.uuid and not GPU_UUID.match(self.uuid):
            errors["uuid"] = ["Not a GPU UUID (GPU-<uuid> or MIG-<uuid>)."]


# --- The AI register ------------------------------------------------------------------------


class Stage(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    PILOT = "pilot", "Pilot"
    PRODUCTION = "production", "Production"
    RETIRED = "retired", "Retired"


STAGE_TRANSITIONS: dict[str, tuple[str, ...]] = {
    Stage.PROPOSED: (Stage.PILOT, Stage.RETIRED),
    Stage.PILOT: (Stage.PRODUCTION, Stage.PROPOSED, Stage.RETIRED),
    Stage.PRODUCTION: (Stage.PILOT, Stage.RETIRED),
    Stage.RETIRED: (),
}


class RiskTier(models.TextChoices):
    UNCLASSIFIED = "unclassified", "Not yet classified"
    PROHIBITED = "prohibited", "Prohibited (Art. 5)"
    HIGH = "high", "High risk"
    LIMITED = "limited", "Limited risk (transparency)"
    MINIMAL = "minimal", "Minimal risk"


class Provenance(models.TextChoices):
    IN_HOUSE = "in_house", "In-house"
    VENDOR = "vendor", "Vendor"
    OPEN_WEIGHTS = "open_weights", "Open weights"


class AnnexIIIArea(models.TextChoices):
    """EU AI Act Annex III: the areas where an AI system is high-risk (Art. 6(2))."""

    BIOMETRICS = "biometrics", "1. Biometrics"
    CRITICAL_INFRASTRUCTURE = "critical_infrastructure", "2. Critical infrastructure"
    EDUCATION = "education", "3. Education and vocational training"
    EMPLOYMENT = "employment", "4. Employment and workers management"
    ESSENTIAL_SERVICES = "essential_services", "5. Essential private and public services"
    LAW_ENFORCEMENT = "law_enforcement", "6. Law enforcement"
    MIGRATION = "migration", "7. Migration, asylum and border control"
    JUSTICE = "justice", "8. Administration of justice and democratic processes"


class AISystem(TimestampedTenantOwnedModel):
    name = models.CharField(max_length=200, help_text="Natural key.")
    purpose = models.TextField(blank=True, max_length=4000)
    business_owner = models.CharField(max_length=200, blank=True)
    technical_owner = models.CharField(max_length=200, blank=True)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.PROPOSED)
    stage_changed_at = models.DateTimeField(
        default=timezone.now,
        editable=False,
        help_text="When the system entered its current stage (set by the stage-changing services).",
    )
    risk_tier = models.CharField(
        max_length=20, choices=RiskTier.choices, default=RiskTier.UNCLASSIFIED
    )
    risk_classified_at = models.DateField(null=True, blank=True)
    provenance = models.CharField(
        max_length=20, choices=Provenance.choices, default=Provenance.IN_HOUSE
    )
    vendor = models.CharField(max_length=200, blank=True)
    model_name = models.CharField(max_length=200, blank=True, help_text="Documented model.")
    model_version = models.CharField(
        max_length=100, blank=True, help_text="Documented model version."
    )
    personal_data = models.BooleanField(default=False)
    human_oversight = models.BooleanField(default=False)
    human_overseer = models.CharField(max_length=200, blank=True)
    user_facing = models.BooleanField(default=False)
    generative = models.BooleanField(default=False)
    # What the compliance checks read (EU AI Act articles in the help texts).
    annex_iii_area = models.CharField(
        max_length=30,
        choices=AnnexIIIArea.choices,
        blank=True,
        help_text="Art. 6(2): the Annex III area the system is used in, if any.",
    )
    risk_reviewed_at = models.DateField(
        null=True, blank=True, help_text="Art. 9: when the risk classification was last reviewed."
    )
    technical_documentation_url = models.URLField(
        max_length=500, blank=True, help_text="Art. 11: where the technical documentation is."
    )
    fria_required = models.BooleanField(
        default=False,
        help_text="Art. 27: a fundamental-rights impact assessment is required (public body "
        "or public service deployer, credit scoring, life and health insurance pricing).",
    )
    fria_completed_at = models.DateField(
        null=True, blank=True, help_text="Art. 27: when the impact assessment was completed."
    )
    eu_database_id = models.CharField(
        max_length=100, blank=True, help_text="Art. 49: EU database registration number."
    )
    vendor_assessed_at = models.DateField(
        null=True, blank=True, help_text="When the vendor or model supplier was last assessed."
    )
    ai_disclosure = models.BooleanField(
        default=False,
        help_text="Art. 50: users are told they interact with AI / generated content is marked.",
    )
    datasets = models.ManyToManyField(
        "Dataset", through="AISystemDataset", related_name="+", blank=True
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "AI system"
        constraints = [_unique_per_tenant("name", name="inventory_ai_system_name_per_tenant")]
        indexes = [
            models.Index(fields=["tenant", "stage", "risk_tier"], name="inventory_ai_system_stage")
        ]

    def __str__(self) -> str:
        return self.name


class Environment(models.TextChoices):
    DEVELOPMENT = "development", "Development"
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"


class Deployment(TimestampedTenantOwnedModel):
    name = models.SlugField(max_length=100, help_text="Natural key, e.g. 'fraud-scoring-prod'.")
    ai_system = models.ForeignKey(AISystem, on_delete=models.PROTECT, related_name="deployments")
    model_version = models.CharField(max_length=100)
    compute = models.ForeignKey(
        ComputeResource, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    endpoint = models.URLField(max_length=500, blank=True)
    environment = models.CharField(
        max_length=20, choices=Environment.choices, default=Environment.PRODUCTION
    )
    monitoring_enabled = models.BooleanField(default=False)
    logging_enabled = models.BooleanField(default=False)
    log_retention_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(36500)]
    )
    runbook_url = models.URLField(max_length=500, blank=True)
    deployed_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [_unique_per_tenant("name", name="inventory_deployment_name_per_tenant")]

    def __str__(self) -> str:
        return self.name

    tenant_relations = ("ai_system", "compute")


class Classification(models.TextChoices):
    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    RESTRICTED = "restricted", "Restricted"


class Dataset(TimestampedTenantOwnedModel):
    name = models.CharField(max_length=200, help_text="Natural key.")
    classification = models.CharField(
        max_length=20, choices=Classification.choices, default=Classification.INTERNAL
    )
    personal_data = models.BooleanField(default=False)
    owner = models.CharField(max_length=200, blank=True)
    retention_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(36500)]
    )
    residency_country = CountryField(blank=True)
    provenance = models.CharField(max_length=200, blank=True, help_text="Where the data came from.")
    licence = models.CharField(max_length=200, blank=True)
    quality_score = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(100)]
    )
    last_validated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [_unique_per_tenant("name", name="inventory_dataset_name_per_tenant")]

    def __str__(self) -> str:
        return self.name


class AISystemDataset(InventoryModel):
    """Which datasets an AI system uses (and how)."""

    ai_system = models.ForeignKey(AISystem, on_delete=models.CASCADE, related_name="dataset_usage")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="+")
    usage = models.CharField(
        max_length=20,
        default="training",
        choices=[
            ("training", "Training"),
            ("evaluation", "Evaluation"),
            ("inference", "Inference / retrieval"),
        ],
    )

    class Meta:
        ordering = ["ai_system__name", "dataset__name", "usage"]
        verbose_name = "dataset usage"
        constraints = [
            _unique_per_tenant(
                "ai_system", "dataset", "usage", name="inventory_system_dataset_per_tenant"
            )
        ]

    duplicate_error_field = "dataset"
    duplicate_error_message = "This AI system already uses this dataset that way."

    def __str__(self) -> str:
        return f"{self.ai_system_id} uses {self.dataset_id} ({self.usage})"

    tenant_relations = ("ai_system", "dataset")
