"""Member merchants (商家), their stores and staff, API keys, deposits, departures and the
members they bring along from their old points system."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from alliance.storage import private_storage


class Merchant(models.Model):
    """A member of the alliance that issues its own brand points."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        LEAVING = "leaving", _("Leaving")
        LEFT = "left", _("Left")

    name_zh = models.CharField(_("name (Chinese)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120)
    slug = models.SlugField(unique=True)
    legal_name = models.CharField(_("legal name"), max_length=200, blank=True)
    licence_number = models.CharField(
        _("business licence number"), max_length=64, unique=True, null=True, blank=True
    )
    category = models.CharField(_("category"), max_length=60, blank=True)
    district = models.ForeignKey(
        "alliance.District", on_delete=models.PROTECT, related_name="merchants",
        verbose_name=_("district"),
    )
    rebate_rate = models.DecimalField(
        _("rebate rate"), max_digits=5, decimal_places=4, default=Decimal("0.1000"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text=_("Share of each purchase given back (让利), e.g. 0.1000 for 10%."),
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.ACTIVE
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.name_en


class Store(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="stores")
    name = models.CharField(_("name"), max_length=120)
    address = models.CharField(_("address"), max_length=250)
    latitude = models.DecimalField(_("latitude"), max_digits=9, decimal_places=6)
    longitude = models.DecimalField(_("longitude"), max_digits=9, decimal_places=6)
    hours = models.CharField(_("opening hours"), max_length=120, blank=True)

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.name


class StaffMembership(models.Model):
    """A user's role at one merchant. Owners manage staff, keys and the deposit; managers
    configure the store; cashiers record purchases and validate vouchers."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        MANAGER = "manager", _("Manager")
        CASHIER = "cashier", _("Cashier")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="staff")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="merchant_roles"
    )
    role = models.CharField(_("role"), max_length=10, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("staff membership")
        verbose_name_plural = _("staff memberships")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "user"], name="staff_once_per_merchant")
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.merchant} · {self.role}"


class ApiKey(models.Model):
    """A merchant system's key to the REST API (a till, an online shop).

    The key is shown once, when it is made; only its SHA-256 is kept (the key carries 192 random
    bits, so a fast hash is enough: there is nothing to brute-force). ``prefix`` is the public
    part of the key, used to find the row and to tell keys apart on the dashboard."""

    class Scope(models.TextChoices):
        PURCHASES = "purchases", _("Record purchases and refunds")
        HOLDS = "holds", _("Hold, capture and void points")
        VOUCHERS = "vouchers", _("Validate vouchers")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(_("name"), max_length=80)
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(_("scopes"), default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def get_scopes_display(self) -> list[str]:
        labels = dict(self.Scope.choices)
        return [str(labels.get(scope, scope)) for scope in self.scopes]


class StaffInvitation(models.Model):
    """An invitation by email to join a merchant's staff. The link carries a random token of
    which only the SHA-256 is kept; the person accepting must have verified that address."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(_("email address"))
    role = models.CharField(_("role"), max_length=10, choices=StaffMembership.Role.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+",
        verbose_name=_("invited by"),
    )
    created_at = models.DateTimeField(_("invited"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    revoked_at = models.DateTimeField(_("withdrawn"), null=True, blank=True)

    class Meta:
        verbose_name = _("staff invitation")
        verbose_name_plural = _("staff invitations")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"), "merchant",
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.merchant} ({self.role})"

    @property
    def state(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "withdrawn"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


class DepositWatch(models.Model):
    """The deposit level last seen for a merchant, so that its owner is mailed once when the
    deposit falls below the warning or the minimum level, not on every purchase."""

    class Level(models.TextChoices):
        OK = "ok", _("Sufficient")
        WARNING = "warning", _("Below the warning level")
        BELOW_MINIMUM = "below_minimum", _("Below the minimum")

    merchant = models.OneToOneField(
        Merchant, on_delete=models.CASCADE, related_name="deposit_watch"
    )
    level = models.CharField(max_length=16, choices=Level.choices, default=Level.OK)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("deposit watch")
        verbose_name_plural = _("deposit watches")

    def __str__(self) -> str:
        return f"{self.merchant}: {self.level}"


class LeaveRequest(models.Model):
    """A merchant asking to leave the alliance and to have its deposit back (退盟). Staff
    decide; approval returns the deposit to the merchant's SHARED wallet and the merchant is
    LEFT. Every state is kept (history)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for the alliance")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        CANCELLED = "cancelled", _("Cancelled")

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="leave_requests")
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    reason = models.TextField(_("reason"), blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("requested by"),
    )
    requested_at = models.DateTimeField(_("requested"), default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+", verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decision_note = models.TextField(_("note from the alliance"), blank=True)
    refunded = models.BigIntegerField(_("deposit returned (minor units)"), null=True, blank=True)
    refund_transaction = models.ForeignKey(
        "ledger.Transaction", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("leave request")
        verbose_name_plural = _("leave requests")
        ordering = ["-requested_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant"], condition=models.Q(status="pending"),
                name="leave_request_one_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.merchant} leaving ({self.status})"


def import_upload_path(instance: "MemberImport", filename: str) -> str:
    return f"imports/{instance.merchant_id}/{timezone.now():%Y%m}/{instance.sha256}.csv"


class MemberImport(models.Model):
    """A CSV of a merchant's existing members and balances (phone or email, balance, optional
    expiry), checked in a dry run before anything is written. Committing posts one ledger
    transaction per batch of rows from the merchant's issuance into its pending-claims account,
    each recording the file's SHA-256; one file is imported once per merchant."""

    class Status(models.TextChoices):
        CHECKED = "checked", _("Checked, ready to import")
        RUNNING = "running", _("Importing")
        COMMITTED = "committed", _("Imported")
        FAILED = "failed", _("Failed")

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="imports")
    asset = models.ForeignKey("ledger.Asset", on_delete=models.PROTECT, related_name="+")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+",
    )
    filename = models.CharField(_("file"), max_length=200)
    file = models.FileField(upload_to=import_upload_path, storage=private_storage,
                            max_length=200)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.CHECKED
    )
    row_count = models.PositiveIntegerField(_("rows"), default=0)
    total = models.BigIntegerField(_("total (minor units)"), default=0)
    rows_done = models.PositiveIntegerField(_("rows imported"), default=0)
    transaction_ids = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(_("uploaded"), default=timezone.now)
    committed_at = models.DateTimeField(_("imported"), null=True, blank=True)

    class Meta:
        verbose_name = _("member import")
        verbose_name_plural = _("member imports")
        ordering = ["-created_at", "-pk"]
        constraints = [
            # The same file twice would credit its members twice.
            models.UniqueConstraint(
                fields=["merchant", "sha256"],
                condition=models.Q(status__in=["running", "committed"]),
                name="member_import_file_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.merchant} import {self.sha256[:12]}"

    @property
    def progress_percent(self) -> int:
        return int(100 * self.rows_done / self.row_count) if self.row_count else 100


class PendingClaim(models.Model):
    """An imported member's balance waiting for its holder: whoever signs in with that
    verified phone number or email address claims it into their wallet."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        CLAIMED = "claimed", _("Claimed")
        EXPIRED = "expired", _("Expired")

    # No database foreign keys on these two: an import writes up to millions of claims with
    # COPY, and the per-row referential checks doubled its time. Claims are written only by
    # the import service, in the transaction that holds their (never deleted) import row.
    member_import = models.ForeignKey(
        MemberImport, on_delete=models.PROTECT, related_name="claims", db_constraint=False
    )
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="+", db_index=False,
        db_constraint=False,
    )
    row_number = models.PositiveIntegerField()
    phone = models.CharField(max_length=20, null=True, blank=True)
    email = models.CharField(max_length=254, null=True, blank=True)
    amount = models.BigIntegerField(_("balance (minor units)"))
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+", db_index=False,
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    settled_by = models.ForeignKey(
        "ledger.Transaction", on_delete=models.PROTECT, null=True, blank=True,
        related_name="+", db_index=False,
    )

    class Meta:
        verbose_name = _("pending claim")
        verbose_name_plural = _("pending claims")
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="claim_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(phone__isnull=False) | models.Q(email__isnull=False),
                name="claim_has_phone_or_email",
            ),
        ]
        indexes = [
            # Partial: only waiting claims that have the column, so an import of a million
            # phone numbers does not also fill the email index with a million NULLs.
            models.Index(fields=["phone"], name="claim_waiting_phone",
                         condition=models.Q(status="pending", phone__isnull=False)),
            models.Index(fields=["email"], name="claim_waiting_email",
                         condition=models.Q(status="pending", email__isnull=False)),
            models.Index(fields=["expires_at"], name="claim_waiting_expiry",
                         condition=models.Q(status="pending", expires_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"claim #{self.pk} {self.status}"
from .webhook_models import WebhookDelivery, WebhookEndpoint  # noqa: E402, F401  (webhooks)
