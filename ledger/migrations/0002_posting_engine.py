"""The posting engine's database side.

PostgreSQL: ``ledger_post()`` posts a whole transaction in one round trip (locks, idempotency,
balance checks, postings, lots), and a deferred constraint trigger refuses at commit any
transaction whose postings do not balance per asset. SQLite (the demo): triggers that make the
journal append-only; the rest is done by the Python engine in ``ledger.engine``.

Frozen here on purpose: a later change to the engine is a new migration with
``CREATE OR REPLACE``, so the history of what ran in production stays readable.
"""

from django.db import migrations

PG_POST = r"""
CREATE OR REPLACE FUNCTION ledger_post(
    p_kind text, p_client text, p_key text, p_fingerprint text, p_metadata jsonb,
    p_occurred_at timestamptz, p_legs jsonb
) RETURNS TABLE (txn_id bigint, txn_created timestamptz, outcome text)
LANGUAGE plpgsql AS $fn$
DECLARE
    n int;
    l_leg int[];
    l_acc bigint[];
    l_amt bigint[];
    l_exp timestamptz[];
    l_asset bigint[];
    l_bounded boolean[];
    l_lots boolean[];
    l_floor bigint[];
    b_ids bigint[];
    b_floor bigint[];
    b_delta bigint[];
    b_bal bigint[];
    v_txn bigint;
    v_created timestamptz;
    v_fp text;
    v_asset bigint;
    v_lot record;
    v_need bigint;
    v_take bigint;
    v_left bigint;
    q_exp timestamptz[];
    q_amt bigint[];
    q_head int;
BEGIN
    -- The legs with their accounts, read once by primary key (LATERAL ... LIMIT 1 keeps the
    -- planner on the index instead of hashing the whole account table).
    SELECT array_agg(l.leg ORDER BY l.leg), array_agg(l.account ORDER BY l.leg),
           array_agg(l.amount ORDER BY l.leg), array_agg(l.expires_at ORDER BY l.leg),
           array_agg(a.asset_id ORDER BY l.leg), array_agg(a.bounded ORDER BY l.leg),
           array_agg(a.tracks_lots ORDER BY l.leg), array_agg(coalesce(l.floor, 0) ORDER BY l.leg)
      INTO l_leg, l_acc, l_amt, l_exp, l_asset, l_bounded, l_lots, l_floor
      FROM jsonb_to_recordset(p_legs)
           AS l(leg int, account bigint, amount bigint, expires_at timestamptz, floor bigint)
      CROSS JOIN LATERAL (
            SELECT x.asset_id, x.bounded, x.tracks_lots FROM ledger_account x
             WHERE x.id = l.account LIMIT 1) a;
    n := coalesce(array_length(l_leg, 1), 0);
    IF n <> jsonb_array_length(p_legs) THEN
        RAISE EXCEPTION 'unknown_account' USING ERRCODE = 'LB002';
    END IF;

    SELECT array_agg(s.acc ORDER BY s.acc), array_agg(s.delta ORDER BY s.acc),
           array_agg(s.floor ORDER BY s.acc)
      INTO b_ids, b_delta, b_floor
      FROM (SELECT u.acc, sum(u.amt)::bigint AS delta, max(u.flr) AS floor
              FROM unnest(l_acc, l_amt, l_bounded, l_floor) AS u(acc, amt, bnd, flr)
             WHERE u.bnd GROUP BY u.acc) s;

    -- Lock the bounded accounts in primary-key order (no deadlocks), before the journal id is
    -- drawn, so that ids order any two transactions that share an account as they committed.
    IF b_ids IS NOT NULL THEN
        SELECT array_agg(s.balance ORDER BY s.id) INTO b_bal
          FROM (SELECT id, balance FROM ledger_account
                 WHERE id = ANY(b_ids) ORDER BY id FOR NO KEY UPDATE) s;
    END IF;

    -- Idempotency rests on the unique (client, idempotency_key), never on a prior SELECT.
    INSERT INTO ledger_transaction
        (kind, client, idempotency_key, fingerprint, metadata, occurred_at, created_at)
    VALUES (p_kind, p_client, p_key, p_fingerprint, p_metadata, p_occurred_at, now())
    ON CONFLICT (client, idempotency_key) DO NOTHING
    RETURNING id, created_at INTO v_txn, v_created;
    IF v_txn IS NULL THEN
        SELECT t.id, t.created_at, t.fingerprint INTO v_txn, v_created, v_fp
          FROM ledger_transaction t
         WHERE t.client = p_client AND t.idempotency_key = p_key;
        RETURN QUERY SELECT v_txn, v_created,
            CASE WHEN v_fp = p_fingerprint THEN 'replayed' ELSE 'conflict' END;
        RETURN;
    END IF;

    SELECT u.asset INTO v_asset
      FROM unnest(l_asset, l_amt) AS u(asset, amt)
     GROUP BY u.asset HAVING sum(u.amt) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unbalanced' USING ERRCODE = 'LB002', DETAIL = v_asset::text;
    END IF;

    -- Checked under the locks, so the answer still holds at commit. A leg may ask for a
    -- higher floor than zero (a merchant's deposit must keep the alliance's minimum).
    FOR i IN 1 .. coalesce(array_length(b_ids, 1), 0) LOOP
        IF b_delta[i] < 0 AND b_bal[i] + b_delta[i] < b_floor[i] THEN
            RAISE EXCEPTION 'insufficient_balance' USING ERRCODE = 'LB001',
                DETAIL = b_ids[i]::text;
        END IF;
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(b_ids, 1), 0) LOOP
        IF b_delta[i] <> 0 THEN
            UPDATE ledger_account SET balance = balance + b_delta[i] WHERE id = b_ids[i];
        END IF;
    END LOOP;

    INSERT INTO ledger_posting (transaction_id, leg, account_id, asset_id, amount, expires_at)
    SELECT v_txn, u.leg, u.acc, u.asset, u.amt, u.exp
      FROM unnest(l_leg, l_acc, l_asset, l_amt, l_exp) AS u(leg, acc, asset, amt, exp);

    -- Lots, per expiring asset: debits consume soonest-expiring first; what they free is
    -- queued, and credits take from the queue in leg order (so a hold that is voided gets its
    -- original expiries back); what the queue cannot cover opens a lot at the leg's expiry.
    IF true = ANY(l_lots) THEN
        FOR v_asset IN
            SELECT DISTINCT l_asset[i] FROM generate_series(1, n) i WHERE l_lots[i] ORDER BY 1
        LOOP
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
    END IF;

    RETURN QUERY SELECT v_txn, v_created, 'posted'::text;
END
$fn$;
"""

PG_BALANCE_TRIGGER = r"""
CREATE OR REPLACE FUNCTION ledger_posting_check() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    v_assets bigint[];
    v_amounts bigint[];
    v_asset bigint;
BEGIN
    IF NEW.asset_id IS DISTINCT FROM
       (SELECT asset_id FROM ledger_account WHERE id = NEW.account_id) THEN
        RAISE EXCEPTION 'posting %.% names another asset than its account',
            NEW.transaction_id, NEW.leg USING ERRCODE = 'LB002';
    END IF;
    -- A transaction's rows fire one after another at commit: check it once, on its first row.
    IF current_setting('ledger.checked_transaction', true) = NEW.transaction_id::text THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('ledger.checked_transaction', NEW.transaction_id::text, true);
    -- Read the transaction's rows by its index first, then aggregate in memory: a GROUP BY
    -- here invites the planner to walk another index over the whole table.
    SELECT array_agg(asset_id), array_agg(amount) INTO v_assets, v_amounts
      FROM ledger_posting WHERE transaction_id = NEW.transaction_id;
    SELECT u.asset INTO v_asset
      FROM unnest(v_assets, v_amounts) AS u(asset, amount)
     GROUP BY u.asset HAVING sum(u.amount) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'transaction % does not balance for asset %',
            NEW.transaction_id, v_asset USING ERRCODE = 'LB002';
    END IF;
    RETURN NULL;
END
$fn$;
DROP TRIGGER IF EXISTS ledger_posting_balanced ON ledger_posting;
CREATE CONSTRAINT TRIGGER ledger_posting_balanced
    AFTER INSERT ON ledger_posting
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_posting_check();
"""

PG_DROP = """
DROP TRIGGER IF EXISTS ledger_posting_balanced ON ledger_posting;
DROP FUNCTION IF EXISTS ledger_posting_check();
DROP FUNCTION IF EXISTS ledger_post(text, text, text, text, jsonb, timestamptz, jsonb);
"""

SQLITE_APPEND_ONLY = [
    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;"
    for table in ("ledger_transaction", "ledger_posting")
    for op in ("UPDATE", "DELETE")
]


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        # Straight to the cursor: the function bodies contain '%' that a parameterised
        # execute would read as placeholders.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(PG_POST)
            cursor.execute(PG_BALANCE_TRIGGER)
    elif vendor == "sqlite":
        for statement in SQLITE_APPEND_ONLY:
            schema_editor.execute(statement)


def uninstall(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(PG_DROP)
    elif vendor == "sqlite":
        for table in ("ledger_transaction", "ledger_posting"):
            for op in ("update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall)]
