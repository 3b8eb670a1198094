"""Anchoring: every committed transaction becomes one leaf, checkpoints are signed and chained,
and the stored tree answers proofs that agree with an independent in-memory tree."""

import base64
import hashlib
import itertools
import json

import pytest
from django.core.management import call_command

from ledger import canonical, log_format, log_selectors, log_services, merkle, note, tasks
from ledger.log_errors import LogKeyMissing
from ledger.models import Checkpoint, Hold, LogLeaf, LogNode, Transaction

from . import log_helpers
from .log_helpers import ORIGIN

pytestmark = pytest.mark.django_db
kit, log_key = log_helpers.kit, log_helpers.log_key  # fixtures


def _leaf_hashes_from_journal() -> list[bytes]:
    """The leaves as an outsider would rebuild them: reference encoder, in log order."""
    ids = list(LogLeaf.objects.order_by("index").values_list("transaction_id", flat=True))
    entries = log_selectors.journal_entries(ids)
    return [merkle.leaf_hash(entries[i].leaf_bytes(reference=True)) for i in ids]


def test_anchoring_logs_every_transaction_once_in_id_order_and_signs_a_checkpoint(
    kit, log_key
):
    # given five committed transactions
    ids = [kit.issue(100 + n) for n in range(5)]

    # when the ledger is anchored
    result = log_services.log_anchor()

    # then each transaction has the next log index, in id order
    assert result.leaves == 5
    assert list(LogLeaf.objects.order_by("index").values_list("index", "transaction_id")) == [
        (n, txn) for n, txn in enumerate(ids)
    ]
    # and the checkpoint is a C2SP note signed by the log key over the tree's root
    checkpoint = result.checkpoint
    text, _signatures, _ = note.open_note(checkpoint.note, [note.Verifier.from_key(log_key)])
    parsed = note.parse_checkpoint(text)
    assert (parsed.origin, parsed.size) == (ORIGIN, 5)
    assert parsed.root_hash == merkle.MerkleTree(_leaf_hashes_from_journal()).root()
    assert bytes(checkpoint.root_hash) == parsed.root_hash
    # the first checkpoint has no prev line; it states the asset's supply
    assert parsed.extensions == [
        f"supply {kit.asset.code} issued=510 burned=0 expired=0 circulating=510"
    ]


def test_a_second_run_with_nothing_new_writes_nothing(kit, log_key):
    # given an anchored ledger
    kit.issue()
    log_services.log_anchor()

    # when anchoring runs again
    again = log_services.log_anchor()

    # then no checkpoint and no leaf is added
    assert (again.leaves, again.checkpoint) == (0, None)
    assert Checkpoint.objects.count() == 1
    assert LogLeaf.objects.count() == 1


def test_batches_chain_their_checkpoints_with_prev_lines(kit, log_key):
    # given seven transactions, a burn among them
    for n in range(6):
        kit.issue(10 + n)
    kit.spend(5)

    # when they are anchored three per batch
    result = log_services.log_anchor(batch_size=3)

    # then three checkpoints, each naming the hash of the note before it
    checkpoints = list(Checkpoint.objects.order_by("size"))
    assert [c.size for c in checkpoints] == [3, 6, 7]
    assert result.checkpoint == checkpoints[-1]
    for before, after in itertools.pairwise(checkpoints):
        text, _lines = note.split_note(after.note)
        prev, _supply = log_format.parse_extensions(note.parse_checkpoint(text).extensions)
        assert prev == hashlib.sha256(before.note.encode()).digest()
        assert bytes(after.previous_hash) == prev
    # and the supply of the last one counts the burn
    assert checkpoints[-1].supply[kit.asset.code] == {
        "issued": 75, "burned": 5, "expired": 0, "circulating": 70
    }


def test_stored_subtrees_give_the_same_roots_and_proofs_as_a_full_tree(kit, log_key):
    # given 37 transactions anchored in uneven batches (so batches end mid-subtree)
    for n in range(37):
        kit.issue(n + 1)
    log_services.log_anchor(batch_size=5)
    log_services.log_anchor()
    reference = merkle.MerkleTree(_leaf_hashes_from_journal())

    # then only O(n) subtree rows exist, and every proof from them matches the full tree
    assert LogNode.objects.count() == sum(37 >> level for level in range(1, 6))
    for size in (1, 2, 5, 16, 31, 37):
        assert log_selectors.with_stored_subtrees(
            lambda subtree, size=size: merkle.root_hash(size, subtree)
        ) == reference.root(size)
        for index in (0, size // 2, size - 1):
            leaf, proof = log_selectors.inclusion_proof_get(index=index, size=size)
            assert proof == reference.inclusion_proof(index, size)
            merkle.verify_inclusion(leaf, index, size, proof, reference.root(size))
    for first, second in ((1, 37), (5, 10), (16, 37), (36, 37), (37, 37)):
        proof = log_selectors.consistency_proof_get(first=first, second=second)
        assert proof == reference.consistency_proof(first, second)
        merkle.verify_consistency(first, second, proof, reference.root(first),
                                  reference.root(second))


def test_leaves_hold_pseudonymous_ids_amounts_as_strings_and_a_metadata_hash(kit, log_key):
    # given a transaction with metadata that names an order
    txn = kit.issue(250, metadata={"order": "A-17", "note": "兑换", "big": 2**60})
    log_services.log_anchor()

    # when its leaf is rebuilt
    entry = log_selectors.journal_entries([txn])[txn]
    leaf = json.loads(entry.leaf_bytes())

    # then it is the pinned v1 document, with no personal data
    transaction = Transaction.objects.get(pk=txn)
    metadata_text = json.dumps({"order": "A-17", "note": "兑换", "big": str(2**60)})
    assert leaf == {
        "v": 1, "id": txn, "kind": "issue",
        "time": log_format.encode_time(transaction.created_at),
        "postings": [[kit.issuance.public_id, kit.asset.code, "-250"],
                     [kit.wallets[0].public_id, kit.asset.code, "250"]],
        "metadata_sha256": hashlib.sha256(
            canonical.canonical_json(json.loads(metadata_text))
        ).hexdigest(),
    }
    assert leaf["time"].endswith("Z")
    assert kit.shoppers[0].email not in entry.leaf_bytes().decode()
    assert entry.leaf_bytes() == entry.leaf_bytes(reference=True)


def test_anchoring_refuses_without_a_key_in_production(kit, settings, tmp_path):
    # given no inline key, a key file that does not exist, and DEBUG off
    settings.LOG_SIGNER_KEY = ""
    settings.LOG_SIGNER_KEY_FILE = str(tmp_path / "missing.key")
    settings.DEBUG = False
    kit.issue()

    # when anchoring runs, then it refuses and creates no key and no checkpoint
    with pytest.raises(LogKeyMissing):
        log_services.log_anchor()
    assert not (tmp_path / "missing.key").exists()
    assert not Checkpoint.objects.exists()


def test_the_demo_creates_its_key_file_on_first_use(kit, settings, tmp_path):
    # given the demo (DEBUG) with no key yet
    settings.LOG_SIGNER_KEY = ""
    settings.LOG_SIGNER_KEY_FILE = str(tmp_path / "var" / "log.key")
    settings.DEBUG = True
    kit.issue()

    # when anchoring runs
    result = log_services.log_anchor()

    # then a private key file was made and signs the checkpoint
    key_file = tmp_path / "var" / "log.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    verifier = note.Signer.from_key(key_file.read_text()).verifier()
    note.open_note(result.checkpoint.note, [verifier])


def test_create_log_key_command_writes_a_key_and_prints_the_verifier(tmp_path, capsys):
    # when the command makes a log key and a witness key
    call_command("create_log_key", "--out", str(tmp_path / "log.key"), "--name", "demo/log")
    log_vkey = capsys.readouterr().out.strip()
    call_command("create_log_key", "--witness", "--out", str(tmp_path / "w.key"),
                 "--name", "witness.example/w1")
    witness_vkey = capsys.readouterr().out.strip()

    # then the printed verifier keys belong to the written signer keys
    log_signer = note.Signer.from_key((tmp_path / "log.key").read_text())
    assert log_signer.verifier().to_key() == log_vkey
    witness = note.Signer.from_key((tmp_path / "w.key").read_text())
    assert witness.alg == note.ALG_COSIGNATURE_V1
    assert witness.verifier().to_key() == witness_vkey


def test_anchor_ledger_command_and_task_call_the_service(kit, log_key):
    # given two transactions
    kit.issue()
    kit.issue()

    # when the command runs, then the task
    call_command("anchor_ledger")
    kit.issue()
    logged = tasks.anchor_ledger.delay().get()

    # then all three are logged, in two checkpoints
    assert logged == 1
    assert list(Checkpoint.objects.order_by("size").values_list("size", flat=True)) == [2, 3]


def test_expire_holds_task_voids_expired_holds(kit, log_key):
    # given a hold already past its expiry
    from datetime import timedelta

    from ledger import services

    kit.issue(50)
    hold = services.hold_place(wallet=kit.wallets[0], amount=20, client="test",
                               idempotency_key="hold-1", ttl=timedelta(seconds=-1))

    # when the beat task runs
    expired = tasks.expire_holds()

    # then the hold expired and the points are back
    hold.refresh_from_db()
    assert (expired, hold.state) == (1, Hold.State.EXPIRED)
    kit.wallets[0].refresh_from_db()
    assert kit.wallets[0].balance == 50


def test_both_tasks_are_on_the_beat_schedule_every_minute(settings):
    beat = settings.CELERY_BEAT_SCHEDULE.values()
    schedule = {entry["task"]: entry["schedule"] for entry in beat}
    assert schedule["ledger.tasks.anchor_ledger"] == 60.0
    assert schedule["ledger.tasks.expire_holds"] == 60.0


def test_verify_ledger_passes_on_an_honest_log(kit, log_key, capsys):
    # given an anchored ledger with some activity after the first checkpoint
    for n in range(9):
        kit.issue(n + 1, shopper=n % 2)
    log_services.log_anchor(batch_size=4)
    kit.spend(3)
    log_services.log_anchor()

    # when verify_ledger runs, then every check passes
    call_command("verify_ledger")
    out = capsys.readouterr().out
    assert "ok   log leaves rebuild from the journal" in out
    assert "ok   checkpoints are signed, chained and match the tree" in out


def test_verify_ledger_names_checkpoints_of_another_origin(kit, log_key, settings, capsys):
    # given a log anchored under one origin
    kit.issue()
    log_services.log_anchor()

    # when the deployment's origin is not the one signed
    settings.LOG_ORIGIN = "renamed.example/log"

    # then verify_ledger fails, naming the checkpoint
    with pytest.raises(SystemExit):
        call_command("verify_ledger")
    assert "checkpoint 1: origin" in capsys.readouterr().out


def test_root_is_base64_in_the_checkpoint(kit, log_key):
    kit.issue()
    checkpoint = log_services.log_anchor().checkpoint
    assert note.split_note(checkpoint.note)[0].split("\n")[2] == base64.b64encode(
        bytes(checkpoint.root_hash)
    ).decode()


TRICKY_METADATA = [
    {},
    {"order_ref": "A-17"},
    {"note": "兑换 \u2028 \"quoted\" back\\slash \t tab \x01 \x7f"},
    {"b": 1, "a": -2, "c": 999999999999999, "d": True, "e": None, "f": False},
    {"big": 9007199254740993, "huge": 10**20, "exact": 4503599627370496},
    {"price": 1.5, "ratio": 0.1, "sci": 1e-7},
    {"nested": {"z": 1, "a": [1, "x", {"k": None}]}},
    {"é": "accent", "\U0001f600": "astral key", "\ue000": "private use"},
    {"z": "", "": "empty key", "A": "upper", "a": "lower"},
    {"hold": 12, "reverses": 3, "reason": ""},
]


@pytest.mark.parametrize("metadata", TRICKY_METADATA)
def test_awkward_metadata_and_kinds_anchor_to_the_reference_leaf(kit, log_key, metadata):
    # given a transaction with awkward metadata and an awkward kind, as PostgreSQL stores it
    from ledger import services

    posted = services.transaction_post(
        kind="kind \"with\" ünïcode\n", client="test", idempotency_key=f"tricky-{metadata!r}",
        legs=[services.Leg(kit.issuance, -5), services.Leg(kit.wallets[0], 5)],
        metadata=metadata,
    )

    # when it is anchored
    log_services.log_anchor()

    # then the stored leaf hash is that of the reference encoder's bytes
    entry = log_selectors.journal_entries([posted.transaction_id])[posted.transaction_id]
    stored = LogLeaf.objects.get(transaction_id=posted.transaction_id).leaf_hash
    assert bytes(stored) == merkle.leaf_hash(entry.leaf_bytes(reference=True))
