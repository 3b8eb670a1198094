"""The daily airdrop (SPEC §4.2) on the real PostgreSQL: exact to the minor unit, once per
date, resumable, published and verifiable."""

import itertools
import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.db import transaction as db_transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alliance.parameters import parameter_set
from ledger.models import Account, Transaction
from points import airdrop as airdrop_module
from points.airdrop import airdrop_run_for_date, airdrop_verify
from points.allocation import largest_remainder, sv_cut
from points.models import Airdrop, AirdropShare, JobRun
from tests.points.jobs_helpers import (
    alliance_assets,
    expected_airdrop,
    ledger_consistent,
    shared_balances,
    sv_balances,
    sv_holders,
)

pytestmark = pytest.mark.django_db

DAY = date(2026, 3, 1)
_days = itertools.count()


def _next_day() -> date:
    return date(2020, 1, 1) + timedelta(days=next(_days))


@pytest.fixture(autouse=True)
def _assets():
    alliance_assets()


def test_the_spec_example_a_holder_of_1000_of_100000_sv_gets_4_98_and_keeps_995_02():
    # given total SV 100,000.00 of which one holder has 1,000.00 (SV has 2 decimals)
    holder, *_rest = sv_holders([100_000, 9_900_000])
    assert sum(sv_balances().values()) == 10_000_000

    # when the day's airdrop of the default D = 498 SHARED runs
    run = airdrop_run_for_date(day=DAY)

    # then the holder received 4.98 SHARED and its SV fell to 995.02
    account = Account.objects.get(pk=holder)
    shared = Account.objects.get(asset__code="SHARED", kind="wallet",
                                 holder_key=account.holder_key)
    assert shared.balance == 498
    assert account.balance == 99_502
    assert run.status == JobRun.Status.DONE
    assert run.counts["shared_paid"] == 49_800
    assert sum(shared_balances().values()) == 49_800
    assert ledger_consistent() == []


def test_the_split_is_exact_ties_go_to_the_lower_account_and_sv_never_goes_negative():
    # given three equal holders and a D that does not divide by three, and a price that
    # makes D worth more than all the SV there is
    parameter_set(key="airdrop_daily_shared", value="1.00")
    parameter_set(key="reference_price", value="2.5000")
    first, second, third = sv_holders([10, 10, 10])

    # when the airdrop runs
    airdrop_run_for_date(day=DAY)

    # then the one cent left over goes to the lowest account id, and SV stops at zero
    parts = {pk: Account.objects.get(asset__code="SHARED", kind="wallet",
                                     holder_key=Account.objects.get(pk=pk).holder_key).balance
             for pk in (first, second, third)}
    assert parts == {first: 34, second: 33, third: 33}
    assert [Account.objects.get(pk=pk).balance for pk in (first, second, third)] == [0, 0, 0]
    assert ledger_consistent() == []


def test_running_a_finished_date_again_changes_nothing():
    # given a day's airdrop that has run
    sv_holders([5_000, 7_000, 11_000])
    airdrop_run_for_date(day=DAY)
    before = (sv_balances(), shared_balances(), Transaction.objects.count())

    # when it runs again, through the command this time
    call_command("run_airdrop", "--date", DAY.isoformat())
    airdrop_run_for_date(day=DAY)

    # then nothing moved and the run was not attempted again
    assert (sv_balances(), shared_balances(), Transaction.objects.count()) == before
    assert JobRun.objects.get(job="airdrop", period=DAY.isoformat()).attempts == 1


def test_a_future_date_is_refused():
    from points.airdrop import AirdropInFuture

    with pytest.raises(AirdropInFuture):
        airdrop_run_for_date(day=date.today() + timedelta(days=2))


def test_a_crash_between_chunks_resumes_and_ends_as_an_uninterrupted_run(monkeypatch):
    # given 10 holders paid 3 per chunk, and a chunk that fails once (a crash)
    sv_holders([1_000 * (i + 1) for i in range(10)])
    before = sv_balances()
    real_post = airdrop_module._post_batch_sql
    calls = {"n": 0}

    def crash_on_third(airdrop, chunks):
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("worker lost")
        return real_post(airdrop, chunks)

    monkeypatch.setattr(airdrop_module, "_post_batch_sql", crash_on_third)
    with pytest.raises(ConnectionError):
        airdrop_run_for_date(day=DAY, chunk_holders=3, batch_holders=3)
    failed = JobRun.objects.get(job="airdrop", period=DAY.isoformat())
    assert failed.status == JobRun.Status.FAILED
    assert failed.progress_done == 6  # two chunks committed

    # when the run is started again
    run = airdrop_run_for_date(day=DAY, chunk_holders=3, batch_holders=3)

    # then it finished the rest, and the ledger is what one clean run gives
    _received, after = expected_airdrop(before, 49_800)
    assert run.status == JobRun.Status.DONE and run.attempts == 2
    assert sv_balances() == after
    assert Transaction.objects.filter(kind="airdrop").count() == 4
    assert airdrop_verify(day=DAY).ok
    assert ledger_consistent() == []


def test_the_published_snapshot_is_public_and_airdrop_verify_recomputes_it(client, tmp_path):
    # given a day's airdrop
    sv_holders([3, 5_000, 123_456, 77])
    airdrop_run_for_date(day=DAY)

    # when anyone downloads its snapshot
    response = client.get(f"/api/v1/airdrops/{DAY.isoformat()}/snapshot")
    body = json.loads(b"".join(response.streaming_content))

    # then it has the parameters, the hash, the transactions and one entry per holder, with
    # pseudonymous ids only
    assert response.status_code == 200
    airdrop = Airdrop.objects.get(date=DAY)
    assert body["snapshot_sha256"] == airdrop.snapshot_sha256
    assert body["amount_minor"] == 49_800 and body["holders"] == 4
    assert len(body["transactions"]) == 1
    assert all(e[0].startswith("ac_") and e[1].startswith("ac_") for e in body["entries"])
    assert sum(e[3] for e in body["entries"]) == 49_800
    assert "@" not in json.dumps(body)
    # and the verify command agrees, from the database and from the downloaded file
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(body))
    call_command("airdrop_verify", "--date", DAY.isoformat())
    call_command("airdrop_verify", "--date", DAY.isoformat(), "--file", str(path))
    listing = client.get("/api/v1/airdrops").json()
    assert listing["results"][0]["snapshot_sha256"] == airdrop.snapshot_sha256


def test_airdrop_verify_names_a_posting_that_does_not_match_the_snapshot(tmp_path):
    # given a day's airdrop and a "published" snapshot someone altered
    sv_holders([1_000, 2_000])
    airdrop_run_for_date(day=DAY)
    airdrop = Airdrop.objects.get(date=DAY)
    rows = list(airdrop_module.airdrop_snapshot_rows(airdrop))
    forged = {"amount_minor": airdrop.amount, "sv_per_shared": str(airdrop.sv_per_shared),
              "snapshot_sha256": airdrop.snapshot_sha256,
              "entries": [[rows[0][0], rows[0][1], rows[0][2] * 2], list(rows[1][:3])]}

    # when it is verified
    check = airdrop_verify(day=DAY, snapshot=forged)

    # then the hash and the parts disagree, and the command exits non-zero
    assert not check.ok
    assert any("SHA-256" in p for p in check.problems)
    assert any("received" in p for p in check.problems)
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(forged))
    with pytest.raises(SystemExit):
        call_command("airdrop_verify", "--date", DAY.isoformat(), "--file", str(path))


def test_an_unknown_day_has_no_snapshot(client):
    assert client.get("/api/v1/airdrops/2026-02-30/snapshot").status_code == 404
    response = client.get("/api/v1/airdrops/2001-01-01/snapshot")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_python_path_of_the_demo_gives_the_same_ledger_as_the_sql_path(settings):
    # given the same holders airdropped on two days: first by SQL, then by the ORM path
    sv_holders([17, 40_000, 40_000, 5, 999_999])
    airdrop_run_for_date(day=DAY)
    before = sv_balances()

    settings.LEDGER_ENGINE = "python"
    airdrop_run_for_date(day=DAY + timedelta(days=1))

    # then the second day ended where the pure functions say
    received, after = expected_airdrop(before, 49_800)
    assert sv_balances() == after
    second = Airdrop.objects.get(date=DAY + timedelta(days=1))
    assert [s.part for s in AirdropShare.objects.filter(airdrop=second).order_by("seq")] == [
        received[pk] for pk in sorted(received)]
    assert airdrop_verify(day=DAY + timedelta(days=1)).ok
    assert ledger_consistent() == []


# --- properties -------------------------------------------------------------------------------

balances_strategy = st.lists(
    st.one_of(st.integers(min_value=1, max_value=1_000),
              st.integers(min_value=1, max_value=10**12),
              st.sampled_from([1, 7, 100, 10**6])),
    min_size=1, max_size=40,
)


class _Rollback(Exception):
    pass


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(balances=balances_strategy, amount=st.integers(min_value=0, max_value=10**11),
       price=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100"), places=4))
def test_the_sql_split_equals_the_pure_function_on_any_distribution(balances, amount, price):
    # given any SV distribution (balances set directly: only the arithmetic is under test)
    factor = price
    try:
        with db_transaction.atomic():
            ids = sv_holders([0] * len(balances))
            for pk, balance in zip(ids, balances, strict=True):
                Account.objects.filter(pk=pk).update(balance=balance)
            holders = {pk: b for pk, b in sv_balances().items() if b > 0}
            shared, sv = (airdrop_module.ledger.alliance_asset("SHARED"),
                          airdrop_module.ledger.alliance_asset("SV"))
            airdrop_module._wallets_open_sql(shared, sv)
            airdrop = Airdrop.objects.create(date=_next_day(), amount=amount,
                                             reference_price=price, sv_per_shared=factor,
                                             chunk_size=100)

            # when the freezing statement splits D
            count, total, _digest = airdrop_module._freeze_sql(airdrop, shared, sv)

            # then it agrees with the pure function, sums to D exactly, and cuts no SV below 0
            order = sorted(holders)
            want = largest_remainder(amount, [holders[pk] for pk in order])
            rows = list(AirdropShare.objects.filter(airdrop=airdrop).order_by("seq")
                        .values_list("sv_account_id", "sv", "part", "cut"))
            assert count == len(order) and total == sum(holders.values())
            assert [r[0] for r in rows] == order
            assert [r[2] for r in rows] == want
            assert sum(want) == amount
            assert [r[3] for r in rows] == [sv_cut(p, s, factor) for _a, s, p, _c in rows]
            assert all(0 <= r[3] <= r[1] for r in rows)
            raise _Rollback
    except _Rollback:
        pass


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(balances=st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=30),
       amount=st.integers(min_value=1, max_value=10**8))
def test_any_airdrop_sums_to_d_leaves_no_sv_negative_and_verifies(balances, amount):
    # given more holders (they accumulate over the examples: each day pays all of them)
    sv_holders(balances)
    parameter_set(key="airdrop_daily_shared", value=str(Decimal(amount).scaleb(-2)))
    day = _next_day()
    sv_before, shared_before = sv_balances(), sum(shared_balances().values())

    # when the day's airdrop runs
    airdrop_run_for_date(day=day, chunk_holders=7)

    # then D was paid exactly, every SV is >= 0 and as the rule says, and it verifies
    _received, after = expected_airdrop(sv_before, amount)
    assert sum(shared_balances().values()) - shared_before == amount
    assert sv_balances() == after
    assert min(sv_balances().values()) >= 0
    assert airdrop_verify(day=day).ok
    assert ledger_consistent() == []


def test_a_holder_whose_sv_fell_after_the_snapshot_loses_only_what_is_left():
    # given a frozen snapshot, and a holder whose SV is then mostly taken (a refund)
    parameter_set(key="airdrop_daily_shared", value="100.00")
    holder, other = sv_holders([1_000, 1_000])
    shared, sv = (airdrop_module.ledger.alliance_asset("SHARED"),
                  airdrop_module.ledger.alliance_asset("SV"))
    airdrop = airdrop_module._freeze(DAY, 16_000)
    issuance = airdrop_module.ledger.issuance_account(sv)
    account = Account.objects.get(pk=holder)
    airdrop_module.ledger.transaction_post(
        kind="refund", client="test", idempotency_key="refund-sv",
        legs=[airdrop_module.ledger.Leg(account, -990), airdrop_module.ledger.Leg(issuance, 990)])

    # when the chunk posts
    with db_transaction.atomic():
        airdrop_module._post_batch_sql(airdrop, [0])

    # then the holder still gets its SHARED and its SV stops at zero; verify calls it capped
    assert Account.objects.get(pk=holder).balance == 0
    assert Account.objects.get(asset=shared, holder_key=account.holder_key).balance == 5_000
    check = airdrop_verify(day=DAY)
    assert check.ok and check.capped == 1
    assert connection.vendor == "postgresql"
    assert other
