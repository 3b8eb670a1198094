"""``points_purchase_context()`` and ``points_purchase_post()``: a purchase's reads in one
call, its writes in one statement, so two round trips in all.

The purchase API's cost per request was mostly the ORM building its statements and the round
trips between them (BEGIN, a savepoint, the posting, the purchase row, COMMIT). On
PostgreSQL, ``points.purchase_engine`` now reads what a purchase needs with one call of
``points_purchase_context()``, computes the split in Python (``points.services``, the same
code as the ORM path), and writes with one call of ``points_purchase_post()``, outside any
surrounding transaction, so that the statement is its own transaction:

1. ``ledger_post()`` posts the legs (the ledger's guards: locks in primary-key order, the
   deposit's floor, idempotency under ``(client, idempotency_key)``); a used key answers
   ``replayed`` or ``conflict`` and nothing else is written;
2. the rule's budget, when it has one, is claimed by one conditional ``UPDATE`` (two tills
   racing for the last of it cannot both spend it; ``PB001`` undoes the posting);
3. the purchase row is inserted;
4. the deposit's balance after the burn and the level last remembered for it are returned,
   so the deposit watch needs no read of its own.

PostgreSQL only: the SQLite demo records purchases through the ORM path.
"""

from django.db import migrations

PG_PURCHASE_CONTEXT = r"""
CREATE OR REPLACE FUNCTION points_purchase_context(
    p_merchant bigint, p_shopper bigint, p_code text, p_key text, p_store bigint,
    p_amount numeric, p_at timestamptz, p_year_ago timestamptz, p_day_start timestamptz,
    p_day_end timestamptz
) RETURNS TABLE (o_shopper bigint, o_existing json, o_store bigint, o_parameters json,
                 o_brand json, o_sv json, o_shared json, o_rule json, o_tier json,
                 o_earned_today bigint, o_accounts json, o_followups boolean)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    v_brand bigint;
    v_sv bigint;
    v_shared bigint;
    v_tiered boolean;
    v_capped boolean;
BEGIN
    -- Each statement is simple, so its plan, cached for the session, is a generic one; one
    -- query of them all made PostgreSQL plan it afresh at every call.
    IF p_shopper IS NOT NULL THEN
        SELECT u.id INTO o_shopper FROM alliance_user u WHERE u.id = p_shopper;
    ELSE
        SELECT u.id INTO o_shopper FROM alliance_user u
         WHERE u.member_code = p_code AND u.is_active;
    END IF;
    IF o_shopper IS NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;
    IF p_store IS NOT NULL THEN
        SELECT st.id INTO o_store FROM merchants_store st
         WHERE st.id = p_store AND st.merchant_id = p_merchant;
    END IF;
    SELECT a.id, json_build_array(a.id, a.code, a.family, a.scale, a.units_per_cny::text,
                                  a.expiry_months, a.transferable, a.issuer_id)
      INTO v_brand, o_brand
      FROM ledger_asset a WHERE a.issuer_id = p_merchant AND a.family = 'brand'
     ORDER BY a.id LIMIT 1;
    SELECT a.id, json_build_array(a.id, a.code, a.family, a.scale, a.units_per_cny::text,
                                  a.expiry_months, a.transferable, a.issuer_id)
      INTO v_sv, o_sv
      FROM ledger_asset a WHERE a.code = 'SV' AND a.issuer_id IS NULL;
    SELECT a.id, json_build_array(a.id, a.code, a.family, a.scale, a.units_per_cny::text,
                                  a.expiry_months, a.transferable, a.issuer_id)
      INTO v_shared, o_shared
      FROM ledger_asset a WHERE a.code = 'SHARED' AND a.issuer_id IS NULL;
    SELECT json_build_array(p.id, p.transaction_id, t.fingerprint, p.points, p.rebate::text,
                            p.sv_shopper, p.sv_merchant, p.shared_burned,
                            p.refunded_amount::text)
      INTO o_existing
      FROM points_purchase p JOIN ledger_transaction t ON t.id = p.transaction_id
     WHERE p.merchant_id = p_merchant AND p.idempotency_key = p_key;
    IF o_existing IS NOT NULL THEN
        RETURN NEXT;  -- a replay needs nothing more
        RETURN;
    END IF;

    SELECT json_object_agg(ap.key, ap.value::text) INTO o_parameters
      FROM alliance_allianceparameter ap;
    SELECT json_build_array(x.id, x.version, x.base_rate::text, x.multipliers, x.daily_cap,
                            x.budget, x.budget_used, x.content_hash),
           x.multipliers ? 'tiers', x.daily_cap IS NOT NULL
      INTO o_rule, v_tiered, v_capped
      FROM points_earningrule x WHERE x.merchant_id = p_merchant AND x.active;
    IF v_tiered THEN
        SELECT json_build_array(mt.id, mt.code) INTO o_tier FROM points_membertier mt
         WHERE mt.merchant_id = p_merchant
           AND mt.threshold <= coalesce((
                SELECT sum(pp.amount) FROM points_purchase pp
                 WHERE pp.merchant_id = p_merchant AND pp.shopper_id = o_shopper
                   AND pp.occurred_at > p_year_ago AND pp.occurred_at <= p_at), 0)
         ORDER BY mt.threshold DESC LIMIT 1;
    END IF;
    IF v_capped THEN
        SELECT coalesce(sum(pp.points), 0) INTO o_earned_today FROM points_purchase pp
         WHERE pp.merchant_id = p_merchant AND pp.shopper_id = o_shopper
           AND pp.occurred_at >= p_day_start AND pp.occurred_at < p_day_end;
    END IF;
    SELECT json_agg(json_build_array(a.asset_id, a.kind, a.holder_key, a.id, a.public_id,
                                     a.bounded, a.tracks_lots))
      INTO o_accounts
      FROM ledger_account a
     WHERE (a.asset_id, a.kind, a.holder_key) IN (
            (v_brand, 'issuance', 'm:' || p_merchant), (v_brand, 'wallet', 'u:' || o_shopper),
            (v_sv, 'issuance', 'alliance'), (v_sv, 'wallet', 'u:' || o_shopper),
            (v_sv, 'wallet', 'm:' || p_merchant), (v_shared, 'deposit', 'm:' || p_merchant),
            (v_shared, 'burn', 'alliance'));
    -- Whether a follow-up could apply (a superset: points.services.purchase_followups
    -- decides): an open purchase task, or a first-purchase task the shopper has not had,
    -- or an endpoint listening for purchase.recorded.
    o_followups := EXISTS (
            SELECT 1 FROM points_task k
             WHERE k.active AND k.kind IN ('purchase', 'first_purchase')
               AND (k.merchant_id = p_merchant OR k.merchant_id IS NULL)
               AND (k.min_amount IS NULL OR k.min_amount <= p_amount)
               AND (k.kind = 'purchase' OR NOT EXISTS (
                     SELECT 1 FROM points_purchase b
                      WHERE b.shopper_id = o_shopper
                        AND (k.merchant_id IS NULL OR b.merchant_id = k.merchant_id))))
        OR EXISTS (
            SELECT 1 FROM merchants_webhookendpoint e
             WHERE e.merchant_id = p_merchant AND e.active
               AND e.events @> '["purchase.recorded"]'::jsonb);
    RETURN NEXT;
END
$fn$;
"""

PG_PURCHASE_POST = r"""
CREATE OR REPLACE FUNCTION points_purchase_post(
    p_merchant bigint, p_shopper bigint, p_store bigint, p_order_ref text, p_key text,
    p_amount numeric, p_lines jsonb, p_occurred_at timestamptz, p_rule bigint,
    p_points bigint, p_budget_points bigint, p_rebate numeric, p_sv_shopper bigint,
    p_sv_merchant bigint, p_burn bigint, p_deposit bigint,
    p_kind text, p_client text, p_fingerprint text, p_metadata jsonb, p_legs jsonb
) RETURNS TABLE (purchase_id bigint, txn_id bigint, txn_created timestamptz, outcome text,
                 deposit_balance bigint, deposit_level text)
LANGUAGE plpgsql AS $fn$
BEGIN
    SELECT l.txn_id, l.txn_created, l.outcome INTO txn_id, txn_created, outcome
      FROM ledger_post(p_kind, p_client, p_key, p_fingerprint, p_metadata, p_occurred_at,
                       p_legs) l;
    IF outcome <> 'posted' THEN
        RETURN NEXT;
        RETURN;
    END IF;

    IF p_budget_points > 0 THEN
        UPDATE points_earningrule SET budget_used = budget_used + p_budget_points
         WHERE id = p_rule AND budget_used <= budget - p_budget_points;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'rule_budget_exhausted' USING ERRCODE = 'PB001';
        END IF;
    END IF;

    INSERT INTO points_purchase
        (merchant_id, shopper_id, store_id, order_ref, idempotency_key, amount, lines,
         occurred_at, transaction_id, rule_id, points, rebate, sv_shopper, sv_merchant,
         shared_burned, refunded_amount, created_at)
    VALUES (p_merchant, p_shopper, p_store, p_order_ref, p_key, p_amount, p_lines,
            p_occurred_at, txn_id, p_rule, p_points, p_rebate, p_sv_shopper, p_sv_merchant,
            p_burn, 0, now())
    RETURNING id INTO purchase_id;

    IF p_burn > 0 THEN
        -- The deposit row is locked by this transaction: its balance is this purchase's.
        SELECT a.balance INTO deposit_balance FROM ledger_account a WHERE a.id = p_deposit;
        SELECT w.level INTO deposit_level FROM merchants_depositwatch w
         WHERE w.merchant_id = p_merchant;
    END IF;
    RETURN NEXT;
END
$fn$;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # Straight to the cursor: a parameterised execute would read '%' as placeholders.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(PG_PURCHASE_CONTEXT)
            cursor.execute(PG_PURCHASE_POST)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("DROP FUNCTION IF EXISTS points_purchase_context(bigint, bigint, "
                           "text, text, bigint, numeric, timestamptz, timestamptz, "
                           "timestamptz, timestamptz)")
            cursor.execute("DROP FUNCTION IF EXISTS points_purchase_post(bigint, bigint, bigint, "
                           "text, text, numeric, jsonb, timestamptz, bigint, bigint, bigint, "
                           "numeric, bigint, bigint, bigint, bigint, text, text, text, jsonb, "
                           "jsonb)")


class Migration(migrations.Migration):

    dependencies = [
        ("points", "0006_airdropshare_airdrop_unconstrained"),
        ("ledger", "0010_account_public_id_like_lot_fillfactor"),
        ("merchants", "0006_webhooks"),
    ]

    operations = [migrations.RunPython(install, remove)]
