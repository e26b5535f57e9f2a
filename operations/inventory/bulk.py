"""Bulk import and export of a tenant's inventory as one document.

The document has one list per section, in dependency order::

    {"sites": [...], "cloud_accounts": [...], "compute": [...], "links": [...],
     "datasets": [...], "ai_systems": [...], "deployments": [...]}

Rows refer to each other by natural key, never by id: a site by ``code``, compute (and a
node's ``cluster``) by ``hostname``, a cloud account by ``"provider:account_id"`` (or
``{"provider": ..., "account_id": ...}``), an AI system and a dataset by ``name``. A link is
identified by its two site codes (in either order), a deployment by ``name``. An AI system row
lists its dataset usage as ``"datasets": [{"dataset": "<name>", "usage": "training"}]``; when
given, that list becomes the system's exact usage.

Import upserts by natural key: a new key creates a row, a known one updates only the fields the
row gives. Each row is validated by the API's own serializers (with references read as natural
keys) and written through the services in ``services.py``, so the rules and the audit trail are
the API's. The whole document is one transaction: any bad row and nothing is written, and the
errors come back per row as dotted paths (``compute.3.site``). Existing natural keys are loaded
with one query per model, not one per row.

An AI system the document retires is retired after the deployments section, so that an export
of a retired system that still has deployments imports cleanly; a deployment that is new on a
system already retired is refused, as in the API.

Compute rows can also travel as CSV (header row of field names): empty cells are left out (the
field keeps its value, or its default on a new row) and ``gpu_uuids`` are separated by ``;``.
Row indices in errors count data rows from 0, the header excluded.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models, transaction
from rest_framework import serializers

from msp.api.serializers import StrictSerializer
from operations.inventory import services
from operations.inventory.api.serializers import (
    TIMESTAMPS,
    AISystemSerializer,
    CloudAccountSerializer,
    ComputeSerializer,
    DatasetSerializer,
    DeploymentSerializer,
    LinkSerializer,
    SiteSerializer,
)
from operations.inventory.models import (
    AISystem,
    AISystemDataset,
    CloudAccount,
    ComputeResource,
    Dataset,
    Deployment,
    Link,
    Site,
    Stage,
)
from operations.inventory.registry import InventoryWrites, inventory_writes
from operations.inventory.selectors import inventory_querysets

SECTIONS = ("sites", "cloud_accounts", "compute", "links", "datasets", "ai_systems", "deployments")


# --- Natural keys -------------------------------------------------------------------------------


def cloud_account_key(value) -> tuple[str, str] | None:
    """``"aws:1234"`` or ``{"provider": "aws", "account_id": "1234"}`` → ("aws", "1234")."""
    if isinstance(value, dict) and set(value) == {"provider", "account_id"}:
        provider, account_id = value["provider"], value["account_id"]
    elif isinstance(value, str) and ":" in value:
        provider, account_id = value.split(":", 1)
    else:
        return None
    if not (isinstance(provider, str) and isinstance(account_id, str) and provider and account_id):
        return None
    return provider, account_id


@dataclass
class Kind:
    label: str
    key_of: Callable[[models.Model], object]
    parse: Callable[[object], object | None]
    describe: Callable[[object], str]


def _text_key(value) -> str | None:
    return value if isinstance(value, str) and value else None


KINDS = {
    "site": Kind("site", inventory_writes(Site).natural_key, _text_key, str),
    "compute": Kind(
        "compute resource", inventory_writes(ComputeResource).natural_key, _text_key, str
    ),
    "cloud_account": Kind(
        "cloud account",
        inventory_writes(CloudAccount).natural_key,
        cloud_account_key,
        lambda key: ":".join(key),
    ),
    "ai_system": Kind("AI system", inventory_writes(AISystem).natural_key, _text_key, str),
    "dataset": Kind("dataset", inventory_writes(Dataset).natural_key, _text_key, str),
}
HOW_TO_REFER = {
    "site": "the site's code",
    "compute": "the hostname",
    "cloud_account": '\'provider:account_id\' or {"provider": ..., "account_id": ...}',
    "ai_system": "the AI system's name",
    "dataset": "the dataset's name",
}


class NaturalKeyField(serializers.Field):
    """A reference to another inventory row by natural key, resolved inside the import's tenant.

    Only rows the import has loaded (the tenant's own, and the document's earlier rows) can
    match, so another tenant's keys are simply unknown.
    """

    def __init__(self, *, kind: str, **kwargs):
        self.kind = kind
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        kind = KINDS[self.kind]
        key = kind.parse(data)
        if key is None:
            raise serializers.ValidationError(
                f"Refer to a {kind.label} by {HOW_TO_REFER[self.kind]}."
            )
        found = self.context["keys"].get(self.kind, key)
        if found is None:
            raise serializers.ValidationError(f"Unknown {kind.label} '{kind.describe(key)}'.")
        return found

    def to_representation(self, value):
        if self.kind == "cloud_account":
            return value.natural_key_text
        return KINDS[self.kind].key_of(value)


def _row_fields(api_serializer, *, drop: tuple[str, ...] = ()) -> list[str]:
    return [name for name in api_serializer.Meta.fields if name not in ("id", *TIMESTAMPS, *drop)]


# --- Row serializers: the API's serializers with references as natural keys --------------------


class SiteRowSerializer(SiteSerializer):
    class Meta(SiteSerializer.Meta):
        fields = _row_fields(SiteSerializer)


class CloudAccountRowSerializer(CloudAccountSerializer):
    class Meta(CloudAccountSerializer.Meta):
        fields = _row_fields(CloudAccountSerializer)


class ComputeRowSerializer(ComputeSerializer):
    site = NaturalKeyField(kind="site", required=False, allow_null=True)
    cluster = NaturalKeyField(kind="compute", required=False, allow_null=True)
    cloud_account = NaturalKeyField(kind="cloud_account", required=False, allow_null=True)
    site_code = cluster_hostname = cloud_account_key = node_count = None

    class Meta(ComputeSerializer.Meta):
        fields = _row_fields(
            ComputeSerializer,
            drop=("site_code", "cluster_hostname", "cloud_account_key", "node_count"),
        )


class LinkRowSerializer(LinkSerializer):
    site_a = NaturalKeyField(kind="site")
    site_b = NaturalKeyField(kind="site")
    site_a_code = site_b_code = None

    class Meta(LinkSerializer.Meta):
        fields = _row_fields(LinkSerializer, drop=("site_a_code", "site_b_code"))


class DatasetRowSerializer(DatasetSerializer):
    class Meta(DatasetSerializer.Meta):
        fields = _row_fields(DatasetSerializer)


DEFAULT_USAGE = AISystemDataset._meta.get_field("usage").default


class DatasetUsageRowSerializer(StrictSerializer):
    dataset = NaturalKeyField(kind="dataset")
    usage = serializers.ChoiceField(
        choices=AISystemDataset._meta.get_field("usage").choices, default=DEFAULT_USAGE
    )


class AISystemRowSerializer(AISystemSerializer):
    datasets = DatasetUsageRowSerializer(many=True, required=False, source="dataset_usage")
    deployment_count = None

    class Meta(AISystemSerializer.Meta):
        fields = _row_fields(AISystemSerializer, drop=("deployment_count",))


class DeploymentRowSerializer(DeploymentSerializer):
    ai_system = NaturalKeyField(kind="ai_system")
    compute = NaturalKeyField(kind="compute", required=False, allow_null=True)
    ai_system_name = ai_system_stage = compute_hostname = None

    class Meta(DeploymentSerializer.Meta):
        fields = _row_fields(
            DeploymentSerializer, drop=("ai_system_name", "ai_system_stage", "compute_hostname")
        )


COMPUTE_CSV_FIELDS = list(ComputeRowSerializer.Meta.fields)


# --- Export -------------------------------------------------------------------------------------


ROW_SERIALIZERS = {
    "sites": SiteRowSerializer,
    "cloud_accounts": CloudAccountRowSerializer,
    "compute": ComputeRowSerializer,
    "links": LinkRowSerializer,
    "datasets": DatasetRowSerializer,
    "ai_systems": AISystemRowSerializer,
    "deployments": DeploymentRowSerializer,
}


def inventory_export(*, tenant) -> dict[str, list[dict]]:
    """The tenant's whole inventory as an import document (call inside its tenant scope)."""
    querysets = inventory_querysets(tenant=tenant)
    return {
        section: ROW_SERIALIZERS[section](querysets[section], many=True).data
        for section in SECTIONS
    }


def compute_csv(rows: list[dict]) -> str:
    """Compute rows of an export as CSV, with a header row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COMPUTE_CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                name: ";".join(value)
                if isinstance(value, list)
                else ("" if value is None else value)
                for name, value in row.items()
            }
        )
    return out.getvalue()


def compute_rows_from_csv(csv_rows: list[dict]) -> list[dict]:
    """CSV compute rows (``msp.api.parsers.csv_rows``) as import rows: empty cells left out,
    GPU UUIDs split on ``;``."""
    rows = []
    for raw in csv_rows:
        row = {}
        for name, value in raw.items():
            if name == "extra_cells":
                row[name] = value  # refused as an unknown field, with its row
            elif value is not None and value.strip():
                value = value.strip()
                row[name] = re.split(r"[;,\s]+", value) if name == "gpu_uuids" else value
        rows.append(row)
    return rows


# --- Import -------------------------------------------------------------------------------------


_LINK_KEY = inventory_writes(Link).natural_key  # (site_a id, site_b id)
_DEPLOYMENT_KEY = inventory_writes(Deployment).natural_key


class NaturalKeys:
    """The tenant's rows by natural key, loaded once per model and grown as the import creates."""

    def __init__(self, *, tenant):
        self.by_kind: dict[str, dict] = {}
        querysets = {
            "site": Site.objects.filter(tenant=tenant),
            "compute": ComputeResource.objects.filter(tenant=tenant),
            "cloud_account": CloudAccount.objects.filter(tenant=tenant),
            "ai_system": AISystem.objects.filter(tenant=tenant),
            "dataset": Dataset.objects.filter(tenant=tenant),
        }
        for kind, queryset in querysets.items():
            self.by_kind[kind] = {KINDS[kind].key_of(obj): obj for obj in queryset}
        self.links = {_LINK_KEY(link): link for link in Link.objects.filter(tenant=tenant)}
        self.deployments = {
            _DEPLOYMENT_KEY(deployment): deployment
            for deployment in Deployment.objects.filter(tenant=tenant)
        }
        self.usage: dict[int, list[AISystemDataset]] = {}
        for row in AISystemDataset.objects.filter(tenant=tenant):
            self.usage.setdefault(row.ai_system_id, []).append(row)

    def get(self, kind: str, key):
        return self.by_kind[kind].get(key)

    def add(self, kind: str, obj: models.Model) -> None:
        self.by_kind[kind][KINDS[kind].key_of(obj)] = obj

    def link_between(self, code_a, code_b) -> Link | None:
        site_a, site_b = self.get("site", _text_key(code_a)), self.get("site", _text_key(code_b))
        if site_a is None or site_b is None:
            return None
        return self.links.get((site_a.pk, site_b.pk)) or self.links.get((site_b.pk, site_a.pk))


@dataclass
class SectionCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}


@dataclass
class Section:
    """How one section's rows are keyed, found, validated and written."""

    name: str
    serializer: type[serializers.Serializer]
    key_field: str  # where a duplicate key is reported
    key_of_row: Callable[[dict], object]  # hashable natural key, or None
    find: Callable[[NaturalKeys, object], models.Model | None]
    remember: Callable[[NaturalKeys, models.Model], None]
    writes: InventoryWrites


def _text_of(name: str) -> Callable[[dict], str | None]:
    return lambda row: _text_key(row.get(name))


def _cloud_account_of(row: dict) -> tuple[str, str] | None:
    provider, account_id = row.get("provider"), row.get("account_id")
    if isinstance(provider, str) and isinstance(account_id, str):
        return provider, account_id
    return None


def _link_of(row: dict) -> tuple[str, str] | None:
    site_a, site_b = _text_key(row.get("site_a")), _text_key(row.get("site_b"))
    return tuple(sorted((site_a, site_b))) if site_a and site_b else None


def _find_link(keys: NaturalKeys, key) -> Link | None:
    return keys.link_between(*key) if key else None


def _remember_link(keys: NaturalKeys, link: Link) -> None:
    keys.links[_LINK_KEY(link)] = link


def _remember_deployment(keys: NaturalKeys, deployment: Deployment) -> None:
    keys.deployments[_DEPLOYMENT_KEY(deployment)] = deployment


def _by_kind(kind: str) -> dict:
    return {
        "find": lambda keys, key: keys.get(kind, key) if key is not None else None,
        "remember": lambda keys, obj: keys.add(kind, obj),
    }


SECTION_RULES = {
    "sites": Section(
        name="sites",
        serializer=SiteRowSerializer,
        key_field="code",
        key_of_row=_text_of("code"),
        **_by_kind("site"),
        writes=inventory_writes(Site),
    ),
    "cloud_accounts": Section(
        name="cloud_accounts",
        serializer=CloudAccountRowSerializer,
        key_field="account_id",
        key_of_row=_cloud_account_of,
        **_by_kind("cloud_account"),
        writes=inventory_writes(CloudAccount),
    ),
    "compute": Section(
        name="compute",
        serializer=ComputeRowSerializer,
        key_field="hostname",
        key_of_row=_text_of("hostname"),
        **_by_kind("compute"),
        writes=inventory_writes(ComputeResource),
    ),
    "links": Section(
        name="links",
        serializer=LinkRowSerializer,
        key_field="site_b",
        key_of_row=_link_of,
        find=_find_link,
        remember=_remember_link,
        writes=inventory_writes(Link),
    ),
    "datasets": Section(
        name="datasets",
        serializer=DatasetRowSerializer,
        key_field="name",
        key_of_row=_text_of("name"),
        **_by_kind("dataset"),
        writes=inventory_writes(Dataset),
    ),
    "ai_systems": Section(
        name="ai_systems",
        serializer=AISystemRowSerializer,
        key_field="name",
        key_of_row=_text_of("name"),
        **_by_kind("ai_system"),
        writes=inventory_writes(AISystem),
    ),
    "deployments": Section(
        name="deployments",
        serializer=DeploymentRowSerializer,
        key_field="name",
        key_of_row=_text_of("name"),
        find=lambda keys, key: keys.deployments.get(key) if key is not None else None,
        remember=_remember_deployment,
        writes=inventory_writes(Deployment),
    ),
}


def _differs(instance: models.Model, data: dict) -> bool:
    for name, value in data.items():
        model_field = instance._meta.get_field(name)
        if model_field.is_relation:
            if getattr(instance, model_field.attname) != (value.pk if value is not None else None):
                return True
        elif getattr(instance, name) != value:
            return True
    return False


def _django_errors(error: DjangoValidationError) -> dict[str, list[str]]:
    if not hasattr(error, "error_dict"):
        return {"non_field_errors": list(error.messages)}
    return {
        ("non_field_errors" if name == NON_FIELD_ERRORS else name): list(messages)
        for name, messages in error.message_dict.items()
    }


class _DryRun(Exception):
    """Raised to roll a dry run back once it has validated everything."""


class InventoryImport:
    """One import of one document into one tenant (see the module docstring)."""

    def __init__(self, *, tenant, document, create_only: bool = False, max_rows: int | None = None):
        self.tenant = tenant
        self.document = document
        self.create_only = create_only
        self.max_rows = max_rows
        self.errors: dict = {}
        self.counts = {section: SectionCounts() for section in SECTIONS}
        self.keys: NaturalKeys | None = None
        self.retire_later: list[tuple[int, AISystem]] = []

    def error(self, section: str, index: int, messages: dict) -> None:
        """Add a row's errors (serializer errors or field → messages)."""
        row = self.errors.setdefault(section, {}).setdefault(index, {})
        for name, value in messages.items():
            if isinstance(value, list) and isinstance(row.get(name), list):
                row[name].extend(value)
            else:
                row[name] = value

    def check_shape(self) -> bool:
        if not isinstance(self.document, dict):
            self.errors["non_field_errors"] = ["Send an object with one list per section."]
            return False
        for name, rows in self.document.items():
            if name not in SECTIONS:
                self.errors[name] = [f"Unknown section; expected one of: {', '.join(SECTIONS)}."]
            elif not isinstance(rows, list):
                self.errors[name] = ["Expected a list of rows."]
            else:
                for index, row in enumerate(rows):
                    if not isinstance(row, dict):
                        self.errors.setdefault(name, {})[index] = ["Expected an object."]
        total = sum(len(rows) for rows in self.document.values() if isinstance(rows, list))
        if not self.errors and self.max_rows is not None and total > self.max_rows:
            # Each row is validated and written on its own: bound the request's work.
            self.errors["non_field_errors"] = [
                f"At most {self.max_rows} rows per import; this document has {total}. "
                "Send it in parts: rows upsert by natural key, so a part may refer to rows "
                "of an earlier one."
            ]
        return not self.errors

    def run(self) -> dict:
        if not self.check_shape():
            raise serializers.ValidationError(self.errors)
        self.keys = NaturalKeys(tenant=self.tenant)
        for section in SECTIONS:
            rows = list(enumerate(self.document.get(section, [])))
            if section == "compute":
                # Clusters (and unclustered resources) first, so nodes can name them.
                rows.sort(key=lambda pair: pair[1].get("cluster") not in (None, ""))
            self.import_section(SECTION_RULES[section], rows)
        self.retire()
        if self.errors:
            raise serializers.ValidationError(self.errors)
        return {section: counts.as_dict() for section, counts in self.counts.items()}

    def import_section(self, rules: Section, rows: list[tuple[int, dict]]) -> None:
        seen: dict = {}
        for index, row in rows:
            key = rules.key_of_row(row)
            if key is not None:
                if key in seen:
                    self.error(
                        rules.name,
                        index,
                        {rules.key_field: [f"Row {seen[key]} already has this key."]},
                    )
                    continue
                seen[key] = index
            self.import_row(rules, index, row, key)

    def import_row(self, rules: Section, index: int, row: dict, key) -> None:
        instance = rules.find(self.keys, key)
        if instance is not None and self.create_only:
            self.counts[rules.name].unchanged += 1
            return
        serializer = rules.serializer(
            instance,
            data=row,
            partial=instance is not None,
            context={"tenant": self.tenant, "keys": self.keys},
        )
        if not serializer.is_valid():
            self.error(rules.name, index, serializer.errors)
            return
        data = dict(serializer.validated_data)
        usage = data.pop("dataset_usage", None)
        retire = False
        if rules.name == "ai_systems" and data.get("stage") == Stage.RETIRED:
            # Retire after the deployments section (see the module docstring).
            retire = instance is None or instance.stage != Stage.RETIRED
            if retire:
                data.pop("stage")
        counts = self.counts[rules.name]
        try:
            if instance is None:
                obj = rules.writes.create(tenant=self.tenant, **data)
                changed = True
            else:
                changed = _differs(instance, data)
                obj = (
                    rules.writes.update(tenant=self.tenant, instance=instance, **data)
                    if changed
                    else instance
                )
            if usage is not None:
                changed |= services.ai_system_set_datasets(
                    tenant=self.tenant,
                    ai_system=obj,
                    usage=[(line["dataset"], line.get("usage", DEFAULT_USAGE)) for line in usage],
                    current=self.keys.usage.get(obj.pk, []),
                )
        except DjangoValidationError as error:
            self.error(rules.name, index, _django_errors(error))
            return
        rules.remember(self.keys, obj)
        if retire:
            self.retire_later.append((index, obj))
        if instance is None:
            counts.created += 1
        elif changed or retire:
            counts.updated += 1
        else:
            counts.unchanged += 1

    def retire(self) -> None:
        for index, ai_system in self.retire_later:
            try:
                services.ai_system_transition(
                    tenant=self.tenant, ai_system=ai_system, stage=Stage.RETIRED
                )
            except DjangoValidationError as error:
                self.error("ai_systems", index, _django_errors(error))


def inventory_import(
    *,
    tenant,
    document,
    dry_run: bool = False,
    create_only: bool = False,
    max_rows: int | None = None,
) -> dict:
    """Upsert a whole document into ``tenant``, all or nothing; counts per section.

    Raises DRF's ``ValidationError`` with per-row errors (``{"compute": {3: {"site": [...]}}}``)
    and writes nothing when any row is bad. ``dry_run`` validates everything the same way and
    then rolls back; ``create_only`` leaves rows that already exist as they are (the demo seed
    must not undo what people did with the demo). ``max_rows`` refuses a larger document
    before any row is read. Call inside the tenant's scope.
    """
    importer = InventoryImport(
        tenant=tenant, document=document, create_only=create_only, max_rows=max_rows
    )
    try:
        with transaction.atomic():
            counts = importer.run()
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return counts
