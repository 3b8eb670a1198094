"""Tampering shows: with the append-only triggers switched off, as an attacker with database
access would, any change to journal rows (or to the log's own tables) makes ``verify_ledger``
exit non-zero naming the first bad log index and its transaction."""

import base64
import re

import pytest
from django.core.management import call_command

from ledger import log_selectors, log_services, merkle, note
from ledger.models import Checkpoint, LogLeaf

from . import log_helpers
from .log_helpers import tamper

pytestmark = pytest.mark.django_db
kit, log_key = log_helpers.kit, log_helpers.log_key  # fixtures


@pytest.fixture
def logged(kit, log_key) -> list[int]:
    """Eight anchored transactions (two checkpoints); returns their ids in log order."""
    ids = [kit.issue(10 * (n + 1), shopper=n % 2) for n in range(8)]
    log_services.log_anchor(batch_size=5)
    log_services.log_anchor()
    call_command("verify_ledger")  # honest to start with
    return ids


def _verify_fails(capsys) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_ledger")
    assert exit_info.value.code != 0
    return capsys.readouterr().out


def _first_bad(out: str) -> tuple[int, int]:
    found = re.search(r"FIRST log index .*\(transaction (\d+), log index (\d+)\)", out)
    assert found, out
    return int(found.group(1)), int(found.group(2))


def test_an_edited_amount_is_named_by_its_log_index(logged, capsys):
    # given the amount of transaction #3's credit raised in the database
    tamper("UPDATE ledger_posting SET amount = amount + 1000 WHERE transaction_id = %s "
           "AND leg = 1", [logged[3]])

    # when verify_ledger runs, then it fails naming log index 3 and the transaction
    out = _verify_fails(capsys)
    assert _first_bad(out) == (logged[3], 3)


def test_a_deleted_posting_row_is_named(logged, capsys):
    # given one leg of transaction #5 deleted
    tamper("DELETE FROM ledger_posting WHERE transaction_id = %s AND leg = 0", [logged[5]])

    out = _verify_fails(capsys)
    assert _first_bad(out) == (logged[5], 5)


def test_a_deleted_transaction_is_named(logged, capsys):
    # given transaction #6 removed with its postings (foreign keys off too)
    tamper("DELETE FROM ledger_posting WHERE transaction_id = %s", [logged[6]])
    tamper("DELETE FROM ledger_transaction WHERE id = %s", [logged[6]])

    out = _verify_fails(capsys)
    assert _first_bad(out) == (logged[6], 6)
    assert "missing from the journal" in out


def test_two_swapped_posting_rows_are_named_from_the_first(logged, capsys):
    # given the credits of transactions #1 and #4 swapped (same asset, other wallets, other
    # amounts), so each transaction still balances
    tamper(
        "UPDATE ledger_posting p SET account_id = q.account_id, amount = q.amount "
        "FROM ledger_posting q WHERE p.leg = 1 AND q.leg = 1 AND "
        "((p.transaction_id = %s AND q.transaction_id = %s) OR "
        " (p.transaction_id = %s AND q.transaction_id = %s))",
        [logged[1], logged[4], logged[4], logged[1]],
    )
    tamper(
        "UPDATE ledger_posting SET amount = -(SELECT amount FROM ledger_posting q "
        "WHERE q.transaction_id = ledger_posting.transaction_id AND q.leg = 1) "
        "WHERE leg = 0 AND transaction_id IN (%s, %s)", [logged[1], logged[4]],
    )

    out = _verify_fails(capsys)
    assert _first_bad(out) == (logged[1], 1)
    assert f"(transaction {logged[4]}, log index 4)" in out
    # the double entry still holds: only the log can tell
    assert "FAIL transactions balance per asset" not in out


def test_two_swapped_transaction_rows_are_named(logged, capsys):
    # given the recorded times and kinds of transactions #2 and #7 swapped
    tamper(
        "UPDATE ledger_transaction t SET created_at = s.created_at, kind = 'swapped' "
        "FROM ledger_transaction s WHERE (t.id, s.id) IN ((%s, %s), (%s, %s))",
        [logged[2], logged[7], logged[7], logged[2]],
    )

    out = _verify_fails(capsys)
    assert _first_bad(out) == (logged[2], 2)
    assert f"(transaction {logged[7]}, log index 7)" in out


def test_an_inserted_forged_posting_is_named(logged, kit, capsys):
    # given a forged pair of legs added to transaction #0 (balanced, so only the log sees it)
    for leg, account, amount in ((2, kit.issuance.pk, -500), (3, kit.wallets[1].pk, 500)):
        tamper(
            "INSERT INTO ledger_posting (transaction_id, leg, account_id, asset_id, amount) "
            "VALUES (%s, %s, %s, %s, %s)", [logged[0], leg, account, kit.asset.pk, amount],
        )

    out = _verify_fails(capsys)
    assert _first_bad(out) == (logged[0], 0)


def test_an_inserted_forged_transaction_dated_in_the_past_is_named(logged, kit, capsys):
    # given a whole transaction forged with a recording time before the log's horizon
    tamper(
        "INSERT INTO ledger_transaction (id, kind, client, idempotency_key, fingerprint, "
        "metadata, occurred_at, created_at) VALUES (%s, 'issue', 'forger', 'f1', '', '{}', "
        "'2020-01-01T00:00:00Z', '2020-01-01T00:00:00Z')", [logged[-1] + 1000],
    )
    for leg, account, amount in ((0, kit.issuance.pk, -5), (1, kit.wallets[0].pk, 5)):
        tamper(
            "INSERT INTO ledger_posting (transaction_id, leg, account_id, asset_id, amount) "
            "VALUES (%s, %s, %s, %s, %s)", [logged[-1] + 1000, leg, account, kit.asset.pk, amount],
        )

    out = _verify_fails(capsys)
    assert f"not in the log (forged, or lost by anchoring) (transaction {logged[-1] + 1000})" in out


def test_a_journal_edit_covered_by_a_rewritten_leaf_hash_breaks_the_tree(logged, capsys):
    # given an edited amount AND the stored leaf hash rewritten to match the edit
    tamper("UPDATE ledger_posting SET amount = amount + 1 WHERE transaction_id = %s AND leg = 1",
           [logged[2]])
    tamper("UPDATE ledger_posting SET amount = amount - 1 WHERE transaction_id = %s AND leg = 0",
           [logged[2]])
    entry = log_selectors.journal_entries([logged[2]])[logged[2]]
    tamper("UPDATE ledger_logleaf SET leaf_hash = %s WHERE log_index = 2",
           [merkle.leaf_hash(entry.leaf_bytes())])

    # then the subtree hashes above it no longer match, naming the leaves they cover
    out = _verify_fails(capsys)
    assert "FAIL log subtree hashes match the leaves" in out
    assert f"subtree hash 1/1 does not match the hashes below it (leaves 2..3) " \
           f"(transaction {logged[2]}, log index 2)" in out


def test_a_forged_checkpoint_signature_and_a_broken_chain_are_named(logged, capsys):
    # given the first checkpoint's note re-signed by another key, and the second one deleted
    # and re-made without its prev line
    first = Checkpoint.objects.get(size=5)
    text = log_selectors.checkpoint_text(first)
    forger = note.Signer.from_key(note.generate_signer(log_helpers.ORIGIN)[0])
    tamper("UPDATE ledger_checkpoint SET note = %s WHERE id = %s",
           [note.sign_note(text, [forger]), first.pk])

    out = _verify_fails(capsys)
    assert "checkpoint 5: signature or format invalid" in out
    assert "checkpoint 8: its prev line does not name the checkpoint before it" in out


def test_a_rewritten_root_is_named(logged, capsys):
    # given the root of checkpoint 8 replaced in its row
    tamper("UPDATE ledger_checkpoint SET root_hash = %s WHERE size = 8", [bytes(32)])

    out = _verify_fails(capsys)
    assert "checkpoint 8: the signed size or root differs from the row" in out
    assert "checkpoint 8: the stored tree has another root than the checkpoint" in out


def test_a_deleted_leaf_is_named(logged, capsys):
    # given log leaf 4 deleted
    tamper("DELETE FROM ledger_logleaf WHERE log_index = 4")

    out = _verify_fails(capsys)
    assert "leaf missing: log indexes are not consecutive (log index 4)" in out
    assert LogLeaf.objects.count() == 7


def test_the_log_still_answers_after_checks(logged):
    # an honest log's checkpoint still verifies against its own key (sanity for the fixture)
    checkpoint = Checkpoint.objects.get(size=8)
    assert base64.b64encode(bytes(checkpoint.root_hash))
