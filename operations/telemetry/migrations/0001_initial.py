"""Telemetry tables. ``telemetry_sample`` is made by hand (see ``create_sample_table``): on
PostgreSQL range-partitioned by ``ts`` (daily partitions are made by ``storage``), on SQLite a
plain table; same columns and primary key on both, and no foreign keys (see the model)."""

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models

SAMPLE_TABLE = "telemetry_sample"
# Widest columns first: no alignment padding between them.
SAMPLE_COLUMNS = """
    tenant_id bigint NOT NULL,
    resource_id bigint NOT NULL,
    ts {ts} NOT NULL,
    value double precision NOT NULL,
    resource_kind smallint NOT NULL,
    metric smallint NOT NULL,
    CONSTRAINT telemetry_sample_pkey
        PRIMARY KEY (tenant_id, resource_kind, resource_id, metric, ts)
"""


def create_sample_table(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # The primary key serves the idempotent insert (ON CONFLICT), the series query (one
        # series, a time range) and the hourly rollup (a tenant's rows filtered on ts inside
        # the index); daily partitions keep each index small and old days cheap to drop.
        schema_editor.execute(
            f"CREATE TABLE {SAMPLE_TABLE} ({SAMPLE_COLUMNS.format(ts='timestamptz')}) "
            "PARTITION BY RANGE (ts)"
        )
    else:
        schema_editor.execute(
            f"CREATE TABLE {SAMPLE_TABLE} ({SAMPLE_COLUMNS.format(ts='datetime')})"
        )


def drop_sample_table(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {SAMPLE_TABLE}")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('tenants', '0003_user_manager'),
    ]

    operations = [
        migrations.CreateModel(
            name='TelemetrySample',
            fields=[
                ('pk', models.CompositePrimaryKey('tenant', 'resource_kind', 'resource_id', 'metric', 'ts', blank=True, editable=False, primary_key=True, serialize=False)),
                ('resource_kind', models.SmallIntegerField(choices=[(1, 'compute'), (2, 'deployment')])),
                ('resource_id', models.BigIntegerField()),
                ('metric', models.SmallIntegerField(choices=[(1, 'gpu_utilization'), (2, 'gpu_memory_used_mib'), (3, 'gpu_memory_free_mib'), (4, 'gpu_power_watts'), (5, 'gpu_temperature_celsius'), (6, 'gpu_xid_errors'), (7, 'gpu_graphics_engine_active'), (8, 'gpu_tensor_active'), (20, 'inference_latency_p95_ms'), (21, 'requests_per_second'), (22, 'error_rate'), (30, 'cost_per_hour')])),
                ('ts', models.DateTimeField()),
                ('value', models.FloatField()),
                ('tenant', models.ForeignKey(editable=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'db_table': 'telemetry_sample',
                'managed': False,
            },
        ),
        migrations.RunPython(create_sample_table, drop_sample_table),
        migrations.CreateModel(
            name='TelemetryDirtyHour',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('hour', models.DateTimeField()),
                ('marked_at', models.DateTimeField(auto_now_add=True)),
                ('tenant', models.ForeignKey(editable=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'db_table': 'telemetry_dirty_hour',
            },
        ),
        migrations.CreateModel(
            name='TelemetryPolicy',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('raw_retention_days', models.PositiveIntegerField(default=30, help_text='Raw samples older than this are deleted; samples older cannot be ingested.', validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(400)])),
                ('rollup_retention_days', models.PositiveIntegerField(default=400, help_text='Hourly rollups older than this are deleted.', validators=[django.core.validators.MinValueValidator(30), django.core.validators.MaxValueValidator(3650)])),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('tenant', models.ForeignKey(editable=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'verbose_name': 'telemetry policy',
                'verbose_name_plural': 'telemetry policies',
                'db_table': 'telemetry_policy',
                'constraints': [models.UniqueConstraint(fields=('tenant',), name='telemetry_policy_one_per_tenant')],
            },
        ),
        migrations.CreateModel(
            name='TelemetryRollup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('resource_kind', models.SmallIntegerField(choices=[(1, 'compute'), (2, 'deployment')])),
                ('resource_id', models.BigIntegerField()),
                ('metric', models.SmallIntegerField(choices=[(1, 'gpu_utilization'), (2, 'gpu_memory_used_mib'), (3, 'gpu_memory_free_mib'), (4, 'gpu_power_watts'), (5, 'gpu_temperature_celsius'), (6, 'gpu_xid_errors'), (7, 'gpu_graphics_engine_active'), (8, 'gpu_tensor_active'), (20, 'inference_latency_p95_ms'), (21, 'requests_per_second'), (22, 'error_rate'), (30, 'cost_per_hour')])),
                ('bucket', models.DateTimeField(help_text='Start of the UTC hour.')),
                ('min_value', models.FloatField()),
                ('max_value', models.FloatField()),
                ('avg_value', models.FloatField()),
                ('sample_count', models.PositiveIntegerField()),
                ('computed_at', models.DateTimeField()),
                ('tenant', models.ForeignKey(editable=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'db_table': 'telemetry_rollup',
                'ordering': ['bucket'],
                'indexes': [models.Index(fields=['tenant', 'bucket'], name='telemetry_rollup_tenant_hour')],
                'constraints': [models.UniqueConstraint(fields=('tenant', 'resource_kind', 'resource_id', 'metric', 'bucket'), name='telemetry_rollup_identity')],
            },
        ),
    ]
