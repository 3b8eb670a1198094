"""Point expiry (SPEC §4.6) and the reminders that come before it.

Expiry (``points_expire_for_date``): every wallet lot whose ``expires_at`` is at or before
the start of the run's day (alliance time zone) moves to its issuer's expired (breakage)
account. Wallets are taken in account-id order, ``CHUNK_ACCOUNTS`` per ledger transaction
(``expiry:<date>:<n>``); each chunk locks its wallets first, then reads their expired
remainders, so a spend racing the job can never be counted twice: the debit consumes lots
soonest-expiring first, which are exactly the expired ones. Once the remainders are gone
from the lots and the balance, no later spend can use them. Hold accounts and pending import
claims are left alone: a voided hold brings its lots back to the wallet, where the next run
expires them, and unclaimed imports expire through ``merchants.imports``.

Reminders (``expiry_reminders_send``): N days before the expiry run that will take them
(``settings.POINTS_EXPIRY_REMINDER_DAYS``), each shopper holding such points gets one
storefront notice per asset and date (``Notification``, unique per user and key) and, if
they have an email address, a mail.

On PostgreSQL both are set-based SQL; the SQLite demo loops in Python with the same result.
"""

import re
from datetime import date, timedelta

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import connection
from django.db import transaction as db_transaction
from django.db.models import Count, Sum
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from alliance.errors import DomainError
from ledger import bulk
from ledger import services as ledger
from ledger.models import Account, Asset, Lot
from merchants.webhooks import webhook_points_expiring

from .jobs import day_start, job_run, progress_step, progress_total, set_based
from .models import JobRun, Notification

CHUNK_ACCOUNTS = 16_000
KIND = "expiry"
EMAIL_BATCH = 500


class ExpiryInFuture(DomainError):
    code = "expiry_in_future"
    default_message = _("Points cannot be expired for a day that has not begun.")


def points_expire_for_date(*, day: date, chunk_accounts: int = CHUNK_ACCOUNTS,
                           batch_accounts: int | None = None) -> JobRun:
    """Expire every wallet lot due at the start of ``day``, once per day.

    ``chunk_accounts`` wallets make one ledger transaction; about ``batch_accounts``
    (default ``settings.POINTS_JOBS_BATCH``, at least one chunk) commit together.

    Guards: only remainders move (a partly spent lot gives up what is left of it); balances,
    lots and postings change together; one run per date (``JobRun`` and chunk keys)."""
    cutoff = day_start(day)
    if cutoff > timezone.now():
        raise ExpiryInFuture(details={"date": day.isoformat()})
    if not 1 <= chunk_accounts <= bulk.MAX_LEGS // 2:
        raise ValueError("chunk_accounts out of range")
    batch_accounts = max(batch_accounts or settings.POINTS_JOBS_BATCH, chunk_accounts)
    return job_run(job=JobRun.Job.EXPIRY, period=day.isoformat(),
                   work=lambda run: _expire(run, day, chunk_accounts, batch_accounts))


def _expiring_assets() -> list[Asset]:
    return list(Asset.objects.filter(expiry_months__isnull=False).order_by("pk"))


def _expire(run: JobRun, day: date, chunk_accounts: int, batch_accounts: int) -> dict:
    cutoff = day_start(day)
    assets = _expiring_assets()
    sinks = {asset.pk: ledger.sink_account(asset, Account.Kind.EXPIRED).pk for asset in assets}
    due = (Lot.objects.filter(expires_at__lte=cutoff, remaining__gt=0,
                              account__kind=Account.Kind.WALLET)
           .values("account_id").distinct().count())
    progress_total(run, run.progress_done + due)
    after = 0
    post = _post_batch_sql if set_based() else _post_batch_python
    # The Python path (the demo) posts a chunk per database transaction.
    batch = batch_accounts if set_based() else chunk_accounts
    while True:
        with db_transaction.atomic(durable=True):
            ids = _next_wallets(after, cutoff, batch)
            if not ids:
                break
            chunks = [ids[i:i + chunk_accounts] for i in range(0, len(ids), chunk_accounts)]
            first = run.counts.get("transactions", 0)
            keys = [f"expiry:{day.isoformat()}:{first + n}" for n in range(len(chunks))]
            accounts, lots, amounts, transactions = post(chunks, cutoff, sinks, keys, day)
            progress_step(run, len(ids), transactions=transactions, accounts=accounts,
                          lots=lots, **{f"expired:{code}": amount for code, amount in amounts})
            after = ids[-1]
    run.refresh_from_db()
    return run.counts


def _next_wallets(after: int, cutoff, limit: int) -> list[int]:
    """Ids of the next wallets (by id) holding lots due at ``cutoff``; read again under the
    locks before anything moves. Walks the lots' (account, expiry) index in account order,
    so the whole run reads each lot once, however many chunks it takes."""
    if not set_based():
        return list(
            Lot.objects.filter(account_id__gt=after, expires_at__lte=cutoff, remaining__gt=0,
                               account__kind=Account.Kind.WALLET)
            .order_by("account_id").values_list("account_id", flat=True).distinct()[:limit]
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.account_id FROM ledger_lot l "
            "CROSS JOIN LATERAL (SELECT 1 FROM ledger_account a WHERE a.id = l.account_id "
            "                    AND a.kind = 'wallet' LIMIT 1) wallet "
            "WHERE l.account_id > %s AND l.expires_at <= %s AND l.remaining > 0 "
            "GROUP BY l.account_id ORDER BY l.account_id LIMIT %s",
            [after, cutoff, limit],
        )
        return [row[0] for row in cursor.fetchall()]


# Under the batch's locks: each wallet's expired remainder, and per chunk one credit per
# asset to its issuer's expired account. ``ids`` are the batch's wallets, ``size`` per chunk.
_BATCH_LEGS = """
WITH due AS MATERIALIZED (
    SELECT ((w.n - 1) / %(size)s)::int AS txn, l.account_id, k.asset_id,
           sum(l.remaining) AS amount
      FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS w(id, n)
      JOIN ledger_bulk_locked k ON k.id = w.id
      JOIN ledger_lot l ON l.account_id = w.id
     WHERE l.expires_at <= %(cutoff)s AND l.remaining > 0
     GROUP BY 1, l.account_id, k.asset_id
)
SELECT d.txn, -s.sink_id AS ord, s.sink_id AS account_id, sum(d.amount) AS amount,
       NULL::timestamptz AS expires_at
  FROM due d JOIN unnest(%(assets)s::bigint[], %(sinks)s::bigint[]) AS s(asset_id, sink_id)
       ON s.asset_id = d.asset_id
 GROUP BY d.txn, s.sink_id
UNION ALL
SELECT d.txn, d.account_id, d.account_id, -d.amount, NULL FROM due d
"""


def _post_batch_sql(chunks: list[list[int]], cutoff, sinks: dict[int, int], keys: list[str],
                    day: date) -> tuple[int, int, list[tuple[str, int]], int]:
    """Post one transaction per chunk of wallets; returns (wallets debited, lots emptied,
    [(asset code, amount expired)], transactions posted)."""
    ids = [account for chunk in chunks for account in chunk]
    params = {"ids": ids, "cutoff": cutoff, "size": len(chunks[0]), "assets": list(sinks),
              "sinks": list(sinks.values())}
    counted = []

    def count_lots(cursor) -> None:
        # Under the batch's locks (taken once, by bulk_post_many), so a spend racing the job
        # cannot change what is counted.
        cursor.execute(
            "SELECT count(*) FROM ledger_lot WHERE account_id = ANY(%s::bigint[]) "
            "AND expires_at <= %s AND remaining > 0", [ids, cutoff])
        counted.append(cursor.fetchone()[0])

    with connection.cursor() as cursor:
        results = bulk.bulk_post_many(
            kind=KIND, client=ledger.SYSTEM_CLIENT,
            transactions=[bulk.BulkTransaction(key, _metadata(day, chunk))
                          for key, chunk in zip(keys, chunks, strict=True)],
            lock_sql="SELECT unnest(%(ids)s::bigint[])", lock_params={"ids": ids},
            legs_sql=_BATCH_LEGS, params=params, under_locks=count_lots,
        )
        lots = counted[0] if counted else 0
        posted = [r.transaction_id for r in results if r is not None and not r.replayed]
        if not posted:
            return 0, 0, [], 0
        cursor.execute(
            "SELECT s.code, -sum(p.amount), count(*) FROM ledger_posting p "
            "JOIN ledger_asset s ON s.id = p.asset_id "
            "WHERE p.transaction_id = ANY(%s) AND p.amount < 0 GROUP BY s.code ORDER BY s.code",
            [posted],
        )
        rows = cursor.fetchall()
    return (sum(r[2] for r in rows), lots, [(code, int(amount)) for code, amount, _n in rows],
            len(posted))


def _post_batch_python(chunks: list[list[int]], cutoff, sinks: dict[int, int],
                       keys: list[str], day: date
                       ) -> tuple[int, int, list[tuple[str, int]], int]:
    accounts, lots, totals, transactions = 0, 0, {}, 0
    for chunk, key in zip(chunks, keys, strict=True):
        debited, emptied, amounts = _post_chunk_python(chunk, cutoff, sinks, key, day)
        accounts, lots, transactions = accounts + debited, lots + emptied, transactions + 1
        for code, amount in amounts:
            totals[code] = totals.get(code, 0) + amount
    return accounts, lots, sorted(totals.items()), transactions if accounts else 0


def _metadata(day: date, ids: list[int]) -> dict:
    return {"expiry": day.isoformat(), "cutoff": day_start(day).isoformat(),
            "first_account": ids[0], "last_account": ids[-1]}


def _post_chunk_python(ids: list[int], cutoff, sinks: dict[int, int], key: str, day: date
                       ) -> tuple[int, int, list[tuple[str, int]]]:
    due: dict[int, int] = {}
    lots = 0
    for account_id, remaining in (Lot.objects.filter(account_id__in=ids, expires_at__lte=cutoff,
                                                     remaining__gt=0)
                                  .values_list("account_id", "remaining")):
        due[account_id] = due.get(account_id, 0) + remaining
        lots += 1
    if not due:
        return 0, 0, []
    accounts = ledger.accounts_by_id(list(due) + list(sinks.values()))
    legs, totals = [], {}
    for account_id in sorted(due):
        account = accounts[account_id]
        legs.append(ledger.Leg(account, -due[account_id]))
        totals[account.asset_id] = totals.get(account.asset_id, 0) + due[account_id]
    legs = [ledger.Leg(accounts[sinks[asset_id]], amount)
            for asset_id, amount in sorted(totals.items())] + legs
    posted = ledger.transaction_post(kind=KIND, legs=legs, client=ledger.SYSTEM_CLIENT,
                                     idempotency_key=key, metadata=_metadata(day, ids))
    if posted.replayed:
        return 0, 0, []
    codes = {asset.pk: asset.code for asset in _expiring_assets()}
    return len(due), lots, sorted((codes[a], amount) for a, amount in totals.items())


# --- reminders ----------------------------------------------------------------------------------


def reminder_days() -> int:
    return int(getattr(settings, "POINTS_EXPIRY_REMINDER_DAYS", 7))


def expiry_reminders_send(*, day: date) -> JobRun:
    """Tell each shopper, once, about wallet points the expiry run of ``day + N`` will take
    (N = ``reminder_days()``): a storefront notice, and a mail where there is an address."""
    return job_run(job=JobRun.Job.EXPIRY_REMINDER, period=day.isoformat(),
                   work=lambda run: _remind(run, day))


def _remind(run: JobRun, day: date) -> dict:
    expiry_day = day + timedelta(days=reminder_days())
    low, high = day_start(expiry_day - timedelta(days=1)), day_start(expiry_day)
    # The last day the points can be used: the day before the expiry run that takes them.
    last_day = expiry_day - timedelta(days=1)
    with translation.override(settings.LANGUAGE_CODE):
        with db_transaction.atomic(durable=True):
            if set_based():
                created = _notices_create_sql(low, high, last_day)
            else:
                created = _notices_create_python(low, high, last_day)
            pending = _unmailed(last_day)
            # The merchants' systems are told in the same transaction as the notices, so a
            # resumed run (which finds the count recorded) does not tell them twice.
            announced = run.counts.get("webhooks")
            if announced is None:
                announced = _webhooks_emit(low, high, last_day)
            progress_total(run, run.progress_done + pending.count(), notices=created,
                           webhooks=announced)
        sent = _mail(run, last_day)
    run.refresh_from_db()
    return {"emails": sent, **run.counts}


def _notice_key(code: str, last_day: date) -> str:
    return f"expiring:{code}:{last_day.isoformat()}"


def _notice_template() -> str:
    return gettext("%(amount)s %(asset)s expire after %(date)s. Spend them before then.")


def _asset_name_column() -> str:
    return "name_zh" if (translation.get_language() or "").startswith("zh") else "name_en"


def _sql_text(template: str, expressions: dict[str, str]) -> tuple[str, list[str]]:
    """A translated ``%(name)s`` template as a SQL ``concat(...)`` of its literal pieces (as
    parameters) and the named SQL expressions, so every row's text is built in the query."""
    pieces, params = [], []
    for index, piece in enumerate(re.split(r"%\((\w+)\)s", template)):
        if index % 2:
            pieces.append(expressions[piece])
        elif piece:
            pieces.append("%s")
            params.append(piece.replace("%%", "%"))
    return "concat(" + ", ".join(pieces) + ")", params


def _notices_create_sql(low, high, last_day: date) -> int:
    template = _notice_template().replace("%(date)s", last_day.isoformat())
    text, text_params = _sql_text(template, {
        "amount": "round(sum(l.remaining)::numeric / power(10::numeric, s.scale), s.scale)::text",
        "asset": f"s.{_asset_name_column()}",
    })
    sql = (
        "INSERT INTO points_notification (user_id, kind, key, text, created_at) "  # noqa: S608
        f"SELECT a.user_id, %s, concat('expiring:', s.code, ':', %s::text), {text}, now() "
        "  FROM ledger_lot l JOIN ledger_account a ON a.id = l.account_id "
        "  JOIN ledger_asset s ON s.id = a.asset_id "
        " WHERE a.kind = 'wallet' AND a.user_id IS NOT NULL AND l.remaining > 0 "
        "   AND l.expires_at > %s AND l.expires_at <= %s "
        f" GROUP BY a.user_id, s.code, s.scale, s.{_asset_name_column()} "
        "ON CONFLICT (user_id, key) DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [Notification.Kind.POINTS_EXPIRING, last_day.isoformat(),
                             *text_params, low, high])
        return cursor.rowcount


def _notices_create_python(low, high, last_day: date) -> int:
    template = _notice_template()
    totals: dict[tuple[int, int], int] = {}
    for user_id, asset_id, remaining in (
        Lot.objects.filter(account__kind=Account.Kind.WALLET, account__user__isnull=False,
                           remaining__gt=0, expires_at__gt=low, expires_at__lte=high)
        .values_list("account__user_id", "account__asset_id", "remaining")
    ):
        totals[(user_id, asset_id)] = totals.get((user_id, asset_id), 0) + remaining
    assets = Asset.objects.in_bulk({asset_id for _user, asset_id in totals})
    created = 0
    for (user_id, asset_id), amount in sorted(totals.items()):
        asset = assets[asset_id]
        text = template % {"amount": asset.to_major(amount), "asset": asset.name,
                           "date": last_day.isoformat()}
        _notice, new = Notification.objects.get_or_create(
            user_id=user_id, key=_notice_key(asset.code, last_day),
            defaults={"kind": Notification.Kind.POINTS_EXPIRING, "text": text},
        )
        created += new
    return created


def _webhooks_emit(low, high, last_day: date) -> int:
    """One ``points.expiring`` per issuing merchant: per asset, how many holders and how much
    the run after ``last_day`` will take. Totals only, no holder."""
    rows = (Lot.objects.filter(account__kind=Account.Kind.WALLET, account__user__isnull=False,
                               account__asset__issuer__isnull=False, remaining__gt=0,
                               expires_at__gt=low, expires_at__lte=high)
            .values("account__asset_id")
            .annotate(holders=Count("account_id", distinct=True), amount=Sum("remaining")))
    assets = Asset.objects.select_related("issuer").in_bulk(
        [row["account__asset_id"] for row in rows])
    by_merchant: dict[int, list[dict]] = {}
    issuers = {}
    for row in sorted(rows, key=lambda r: assets[r["account__asset_id"]].code):
        asset = assets[row["account__asset_id"]]
        issuers[asset.issuer_id] = asset.issuer
        by_merchant.setdefault(asset.issuer_id, []).append({
            "asset": asset.code, "holders": row["holders"],
            "amount": str(asset.to_major(row["amount"])),
        })
    for merchant_id, totals in sorted(by_merchant.items()):
        webhook_points_expiring(merchant=issuers[merchant_id], last_day=last_day, assets=totals)
    return len(by_merchant)


def _unmailed(last_day: date):
    return (Notification.objects.filter(kind=Notification.Kind.POINTS_EXPIRING,
                                        key__endswith=f":{last_day.isoformat()}",
                                        emailed_at__isnull=True)
            .order_by("pk"))


def _mail(run: JobRun, last_day: date) -> int:
    """Mail the notices not mailed yet, a batch per connection to the mail server. A crash
    between sending a batch and marking it may mail that batch twice, never lose it."""
    sent = 0
    while True:
        batch = list(_unmailed(last_day).select_related("user")[:EMAIL_BATCH])
        if not batch:
            return sent
        messages = [
            EmailMessage(
                subject=" ".join(render_to_string("emails/points_expiring_subject.txt").split()),
                body=render_to_string("emails/points_expiring.txt",
                                      {"notice": notice, "site_name": "Alliance Points"}),
                from_email=settings.DEFAULT_FROM_EMAIL, to=[notice.user.email],
            )
            for notice in batch if notice.user.email
        ]
        if messages:
            get_connection().send_messages(messages)
        with db_transaction.atomic(durable=True):
            Notification.objects.filter(pk__in=[n.pk for n in batch]).update(
                emailed_at=timezone.now())
            progress_step(run, len(batch), emails=len(messages))
        sent += len(messages)
