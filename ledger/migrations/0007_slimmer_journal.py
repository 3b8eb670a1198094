"""A slimmer journal: one commit-time check per transaction, fewer indexes, HOT balances.

* ``ledger_posting_balanced`` (deferred) is queued for a transaction's leg 0 only, and
  checks the whole transaction at commit: it exists, its legs balance per asset, each names
  an existing account of the leg's asset. That replaces a queued check per leg and the three
  per-leg foreign-key checks (the posting's foreign keys keep no database constraint). The
  new statement trigger ``ledger_posting_whole`` refuses postings that arrive without their
  transaction's leg 0 in the same statement; as ``(transaction, leg)`` is unique, no leg can
  be added to a transaction later, so every leg is under that one check.
* Single-column indexes that a composite index already leads are dropped (posting's
  transaction and account, account's asset and user, lot's account).
* ``ledger_account`` gets ``fillfactor = 50``: every holder's balance moves every day (the
  airdrop), and a page needs room for each of its rows' next version to update them without
  touching any index (a HOT update). It applies to pages written from now on.

``bench/jobs.py`` and ``bench/ledger_post.py`` measure the effect (README, Benchmarks).
"""

from importlib import import_module

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

PG_CHECK = r"""
CREATE OR REPLACE FUNCTION ledger_posting_check() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    v_accounts bigint[];
    v_assets bigint[];
    v_amounts bigint[];
    v_asset bigint;
    v_found bigint;
    v_leg int;
BEGIN
    -- Queued for leg 0 only (see the trigger's WHEN), so once per transaction, at commit.
    PERFORM 1 FROM ledger_transaction WHERE id = NEW.transaction_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'postings of transaction % name no transaction', NEW.transaction_id
            USING ERRCODE = 'LB002';
    END IF;
    -- Read the transaction's rows by its index first, then check them in memory: a GROUP BY
    -- or a join here invites the planner to walk another index over the whole table.
    SELECT array_agg(account_id ORDER BY leg), array_agg(asset_id ORDER BY leg),
           array_agg(amount ORDER BY leg)
      INTO v_accounts, v_assets, v_amounts
      FROM ledger_posting WHERE transaction_id = NEW.transaction_id;
    SELECT u.asset INTO v_asset
      FROM unnest(v_assets, v_amounts) AS u(asset, amount)
     GROUP BY u.asset HAVING sum(u.amount) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'transaction % does not balance for asset %',
            NEW.transaction_id, v_asset USING ERRCODE = 'LB002';
    END IF;
    SELECT u.ord - 1, a.asset_id INTO v_leg, v_found
      FROM unnest(v_accounts, v_assets) WITH ORDINALITY AS u(account, asset, ord)
      LEFT JOIN LATERAL (SELECT x.asset_id FROM ledger_account x
                          WHERE x.id = u.account LIMIT 1) a ON true
     WHERE a.asset_id IS DISTINCT FROM u.asset
     LIMIT 1;
    IF FOUND AND v_found IS NULL THEN
        RAISE EXCEPTION 'posting %.% names no account', NEW.transaction_id, v_leg
            USING ERRCODE = 'LB002';
    ELSIF FOUND THEN
        RAISE EXCEPTION 'posting %.% names another asset than its account',
            NEW.transaction_id, v_leg USING ERRCODE = 'LB002';
    END IF;
    RETURN NULL;
END
$fn$;
DROP TRIGGER IF EXISTS ledger_posting_balanced ON ledger_posting;
CREATE CONSTRAINT TRIGGER ledger_posting_balanced
    AFTER INSERT ON ledger_posting
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.leg = 0) EXECUTE FUNCTION ledger_posting_check();

CREATE OR REPLACE FUNCTION ledger_posting_whole() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    v_txn bigint;
BEGIN
    SELECT a.transaction_id INTO v_txn FROM added a
     GROUP BY a.transaction_id HAVING NOT bool_or(a.leg = 0)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'postings of transaction % come without its leg 0: a transaction''s '
            'legs are inserted together, once', v_txn USING ERRCODE = 'LB002';
    END IF;
    RETURN NULL;
END
$fn$;
DROP TRIGGER IF EXISTS ledger_posting_whole ON ledger_posting;
CREATE TRIGGER ledger_posting_whole
    AFTER INSERT ON ledger_posting REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_posting_whole();

ALTER TABLE ledger_account SET (fillfactor = 50);
"""

PG_UNDO = """
DROP TRIGGER IF EXISTS ledger_posting_whole ON ledger_posting;
DROP FUNCTION IF EXISTS ledger_posting_whole();
ALTER TABLE ledger_account RESET (fillfactor);
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # Straight to the cursor: the function bodies contain '%' that a parameterised execute
        # would read as placeholders.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(PG_CHECK)
    elif schema_editor.connection.vendor == "sqlite":
        # SQLite altered ledger_posting by rebuilding it, which drops its triggers: the demo's
        # append-only journal gets them back.
        for statement in import_module("ledger.migrations.0002_posting_engine").SQLITE_APPEND_ONLY:
            schema_editor.execute(statement)


def restore(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        first = import_module("ledger.migrations.0002_posting_engine")
        leaner = import_module("ledger.migrations.0005_leaner_posting")
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(PG_UNDO)
            cursor.execute(first.PG_BALANCE_TRIGGER)
            cursor.execute(leaner.PG_BALANCE_CHECK)


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0006_account_kind_claims'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='account',
            name='asset',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='accounts', to='ledger.asset'),
        ),
        migrations.AlterField(
            model_name='account',
            name='user',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='ledger_accounts', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='lot',
            name='account',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='lots', to='ledger.account'),
        ),
        migrations.AlterField(
            model_name='posting',
            name='account',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='postings', to='ledger.account'),
        ),
        migrations.AlterField(
            model_name='posting',
            name='asset',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='postings', to='ledger.asset'),
        ),
        migrations.AlterField(
            model_name='posting',
            name='transaction',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='postings', to='ledger.transaction'),
        ),
        migrations.RunPython(install, restore),
    ]
