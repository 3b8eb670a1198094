"""A purchase's reads of the shopper's history from indexes alone, and two indexes fewer to
keep up at every purchase.

``points_purchase_context()`` (0007) sums the shopper's spend at the merchant over the last
year for the tier, and the day's points for the daily cap. Both read
``purchase_merchant_shopper``; now that it carries ``amount`` and ``points`` they are
index-only scans. Before, each of the shopper's purchases in the year was a row fetched from
the table: a regular's purchase read hundreds of rows, and with a profiler on the database
backend that scan was the largest part of a purchase's cost there.

Whether a first-purchase task still applies asked for any purchase of the shopper "at the
task's merchant, or anywhere for an alliance task" in one condition: the planner could only
use the shopper's index and collected all of the shopper's purchases before checking one. The
two cases are now two conditions, each answered by the first row of its own index.

Two indexes go: ``merchant_id`` alone (the unique (merchant, idempotency key) and
``purchase_merchant_shopper`` both lead with it), and ``store_id`` is kept only where a store
is named (``purchase_store``), as most purchases name none.
"""

from importlib import import_module

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

_ONE_CONDITION = """
               AND (k.kind = 'purchase' OR NOT EXISTS (
                     SELECT 1 FROM points_purchase b
                      WHERE b.shopper_id = o_shopper
                        AND (k.merchant_id IS NULL OR b.merchant_id = k.merchant_id))))
"""
_TWO_CONDITIONS = """
               AND (k.kind = 'purchase'
                    OR (k.merchant_id IS NULL AND NOT EXISTS (
                          SELECT 1 FROM points_purchase b WHERE b.shopper_id = o_shopper))
                    OR (k.merchant_id IS NOT NULL AND NOT EXISTS (
                          SELECT 1 FROM points_purchase b
                           WHERE b.merchant_id = k.merchant_id AND b.shopper_id = o_shopper))))
"""


def _context_sql(before: str, after: str) -> str:
    sql = import_module("points.migrations.0007_purchase_post").PG_PURCHASE_CONTEXT
    assert sql.count(before) == 1, "0007's function is not the one this migration changes"
    return sql.replace(before, after)


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(_context_sql(_ONE_CONDITION, _TWO_CONDITIONS))


def restore(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(_context_sql(_ONE_CONDITION, _ONE_CONDITION))


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0010_account_public_id_like_lot_fillfactor"),
        ("merchants", "0006_webhooks"),
        ("points", "0007_purchase_post"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(model_name="purchase", name="purchase_merchant_shopper"),
        migrations.AlterField(
            model_name="purchase",
            name="merchant",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="purchases", to="merchants.merchant"),
        ),
        migrations.AlterField(
            model_name="purchase",
            name="store",
            field=models.ForeignKey(blank=True, db_index=False, null=True,
                                    on_delete=django.db.models.deletion.SET_NULL,
                                    related_name="+", to="merchants.store"),
        ),
        migrations.AddIndex(
            model_name="purchase",
            index=models.Index(fields=["merchant", "shopper", "occurred_at"],
                               include=("amount", "points"), name="purchase_merchant_shopper"),
        ),
        migrations.AddIndex(
            model_name="purchase",
            index=models.Index(condition=models.Q(("store__isnull", False)), fields=["store"],
                               name="purchase_store"),
        ),
        migrations.RunPython(install, restore),
    ]
