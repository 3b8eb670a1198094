"""The transparency log's tables (SPEC §6): leaves, stored subtree hashes, checkpoints,
witness keys and cosignatures. On PostgreSQL pgtrigger makes the log tables append-only; the
SQLite demo gets the same refusal from plain triggers, as the journal does in 0002.
"""

import django.db.models.deletion
import pgtrigger.compiler
import pgtrigger.migrations
from django.conf import settings
from django.db import migrations, models


SQLITE_APPEND_ONLY_TABLES = ("ledger_logleaf", "ledger_lognode", "ledger_checkpoint",
                             "ledger_cosignature")


def sqlite_install(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for table in SQLITE_APPEND_ONLY_TABLES:
        for op in ("UPDATE", "DELETE"):
            schema_editor.execute(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;"
            )


def sqlite_uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for table in SQLITE_APPEND_ONLY_TABLES:
        for op in ("update", "delete"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0003_alliance_assets'),
        ('merchants', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Cosignature',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('line', models.TextField(help_text='The signature line, as appended to the note.')),
                ('timestamp', models.BigIntegerField(help_text='When the witness cosigned (Unix seconds).')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'verbose_name': 'cosignature',
                'verbose_name_plural': 'cosignatures',
            },
        ),
        migrations.CreateModel(
            name='LogLeaf',
            fields=[
                ('index', models.BigIntegerField(db_column='log_index', primary_key=True, serialize=False, verbose_name='log index')),
                ('leaf_hash', models.BinaryField(max_length=32)),
            ],
            options={
                'verbose_name': 'log leaf',
                'verbose_name_plural': 'log leaves',
            },
        ),
        migrations.CreateModel(
            name='LogNode',
            fields=[
                ('pk', models.CompositePrimaryKey('level', 'position', blank=True, editable=False, primary_key=True, serialize=False)),
                ('level', models.PositiveSmallIntegerField()),
                ('position', models.BigIntegerField()),
                ('hash', models.BinaryField(max_length=32)),
            ],
            options={
                'verbose_name': 'log subtree hash',
                'verbose_name_plural': 'log subtree hashes',
            },
        ),
        migrations.CreateModel(
            name='WitnessKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=128, verbose_name='key name')),
                ('vkey', models.CharField(max_length=255, unique=True, verbose_name='verifier key')),
                ('key_id', models.BigIntegerField()),
                ('status', models.CharField(choices=[('pending', 'Pending approval'), ('approved', 'Approved'), ('revoked', 'Revoked')], default='pending', max_length=10, verbose_name='status')),
                ('decided_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'verbose_name': 'witness key',
                'verbose_name_plural': 'witness keys',
            },
        ),
        migrations.CreateModel(
            name='Checkpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('size', models.BigIntegerField(unique=True, verbose_name='tree size')),
                ('root_hash', models.BinaryField(max_length=32)),
                ('previous_hash', models.BinaryField(blank=True, help_text="SHA-256 of the previous checkpoint's signed note; empty for the first.", max_length=32, null=True)),
                ('note', models.TextField(verbose_name='signed note')),
                ('supply', models.JSONField(default=dict, help_text='Per asset code, in minor units, over the leaves of this tree: issued, burned, expired and circulating.', verbose_name='supply')),
                ('horizon', models.DateTimeField()),
                ('created_at', models.DateTimeField(verbose_name='signed at')),
            ],
            options={
                'verbose_name': 'checkpoint',
                'verbose_name_plural': 'checkpoints',
                'ordering': ['-size'],
                'constraints': [models.CheckConstraint(condition=models.Q(('size__gt', 0)), name='checkpoint_size_positive')],
            },
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='checkpoint',
            trigger=pgtrigger.compiler.Trigger(name='checkpoint_append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;", hash='fd159f05ccc8dec6b2fa07823c939721a760f311', operation='UPDATE OR DELETE', pgid='pgtrigger_checkpoint_append_only_83833', table='ledger_checkpoint', when='BEFORE')),
        ),
        migrations.AddField(
            model_name='cosignature',
            name='checkpoint',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='cosignatures', to='ledger.checkpoint'),
        ),
        migrations.AddField(
            model_name='logleaf',
            name='transaction',
            field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='log_leaf', to='ledger.transaction'),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='lognode',
            trigger=pgtrigger.compiler.Trigger(name='lognode_append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;", hash='915dea362b33b308f1c2d0fe93faaccf1d6860bb', operation='UPDATE OR DELETE', pgid='pgtrigger_lognode_append_only_da36d', table='ledger_lognode', when='BEFORE')),
        ),
        migrations.AddField(
            model_name='witnesskey',
            name='decided_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='witnesskey',
            name='merchant',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='witness_keys', to='merchants.merchant', verbose_name='merchant'),
        ),
        migrations.AddField(
            model_name='witnesskey',
            name='registered_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='witnesskey',
            name='user',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='witness_keys', to=settings.AUTH_USER_MODEL, verbose_name='user'),
        ),
        migrations.AddField(
            model_name='cosignature',
            name='witness',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='cosignatures', to='ledger.witnesskey'),
        ),
        migrations.AddConstraint(
            model_name='logleaf',
            constraint=models.CheckConstraint(condition=models.Q(('index__gte', 0)), name='logleaf_index_natural'),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='logleaf',
            trigger=pgtrigger.compiler.Trigger(name='logleaf_append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;", hash='bb1365aeecc04f5ca0b9ac7b6fcc6de95786668d', operation='UPDATE OR DELETE', pgid='pgtrigger_logleaf_append_only_91b84', table='ledger_logleaf', when='BEFORE')),
        ),
        migrations.AddConstraint(
            model_name='witnesskey',
            constraint=models.UniqueConstraint(fields=('name', 'key_id'), name='witnesskey_name_id_unique'),
        ),
        migrations.AddConstraint(
            model_name='witnesskey',
            constraint=models.CheckConstraint(condition=models.Q(('merchant__isnull', True), ('user__isnull', True), _connector='OR'), name='witnesskey_one_holder'),
        ),
        migrations.AddConstraint(
            model_name='cosignature',
            constraint=models.UniqueConstraint(fields=('checkpoint', 'witness'), name='cosignature_one_per_witness'),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='cosignature',
            trigger=pgtrigger.compiler.Trigger(name='cosignature_append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;", hash='cb8c45b300402768135027582bbef5b92acf9414', operation='UPDATE OR DELETE', pgid='pgtrigger_cosignature_append_only_6ad29', table='ledger_cosignature', when='BEFORE')),
        ),
        migrations.RunPython(sqlite_install, sqlite_uninstall),
    ]
