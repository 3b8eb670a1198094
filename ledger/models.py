"""The double-entry ledger: assets, accounts, the append-only journal, lots and holds.

Invariants, and who guards them:

* Postings of a transaction sum to zero per asset (``ledger.services`` before writing; on
  PostgreSQL also a deferred constraint trigger checked at commit).
* A bounded account (wallet, deposit, hold, settlement, airdrop pool) never goes below zero
  (a CHECK constraint; the posting engine refuses first, naming the account).
* ``Transaction`` and ``Posting`` rows are never updated or deleted (pgtrigger on PostgreSQL,
  SQLite triggers in the demo). Corrections are reversal transactions.
* For a lot-tracked account (bounded, of an expiring asset) the lots' remainders sum to its
  balance; ``verify_ledger`` replays the journal to prove it.

Only ``ledger.services`` writes to these tables.
"""

import secrets
from datetime import datetime
from decimal import Decimal

import pgtrigger
from django.conf import settings
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


def new_public_id() -> str:
    return "ac_" + secrets.token_hex(8)


class Asset(models.Model):
    """A point type (积分种类): a merchant's brand points, the shared point (共享积分),
    share value (共享值) or the alliance point (联盟积分)."""

    class Family(models.TextChoices):
        BRAND = "brand", _("Brand points")
        SHARED = "shared", _("Shared point")
        SHARE_VALUE = "share_value", _("Share value")
        ALLIANCE = "alliance", _("Alliance point")

    code = models.CharField(_("code"), max_length=16, unique=True)
    family = models.CharField(_("family"), max_length=16, choices=Family.choices)
    name_zh = models.CharField(_("name (Chinese)"), max_length=60)
    name_en = models.CharField(_("name (English)"), max_length=60)
    description = models.TextField(_("description"), blank=True)
    issuer = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, null=True, blank=True,
        related_name="assets", verbose_name=_("issuer"),
        help_text=_("Empty for the alliance's own assets."),
    )
    scale = models.PositiveSmallIntegerField(
        _("decimal places"), default=0, help_text=_("Amounts are stored in minor units.")
    )
    units_per_cny = models.DecimalField(
        _("points per CNY"), max_digits=12, decimal_places=4, default=Decimal("1"),
        help_text=_("How many points (major units) are worth CNY 1."),
    )
    expiry_months = models.PositiveSmallIntegerField(
        _("expiry (months)"), null=True, blank=True,
        help_text=_("Points expire at the end of this many months after the month they were "
                    "earned in; empty for never."),
    )
    transferable = models.BooleanField(
        _("transferable"), default=True,
        help_text=_("Share value is not: it can never move from one holder to another."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("asset")
        verbose_name_plural = _("assets")
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.code

    @property
    def name(self) -> str:
        return self.name_zh if (get_language() or "").startswith("zh") else self.name_en

    @property
    def minor_per_unit(self) -> int:
        return 10**self.scale

    @property
    def expires(self) -> bool:
        return self.expiry_months is not None

    def expiry_for(self, earned_at: datetime) -> datetime | None:
        """End of the ``expiry_months``-th month after the month of ``earned_at``, in the
        alliance's time zone (SPEC §4.6); None when the asset never expires."""
        if self.expiry_months is None:
            return None
        from zoneinfo import ZoneInfo

        local = earned_at.astimezone(ZoneInfo(settings.TIME_ZONE))
        month_index = local.year * 12 + (local.month - 1) + self.expiry_months + 1
        first_after = local.replace(
            year=month_index // 12, month=month_index % 12 + 1, day=1,
            hour=0, minute=0, second=0, microsecond=0,
        )
        return first_after

    def to_minor(self, amount: Decimal) -> int:
        """Major units (as typed by a person) to integer minor units; refuses extra digits."""
        minor = amount * self.minor_per_unit
        if minor != minor.to_integral_value():
            raise ValueError(f"{amount} has more than {self.scale} decimal places")
        return int(minor)

    def to_major(self, minor: int) -> Decimal:
        return Decimal(minor).scaleb(-self.scale)


class Account(models.Model):
    """``(holder, asset, kind)``. Bounded accounts carry a locked, non-negative balance;
    unbounded ones (issuance and sinks) are never locked and their balance is derived from
    postings, so they cannot serialise a merchant's traffic."""

    class Kind(models.TextChoices):
        WALLET = "wallet", _("Wallet")
        DEPOSIT = "deposit", _("Deposit")
        ISSUANCE = "issuance", _("Issuance")
        BURN = "burn", _("Burn")
        EXPIRED = "expired", _("Expired")
        HOLD = "hold", _("Hold")
        SETTLEMENT = "settlement", _("Settlement")
        AIRDROP = "airdrop", _("Airdrop pool")
        # A merchant's imported members' points, waiting for each member to sign up and claim.
        CLAIMS = "claims", _("Pending claims")

    UNBOUNDED_KINDS = frozenset({Kind.ISSUANCE, Kind.BURN, Kind.EXPIRED})

    # asset and user have no single-column index: account_unique_per_holder and
    # account_user_asset lead with them, and every index less is one write less when a
    # balance moves without a HOT update.
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="accounts",
                              db_index=False)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="ledger_accounts", db_index=False,
    )
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, null=True, blank=True,
        related_name="ledger_accounts",
    )
    # "u:<id>", "m:<id>" or "alliance": one unique key that works on both databases, where a
    # unique constraint over nullable columns would not.
    holder_key = models.CharField(max_length=32, editable=False)
    public_id = models.CharField(
        _("public id"), max_length=24, unique=True, default=new_public_id, editable=False,
        help_text=_("Pseudonymous id shown in the explorer and in log leaves."),
    )
    bounded = models.BooleanField(editable=False)
    tracks_lots = models.BooleanField(editable=False)
    balance = models.BigIntegerField(
        _("balance (minor units)"), default=0,
        help_text=_("Kept for bounded accounts only; derived from postings otherwise."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        constraints = [
            models.UniqueConstraint(
                fields=["asset", "kind", "holder_key"], name="account_unique_per_holder"
            ),
            models.CheckConstraint(
                condition=models.Q(bounded=False) | models.Q(balance__gte=0),
                name="account_bounded_balance_non_negative",
            ),
        ]
        indexes = [models.Index(fields=["user", "asset"], name="account_user_asset")]

    def __str__(self) -> str:
        return f"{self.asset.code}:{self.kind}:{self.holder_key}"


class Transaction(models.Model):
    """One immutable journal entry. ``(client, idempotency_key)`` is unique: the same request
    twice posts once."""

    # No index: nothing looks journal rows up by kind alone (reports reach the kind through
    # an account's postings), and each index is one more entry written per posting call.
    kind = models.CharField(_("kind"), max_length=32)
    client = models.CharField(
        _("client"), max_length=64,
        help_text=_("Whose idempotency keys these are: a merchant, a user or the system."),
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=128)
    fingerprint = models.CharField(
        max_length=64, help_text=_("SHA-256 of the request, to tell a replay from a conflict.")
    )
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    created_at = models.DateTimeField(_("recorded at"))

    class Meta:
        verbose_name = _("transaction")
        verbose_name_plural = _("transactions")
        constraints = [
            models.UniqueConstraint(
                fields=["client", "idempotency_key"], name="transaction_idempotency_unique"
            )
        ]
        indexes = [models.Index(fields=["created_at"], name="transaction_created")]
        triggers = [pgtrigger.Protect(name="transaction_append_only",
                                      operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind}"


class Posting(models.Model):
    """One leg: a signed amount in minor units on one account (positive raises the balance)."""

    # No foreign-key constraints here: the deferred ledger_posting_check() (migration 0007)
    # checks once per transaction, at commit, that it exists and that every leg names an
    # existing account of the leg's asset; per-row foreign-key checks cost three lookups per
    # leg, which is most of the commit of a job's 32,000-leg transaction. No single-column
    # indexes either: posting_leg_unique and posting_account_txn lead with those columns.
    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="postings",
                                    db_constraint=False, db_index=False)
    leg = models.PositiveSmallIntegerField()
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="postings",
                                db_constraint=False, db_index=False)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="postings",
                              db_constraint=False)
    amount = models.BigIntegerField()
    # For credits to lot-tracked accounts: the expiry a new lot gets when the transaction
    # carries no lots over from its debits. Kept so verify_ledger can replay lots exactly.
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("posting")
        verbose_name_plural = _("postings")
        constraints = [
            models.UniqueConstraint(fields=["transaction", "leg"], name="posting_leg_unique"),
            models.CheckConstraint(condition=~models.Q(amount=0), name="posting_amount_nonzero"),
        ]
        indexes = [models.Index(fields=["account", "transaction"], name="posting_account_txn")]
        triggers = [pgtrigger.Protect(name="posting_append_only",
                                      operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"#{self.transaction_id}.{self.leg} {self.amount:+d}"


class Lot(models.Model):
    """What is left of the credits of one expiry date in one account (SPEC §4.6).

    Credits with the same expiry merge into one lot; debits consume soonest-expiring first.
    Changed only under the lock of its account."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lots",
                                db_index=False)  # lot_unique_expiry leads with it
    expires_at = models.DateTimeField(_("expires at"))
    remaining = models.BigIntegerField(_("remaining (minor units)"))

    class Meta:
        verbose_name = _("lot")
        verbose_name_plural = _("lots")
        constraints = [
            models.UniqueConstraint(fields=["account", "expires_at"], name="lot_unique_expiry"),
            models.CheckConstraint(condition=models.Q(remaining__gte=0),
                                   name="lot_remaining_non_negative"),
        ]
        indexes = [models.Index(fields=["expires_at"], name="lot_expiry")]

    def __str__(self) -> str:
        return f"lot {self.account_id} {self.expires_at:%Y-%m-%d} {self.remaining}"


class Hold(models.Model):
    """A two-phase spend: points moved from a wallet into its hold account, then captured
    (wholly or in part, the rest going back) or voided; expired holds void themselves."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        CAPTURED = "captured", _("Captured")
        VOIDED = "voided", _("Voided")
        EXPIRED = "expired", _("Expired")

    wallet = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    hold_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField(_("held (minor units)"))
    captured = models.BigIntegerField(_("captured (minor units)"), default=0)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    expires_at = models.DateTimeField(_("expires at"))
    placed_by = models.OneToOneField(Transaction, on_delete=models.PROTECT, related_name="hold")
    settled_by = models.OneToOneField(
        Transaction, on_delete=models.PROTECT, null=True, blank=True, related_name="settled_hold"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("hold")
        verbose_name_plural = _("holds")
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="hold_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(captured__gte=0) & models.Q(captured__lte=models.F("amount")),
                name="hold_captured_within_amount",
            ),
        ]
        indexes = [models.Index(fields=["state", "expires_at"], name="hold_state_expiry")]

    def __str__(self) -> str:
        return f"hold #{self.pk} {self.state} {self.amount}"


# --- The transparency log (SPEC §6) -----------------------------------------------------------
# Written only by ``ledger.log_services``; the format of what these rows commit to is pinned in
# docs/log-format.md. Like the journal, these tables are append-only.


class LogLeaf(models.Model):
    """Leaf ``index`` of the transparency log: one committed transaction and the RFC 9162 hash
    of its leaf bytes. The journal is append-only, so a transaction's place in the log lives
    here and not on the transaction; the one-to-one key is what makes "never twice" hold."""

    index = models.BigIntegerField(_("log index"), primary_key=True, db_column="log_index")
    transaction = models.OneToOneField(
        Transaction, on_delete=models.PROTECT, related_name="log_leaf"
    )
    leaf_hash = models.BinaryField(max_length=32)

    class Meta:
        verbose_name = _("log leaf")
        verbose_name_plural = _("log leaves")
        constraints = [
            models.CheckConstraint(condition=models.Q(index__gte=0), name="logleaf_index_natural")
        ]
        triggers = [pgtrigger.Protect(name="logleaf_append_only",
                                      operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"leaf {self.index} (transaction {self.transaction_id})"


class LogNode(models.Model):
    """Hash of the perfect subtree of ``2**level`` leaves that starts at leaf
    ``position * 2**level`` (level >= 1; level 0 is ``LogLeaf.leaf_hash``). A complete subtree
    never changes, so a proof reads O(log n) of these rows and never a leaf it does not name."""

    pk = models.CompositePrimaryKey("level", "position")
    level = models.PositiveSmallIntegerField()
    position = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        verbose_name = _("log subtree hash")
        verbose_name_plural = _("log subtree hashes")
        triggers = [pgtrigger.Protect(name="lognode_append_only",
                                      operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"subtree {self.level}/{self.position}"


class Checkpoint(models.Model):
    """A signed checkpoint (C2SP tlog-checkpoint): the log's first ``size`` leaves have root
    ``root_hash``. ``note`` is the signed note exactly as the log signed it; witnesses'
    cosignatures are kept apart (``Cosignature``) and appended when it is served."""

    size = models.BigIntegerField(_("tree size"), unique=True)
    root_hash = models.BinaryField(max_length=32)
    previous_hash = models.BinaryField(
        max_length=32, null=True, blank=True,
        help_text=_("SHA-256 of the previous checkpoint's signed note; empty for the first."),
    )
    note = models.TextField(_("signed note"))
    supply = models.JSONField(
        _("supply"), default=dict,
        help_text=_("Per asset code, in minor units, over the leaves of this tree: issued, "
                    "burned, expired and circulating."),
    )
    # Every transaction recorded before this instant was in the log when the checkpoint was
    # written (or never committed); the next anchoring run scans from here.
    horizon = models.DateTimeField()
    created_at = models.DateTimeField(_("signed at"))

    class Meta:
        verbose_name = _("checkpoint")
        verbose_name_plural = _("checkpoints")
        ordering = ["-size"]
        constraints = [
            models.CheckConstraint(condition=models.Q(size__gt=0), name="checkpoint_size_positive")
        ]
        triggers = [pgtrigger.Protect(name="checkpoint_append_only",
                                      operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"checkpoint {self.size}"


class WitnessKey(models.Model):
    """A member's Ed25519 witness key (C2SP tlog-cosignature v1). Registered by a member
    merchant or user, approved by alliance staff; only approved keys' cosignatures are
    accepted and served."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending approval")
        APPROVED = "approved", _("Approved")
        REVOKED = "revoked", _("Revoked")

    name = models.CharField(_("key name"), max_length=128)
    vkey = models.CharField(_("verifier key"), max_length=255, unique=True)
    # The cosignature/v1 key id (type byte 0x04) that the witness's signature lines carry.
    key_id = models.BigIntegerField()
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, null=True, blank=True,
        related_name="witness_keys", verbose_name=_("merchant"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="witness_keys", verbose_name=_("user"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+",
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("witness key")
        verbose_name_plural = _("witness keys")
        constraints = [
            models.UniqueConstraint(fields=["name", "key_id"], name="witnesskey_name_id_unique"),
            models.CheckConstraint(
                condition=models.Q(merchant__isnull=True) | models.Q(user__isnull=True),
                name="witnesskey_one_holder",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}+{self.key_id:08x}"


class Cosignature(models.Model):
    """A witness's verified cosignature line over one checkpoint (one per witness)."""

    checkpoint = models.ForeignKey(
        Checkpoint, on_delete=models.PROTECT, related_name="cosignatures"
    )
    witness = models.ForeignKey(WitnessKey, on_delete=models.PROTECT, related_name="cosignatures")
    line = models.TextField(help_text=_("The signature line, as appended to the note."))
    timestamp = models.BigIntegerField(help_text=_("When the witness cosigned (Unix seconds)."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("cosignature")
        verbose_name_plural = _("cosignatures")
        constraints = [
            models.UniqueConstraint(fields=["checkpoint", "witness"],
                                    name="cosignature_one_per_witness")
        ]
        triggers = [pgtrigger.Protect(name="cosignature_append_only",
                                      operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.witness} on {self.checkpoint}"
