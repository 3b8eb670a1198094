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
    v_txn bigint;
    v_created timestamptz;
    v_fp text;
    v_bad bigint;
    v_asset bigint;
    v_leg record;
    v_lot record;
    v_need bigint;
    v_take bigint;
    v_left bigint;
    q_exp timestamptz[];
    q_amt bigint[];
    q_head int;
BEGIN
    -- Lock the bounded accounts in primary-key order (no deadlocks), before the journal id is
    -- drawn, so that ids order any two transactions that share an account as they committed.
    PERFORM 1 FROM ledger_account
     WHERE id IN (SELECT (e->>'account')::bigint FROM jsonb_array_elements(p_legs) e)
       AND bounded
     ORDER BY id FOR UPDATE;

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

    SELECT a.asset_id INTO v_asset
      FROM jsonb_to_recordset(p_legs) AS l(account bigint, amount bigint)
      JOIN ledger_account a ON a.id = l.account
     GROUP BY a.asset_id HAVING sum(l.amount) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unbalanced' USING ERRCODE = 'LB002', DETAIL = v_asset::text;
    END IF;

    -- Checked under the locks, so the answer still holds at commit.
    SELECT a.id INTO v_bad
      FROM (SELECT l.account, sum(l.amount) AS delta
              FROM jsonb_to_recordset(p_legs) AS l(account bigint, amount bigint)
             GROUP BY l.account) d
      JOIN ledger_account a ON a.id = d.account
     WHERE a.bounded AND a.balance + d.delta < 0
     ORDER BY a.id
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insufficient_balance' USING ERRCODE = 'LB001', DETAIL = v_bad::text;
    END IF;

    UPDATE ledger_account a SET balance = a.balance + d.delta
      FROM (SELECT l.account, sum(l.amount) AS delta
              FROM jsonb_to_recordset(p_legs) AS l(account bigint, amount bigint)
             GROUP BY l.account) d
     WHERE a.id = d.account AND a.bounded AND d.delta <> 0;

    INSERT INTO ledger_posting (transaction_id, leg, account_id, asset_id, amount, expires_at)
    SELECT v_txn, l.leg, l.account, a.asset_id, l.amount, l.expires_at
      FROM jsonb_to_recordset(p_legs)
           AS l(leg smallint, account bigint, amount bigint, expires_at timestamptz)
      JOIN ledger_account a ON a.id = l.account
     ORDER BY l.leg;

    -- Lots, per expiring asset: debits consume soonest-expiring first; what they free is
    -- queued, and credits take from the queue in leg order (so a hold that is voided gets its
    -- original expiries back); what the queue cannot cover opens a lot at the leg's expiry.
    FOR v_asset IN
        SELECT DISTINCT a.asset_id
          FROM jsonb_to_recordset(p_legs) AS l(account bigint)
          JOIN ledger_account a ON a.id = l.account
         WHERE a.tracks_lots
    LOOP
        q_exp := '{}';
        q_amt := '{}';
        q_head := 1;
        FOR v_leg IN
            SELECT l.leg, l.account, l.amount
              FROM jsonb_to_recordset(p_legs) AS l(leg int, account bigint, amount bigint)
              JOIN ledger_account a ON a.id = l.account
             WHERE a.asset_id = v_asset AND l.amount < 0 AND a.tracks_lots
             ORDER BY l.leg
        LOOP
            v_need := -v_leg.amount;
            FOR v_lot IN
                SELECT id, expires_at, remaining FROM ledger_lot
                 WHERE account_id = v_leg.account AND remaining > 0
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
                    DETAIL = v_leg.account::text;
            END IF;
        END LOOP;

        FOR v_leg IN
            SELECT l.leg, l.account, l.amount, l.expires_at, a.tracks_lots
              FROM jsonb_to_recordset(p_legs)
                   AS l(leg int, account bigint, amount bigint, expires_at timestamptz)
              JOIN ledger_account a ON a.id = l.account
             WHERE a.asset_id = v_asset AND l.amount > 0
             ORDER BY l.leg
        LOOP
            v_left := v_leg.amount;
            WHILE v_left > 0 AND q_head <= coalesce(array_length(q_amt, 1), 0) LOOP
                v_take := least(v_left, q_amt[q_head]);
                IF v_leg.tracks_lots THEN
                    INSERT INTO ledger_lot (account_id, expires_at, remaining)
                    VALUES (v_leg.account, q_exp[q_head], v_take)
                    ON CONFLICT (account_id, expires_at)
                    DO UPDATE SET remaining = ledger_lot.remaining + EXCLUDED.remaining;
                END IF;
                v_left := v_left - v_take;
                q_amt[q_head] := q_amt[q_head] - v_take;
                IF q_amt[q_head] = 0 THEN
                    q_head := q_head + 1;
                END IF;
            END LOOP;
            IF v_left > 0 AND v_leg.tracks_lots THEN
                IF v_leg.expires_at IS NULL THEN
                    RAISE EXCEPTION 'lot_expiry_missing' USING ERRCODE = 'LB004',
                        DETAIL = v_leg.account::text;
                END IF;
                INSERT INTO ledger_lot (account_id, expires_at, remaining)
                VALUES (v_leg.account, v_leg.expires_at, v_left)
                ON CONFLICT (account_id, expires_at)
                DO UPDATE SET remaining = ledger_lot.remaining + EXCLUDED.remaining;
            END IF;
        END LOOP;
    END LOOP;

    RETURN QUERY SELECT v_txn, v_created, 'posted'::text;
END
$fn$;
"""

PG_BALANCE_TRIGGER = r"""
CREATE OR REPLACE FUNCTION ledger_posting_check() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    v_asset bigint;
BEGIN
    IF NEW.asset_id IS DISTINCT FROM
       (SELECT asset_id FROM ledger_account WHERE id = NEW.account_id) THEN
        RAISE EXCEPTION 'posting %.% names another asset than its account',
            NEW.transaction_id, NEW.leg USING ERRCODE = 'LB002';
    END IF;
    SELECT asset_id INTO v_asset FROM ledger_posting
     WHERE transaction_id = NEW.transaction_id
     GROUP BY asset_id HAVING sum(amount) <> 0
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
