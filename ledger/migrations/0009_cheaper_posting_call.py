"""The posting engine, cheaper per call: fewer executor set-ups, one commit check statement.

PostgreSQL pays for every statement a function runs (a plan to look up and lock, a tree of
executor nodes to build and tear down, every aggregate's state), whatever the few rows it then
touches; counted with ``valgrind --tool=callgrind`` on a backend posting 200 purchase-shaped
transactions, that set-up was most of ``ledger_post()``'s cost. What the function does is
unchanged (the same guards, locks in the same order, the same rows); how:

* the legs' accounts are read once, grouped per account and in primary-key order, by the very
  query the lock-and-move loop walks: each bounded account is locked, checked and moved by its
  conditional ``UPDATE`` as the loop reaches it (0005 read the legs into eight arrays, each
  its own sorted aggregate, then grouped the bounded ones into three more);
* lots: a transaction that frees no lot (points earned, the common case) merges its credits
  to lot-tracked accounts into their lots with one ``INSERT ... ON CONFLICT``; the queue of
  0005 (debits consume soonest-expiring first, credits take what they freed in leg order) runs
  only when a leg debits a lot-tracked account, in ``ledger_post_lots()``;
* the deferred ``ledger_posting_check()`` checks a transaction with one statement instead of
  four: its existence, its balance per asset and every leg's account and asset, with the same
  errors.

``bench/ledger_post.py`` measures the effect (README, Benchmarks).
"""

from importlib import import_module

from django.db import migrations

PG_POST = r"""
CREATE OR REPLACE FUNCTION ledger_post(
    p_kind text, p_client text, p_key text, p_fingerprint text, p_metadata jsonb,
    p_occurred_at timestamptz, p_legs jsonb
) RETURNS TABLE (txn_id bigint, txn_created timestamptz, outcome text)
LANGUAGE plpgsql AS $fn$
DECLARE
    r record;
    v_txn bigint;
    v_created timestamptz;
    v_fp text;
    v_lot_debit boolean := false;
    v_lot_accounts bigint[] := '{}';
BEGIN
    -- A key already used: the original transaction (a replay) or a conflict, and no lock taken.
    SELECT t.id, t.created_at, t.fingerprint INTO v_txn, v_created, v_fp
      FROM ledger_transaction t
     WHERE t.client = p_client AND t.idempotency_key = p_key;
    IF FOUND THEN
        txn_id := v_txn;
        txn_created := v_created;
        outcome := CASE WHEN v_fp = p_fingerprint THEN 'replayed' ELSE 'conflict' END;
        RETURN NEXT;
        RETURN;
    END IF;

    -- The legs' accounts, each once, in primary-key order, read by that key (LATERAL ...
    -- LIMIT 1 keeps the planner on the index whatever the statistics say). Each bounded one
    -- is locked and moved as it comes, by one conditional UPDATE: its condition, evaluated on
    -- the locked row, is the balance check (a leg may ask for a higher floor than zero: a
    -- merchant's deposit keeps the alliance's minimum). Primary-key order means no deadlock;
    -- all of it before the journal id is drawn, so ids order any two transactions that share
    -- an account as they committed. Three aggregates, not one per fact: each costs more to
    -- set up than the few legs cost to add. ``lots``: 1 a debit of a lot-tracked account, 2 a
    -- credit to one, 4 such a credit without an expiry.
    FOR r IN
        SELECT l.account, a.asset_id AS asset, a.bounded, sum(l.amount)::bigint AS delta,
               max(coalesce(l.floor, 0)) AS floor,
               bit_or(CASE WHEN NOT a.tracks_lots THEN 0 WHEN l.amount < 0 THEN 1
                           WHEN l.expires_at IS NULL THEN 6 ELSE 2 END) AS lots
          FROM jsonb_to_recordset(p_legs)
               AS l(account bigint, amount bigint, expires_at timestamptz, floor bigint)
          LEFT JOIN LATERAL (
                SELECT x.asset_id, x.bounded, x.tracks_lots FROM ledger_account x
                 WHERE x.id = l.account LIMIT 1) a ON true
         GROUP BY l.account, a.asset_id, a.bounded
         ORDER BY l.account
    LOOP
        IF r.asset IS NULL THEN
            RAISE EXCEPTION 'unknown_account' USING ERRCODE = 'LB002';
        END IF;
        IF r.bounded THEN
            UPDATE ledger_account SET balance = balance + r.delta
             WHERE id = r.account AND (r.delta >= 0 OR balance + r.delta >= r.floor);
            IF NOT FOUND THEN
                RAISE EXCEPTION 'insufficient_balance' USING ERRCODE = 'LB001',
                    DETAIL = r.account::text;
            END IF;
        END IF;
        IF (r.lots & 5) <> 0 THEN
            v_lot_debit := true;
        ELSIF r.lots <> 0 THEN
            v_lot_accounts := v_lot_accounts || r.account;
        END IF;
    END LOOP;

    -- Idempotency rests on the unique (client, idempotency_key), never on the SELECT above
    -- alone: a request that raced another with its key past that SELECT gives up here, with
    -- everything it did, and the caller asks again (the answer is then a replay).
    INSERT INTO ledger_transaction
        (kind, client, idempotency_key, fingerprint, metadata, occurred_at, created_at)
    VALUES (p_kind, p_client, p_key, p_fingerprint, p_metadata, p_occurred_at, now())
    ON CONFLICT (client, idempotency_key) DO NOTHING
    RETURNING id, created_at INTO v_txn, v_created;
    IF v_txn IS NULL THEN
        RAISE EXCEPTION 'idempotency_race' USING ERRCODE = 'LB005';
    END IF;

    INSERT INTO ledger_posting (transaction_id, leg, account_id, asset_id, amount, expires_at)
    SELECT v_txn, l.leg, l.account, a.asset_id, l.amount, l.expires_at
      FROM jsonb_to_recordset(p_legs)
           AS l(leg int, account bigint, amount bigint, expires_at timestamptz)
     CROSS JOIN LATERAL (SELECT x.asset_id FROM ledger_account x
                          WHERE x.id = l.account LIMIT 1) a;

    IF v_lot_debit THEN
        -- Lots move between accounts (a spend, a hold, a void): the whole algorithm.
        PERFORM ledger_post_lots(p_legs);
    ELSIF cardinality(v_lot_accounts) > 0 THEN
        -- Nothing frees a lot (the common case: points earned): each credit to a lot-tracked
        -- account joins the lot of its expiry.
        INSERT INTO ledger_lot (account_id, expires_at, remaining)
        SELECT l.account, l.expires_at, sum(l.amount)
          FROM jsonb_to_recordset(p_legs)
               AS l(account bigint, amount bigint, expires_at timestamptz)
         WHERE l.amount > 0 AND l.account = ANY (v_lot_accounts)
         GROUP BY l.account, l.expires_at
        ON CONFLICT (account_id, expires_at)
        DO UPDATE SET remaining = ledger_lot.remaining + EXCLUDED.remaining;
    END IF;

    txn_id := v_txn;
    txn_created := v_created;
    outcome := 'posted';
    RETURN NEXT;
END
$fn$;

CREATE OR REPLACE FUNCTION ledger_post_lots(p_legs jsonb) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    n int;
    l_acc bigint[];
    l_amt bigint[];
    l_exp timestamptz[];
    l_asset bigint[];
    l_lots boolean[];
    lot_assets bigint[] := '{}';
    v_asset bigint;
    v_lot record;
    v_need bigint;
    v_take bigint;
    v_left bigint;
    q_exp timestamptz[];
    q_amt bigint[];
    q_head int;
BEGIN
    -- Called by ledger_post() under the locks of the transaction's accounts, after its
    -- postings. Per expiring asset: debits consume soonest-expiring first; what they free is
    -- queued, and credits take from the queue in leg order (so a hold that is voided gets its
    -- original expiries back); what the queue cannot cover opens a lot at the leg's expiry.
    SELECT array_agg(l.account ORDER BY l.leg), array_agg(l.amount ORDER BY l.leg),
           array_agg(l.expires_at ORDER BY l.leg), array_agg(a.asset_id ORDER BY l.leg),
           array_agg(a.tracks_lots ORDER BY l.leg)
      INTO l_acc, l_amt, l_exp, l_asset, l_lots
      FROM jsonb_to_recordset(p_legs)
           AS l(leg int, account bigint, amount bigint, expires_at timestamptz)
      CROSS JOIN LATERAL (
            SELECT x.asset_id, x.tracks_lots FROM ledger_account x
             WHERE x.id = l.account LIMIT 1) a;
    n := coalesce(array_length(l_acc, 1), 0);
    FOR i IN 1 .. n LOOP
        IF l_lots[i] AND NOT l_asset[i] = ANY(lot_assets) THEN
            lot_assets := lot_assets || l_asset[i];
        END IF;
    END LOOP;
    FOREACH v_asset IN ARRAY lot_assets LOOP
        q_exp := '{}';
        q_amt := '{}';
        q_head := 1;
        FOR i IN 1 .. n LOOP
            CONTINUE WHEN l_asset[i] <> v_asset OR l_amt[i] >= 0 OR NOT l_lots[i];
            v_need := -l_amt[i];
            FOR v_lot IN
                SELECT id, expires_at, remaining FROM ledger_lot
                 WHERE account_id = l_acc[i] AND remaining > 0
                 ORDER BY expires_at, id
            LOOP
                v_take := least(v_lot.remaining, v_need);
                UPDATE ledger_lot SET remaining = remaining - v_take WHERE id = v_lot.id;
                q_exp := q_exp || v_lot.expires_at;
                q_amt := q_amt || v_take;
                v_need := v_need - v_take;
                EXIT WHEN v_need = 0;
            END LOOP;
            IF v_need > 0 THEN
                RAISE EXCEPTION 'lots_short' USING ERRCODE = 'LB003',
                    DETAIL = l_acc[i]::text;
            END IF;
        END LOOP;

        FOR i IN 1 .. n LOOP
            CONTINUE WHEN l_asset[i] <> v_asset OR l_amt[i] <= 0;
            v_left := l_amt[i];
            WHILE v_left > 0 AND q_head <= coalesce(array_length(q_amt, 1), 0) LOOP
                v_take := least(v_left, q_amt[q_head]);
                IF l_lots[i] THEN
                    INSERT INTO ledger_lot (account_id, expires_at, remaining)
                    VALUES (l_acc[i], q_exp[q_head], v_take)
                    ON CONFLICT (account_id, expires_at)
                    DO UPDATE SET remaining = ledger_lot.remaining + EXCLUDED.remaining;
                END IF;
                v_left := v_left - v_take;
                q_amt[q_head] := q_amt[q_head] - v_take;
                IF q_amt[q_head] = 0 THEN
                    q_head := q_head + 1;
                END IF;
            END LOOP;
            IF v_left > 0 AND l_lots[i] THEN
                IF l_exp[i] IS NULL THEN
                    RAISE EXCEPTION 'lot_expiry_missing' USING ERRCODE = 'LB004',
                        DETAIL = l_acc[i]::text;
                END IF;
                INSERT INTO ledger_lot (account_id, expires_at, remaining)
                VALUES (l_acc[i], l_exp[i], v_left)
                ON CONFLICT (account_id, expires_at)
                DO UPDATE SET remaining = ledger_lot.remaining + EXCLUDED.remaining;
            END IF;
        END LOOP;
    END LOOP;
END
$fn$;
"""

PG_CHECK = r"""
CREATE OR REPLACE FUNCTION ledger_posting_check() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    v_txn_found boolean;
    v_asset bigint;
    v_missing int;
    v_other int;
BEGIN
    -- Queued for leg 0 only (see the trigger's WHEN), so once per transaction, at commit.
    -- One statement: the transaction's legs by its index, each with its account by primary
    -- key (LATERAL ... LIMIT 1 keeps the planner on that index whatever the statistics say).
    SELECT EXISTS (SELECT 1 FROM ledger_transaction t WHERE t.id = NEW.transaction_id),
           min(g.asset) FILTER (WHERE g.total <> 0), min(g.missing), min(g.other)
      INTO v_txn_found, v_asset, v_missing, v_other
      FROM (SELECT p.asset_id AS asset, sum(p.amount) AS total,
                   min(p.leg) FILTER (WHERE a.asset_id IS NULL) AS missing,
                   min(p.leg) FILTER (WHERE a.asset_id <> p.asset_id) AS other
              FROM ledger_posting p
              LEFT JOIN LATERAL (SELECT x.asset_id FROM ledger_account x
                                  WHERE x.id = p.account_id LIMIT 1) a ON true
             WHERE p.transaction_id = NEW.transaction_id
             GROUP BY p.asset_id) g;
    IF NOT v_txn_found THEN
        RAISE EXCEPTION 'postings of transaction % name no transaction', NEW.transaction_id
            USING ERRCODE = 'LB002';
    END IF;
    IF v_asset IS NOT NULL THEN
        RAISE EXCEPTION 'transaction % does not balance for asset %',
            NEW.transaction_id, v_asset USING ERRCODE = 'LB002';
    END IF;
    IF v_missing < v_other OR (v_missing IS NOT NULL AND v_other IS NULL) THEN
        RAISE EXCEPTION 'posting %.% names no account', NEW.transaction_id, v_missing
            USING ERRCODE = 'LB002';
    ELSIF v_other IS NOT NULL THEN
        RAISE EXCEPTION 'posting %.% names another asset than its account',
            NEW.transaction_id, v_other USING ERRCODE = 'LB002';
    END IF;
    RETURN NULL;
END
$fn$;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # Straight to the cursor: the function bodies contain '%' that a parameterised execute
        # would read as placeholders.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(PG_POST)
            cursor.execute(PG_CHECK)


def restore(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        leaner = import_module("ledger.migrations.0005_leaner_posting")
        slimmer = import_module("ledger.migrations.0007_slimmer_journal")
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(leaner.PG_POST)
            cursor.execute("DROP FUNCTION IF EXISTS ledger_post_lots(jsonb)")
            cursor.execute(slimmer.PG_CHECK)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0008_journal_kind_unindexed")]

    operations = [migrations.RunPython(install, restore)]
