"""People and the alliance itself: users with their roles, districts, worker heartbeats;
membership applications, governance (parameters, proposals) and the supervisors' alerts."""

import secrets
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from .storage import private_storage

# Crockford's base32 without I, L, O, U: member codes are read aloud at tills.
MEMBER_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MEMBER_CODE_LENGTH = 10


def new_member_code() -> str:
    return "".join(secrets.choice(MEMBER_CODE_ALPHABET) for _ in range(MEMBER_CODE_LENGTH))


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str | None, password: str | None, **extra) -> "User":
        email = self.normalize_email(email) if email else None
        user = self.model(email=email, **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(
        self, email: str | None = None, password: str | None = None, **extra
    ) -> "User":
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> "User":
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """Anyone with a login. Every user is a shopper (消费者); the flags and merchant staff
    memberships add the other roles (see ``alliance.permissions``)."""

    email = models.EmailField(_("email address"), unique=True, null=True, blank=True)
    phone = models.CharField(
        _("mobile phone"), max_length=20, unique=True, null=True, blank=True,
        help_text=_("E.164, e.g. +8613800138000"),
    )
    phone_verified = models.BooleanField(_("phone verified"), default=False)
    display_name = models.CharField(_("display name"), max_length=80, blank=True)
    member_code = models.CharField(
        _("member code"), max_length=16, unique=True, default=new_member_code, editable=False
    )
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(
        _("Django admin access"), default=False,
        help_text=_("Reaches /admin/ only together with superuser status."),
    )
    is_alliance_staff = models.BooleanField(_("alliance staff"), default=False)
    is_supervisor = models.BooleanField(_("supervisor"), default=False)
    is_council_member = models.BooleanField(_("council member"), default=False)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(email__isnull=False) | models.Q(phone__isnull=False),
                name="user_has_email_or_phone",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.email or self.phone or self.member_code

    def get_full_name(self) -> str:
        return str(self)

    def get_short_name(self) -> str:
        return str(self)


class District(models.Model):
    """A shopping district (商圈) whose merchants form the alliance's neighbourhoods."""

    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)
    slug = models.SlugField(unique=True)

    class Meta:
        verbose_name = _("district")
        verbose_name_plural = _("districts")

    def __str__(self) -> str:
        return self.name_en


class WorkerHeartbeat(models.Model):
    """The last time a Celery worker ran the heartbeat task; ``/healthz`` reports it."""

    worker = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.worker} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"


class AllianceParameter(models.Model):
    """A governed alliance parameter (联盟参数) and its value in force.

    One row per key, written only by ``alliance.parameters.parameter_set`` (a governance
    proposal's execution, or the demo seed); a key without a row is at its default. Every
    change is kept in ``ParameterChange``."""

    key = models.CharField(_("parameter"), max_length=40, unique=True)
    value = models.DecimalField(_("value"), max_digits=20, decimal_places=6)
    updated_at = models.DateTimeField(_("changed at"), default=timezone.now)

    class Meta:
        verbose_name = _("alliance parameter")
        verbose_name_plural = _("alliance parameters")
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key} = {self.value.normalize():f}"


class ParameterChange(models.Model):
    """One change of an alliance parameter: what it was, what it became, who and when.
    Append-only; the governance proposal that made it, when there was one."""

    key = models.CharField(_("parameter"), max_length=40, db_index=True)
    old_value = models.DecimalField(_("old value"), max_digits=20, decimal_places=6)
    new_value = models.DecimalField(_("new value"), max_digits=20, decimal_places=6)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+", verbose_name=_("changed by"),
    )
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)
    note = models.CharField(_("note"), max_length=200, blank=True)
    proposal = models.ForeignKey(
        "alliance.Proposal", on_delete=models.PROTECT, null=True, blank=True,
        related_name="parameter_changes", verbose_name=_("proposal"),
    )

    class Meta:
        verbose_name = _("parameter change")
        verbose_name_plural = _("parameter changes")
        ordering = ["-changed_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.key}: {self.old_value.normalize():f} → {self.new_value.normalize():f}"


def licence_upload_path(instance: "MerchantApplication", filename: str) -> str:
    # The name is ours (a random one with the extension of the detected type): what the
    # applicant called the file never reaches the disk.
    return f"licences/{secrets.token_hex(16)}{filename[filename.rfind('.'):]}"


class MerchantApplication(models.Model):
    """An application to join the alliance (入盟申请), from draft to decision.

    Every saved state is kept (django-simple-history: who, when, why); decisions are also
    journalled in the ledger as events without personal data. Approval creates the merchant."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SUBMITTED = "submitted", _("Submitted")
        CHANGES_REQUESTED = "changes_requested", _("Changes requested")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    class Category(models.TextChoices):
        RESTAURANT = "restaurant", _("Restaurant")
        CAFE = "cafe", _("Café")
        RETAIL = "retail", _("Retail")
        MALL = "mall", _("Mall")
        PARKING = "parking", _("Parking")
        SERVICES = "services", _("Services")
        OTHER = "other", _("Other")

    # The applicant may still edit in these states; staff decide in SUBMITTED only.
    EDITABLE = (Status.DRAFT, Status.CHANGES_REQUESTED)
    OPEN = (Status.DRAFT, Status.SUBMITTED, Status.CHANGES_REQUESTED)

    applicant = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="merchant_applications",
        verbose_name=_("applicant"),
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    name_zh = models.CharField(_("merchant name (Chinese)"), max_length=120)
    name_en = models.CharField(_("merchant name (English)"), max_length=120)
    legal_name = models.CharField(_("legal name"), max_length=200)
    licence_number = models.CharField(_("business licence number"), max_length=64)
    licence_image = models.FileField(
        _("business licence image"), upload_to=licence_upload_path, storage=private_storage,
        blank=True, max_length=200,
    )
    contact_name = models.CharField(_("contact person"), max_length=80)
    contact_phone = models.CharField(_("contact phone"), max_length=20)
    contact_email = models.EmailField(_("contact email"))
    category = models.CharField(_("category"), max_length=20, choices=Category.choices)
    district = models.ForeignKey(
        District, on_delete=models.PROTECT, related_name="+", verbose_name=_("district")
    )
    rebate_rate = models.DecimalField(
        _("rebate rate"), max_digits=5, decimal_places=4,
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal("1"))],
        help_text=_("Share of each purchase given back (让利), e.g. 0.1000 for 10%."),
    )
    asset_code = models.CharField(
        _("point code"), max_length=16,
        help_text=_("2 to 16 capital letters or digits, e.g. BURGER."),
    )
    asset_name_zh = models.CharField(_("point name (Chinese)"), max_length=60)
    asset_name_en = models.CharField(_("point name (English)"), max_length=60)
    units_per_cny = models.DecimalField(
        _("points per CNY"), max_digits=12, decimal_places=4,
        validators=[MinValueValidator(Decimal("0.0001"))],
        help_text=_("How many of your points are worth CNY 1."),
    )
    expiry_months = models.PositiveSmallIntegerField(
        _("expiry (months)"), null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text=_("Points expire at the end of this many months after the month they were "
                    "earned in; empty for never."),
    )
    staff_message = models.TextField(
        _("message from the alliance"), blank=True,
        help_text=_("The changes requested, or the reason for a rejection."),
    )
    applicant_reply = models.TextField(_("your reply"), blank=True)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+", verbose_name=_("decided by"),
    )
    merchant = models.OneToOneField(
        "merchants.Merchant", on_delete=models.PROTECT, null=True, blank=True,
        related_name="application", verbose_name=_("merchant"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("merchant application")
        verbose_name_plural = _("merchant applications")
        ordering = ["-submitted_at", "-pk"]
        constraints = [
            # Two applications in review under one licence would both be approvable.
            models.UniqueConstraint(
                fields=["licence_number"],
                condition=models.Q(status__in=["submitted", "changes_requested", "approved"]),
                name="application_licence_unique_in_review",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name_en}"

    @property
    def editable(self) -> bool:
        return self.status in self.EDITABLE


class ApplicationStore(models.Model):
    """A store the applicant will run, copied to ``merchants.Store`` on approval."""

    application = models.ForeignKey(
        MerchantApplication, on_delete=models.CASCADE, related_name="stores"
    )
    name = models.CharField(_("store name"), max_length=120)
    address = models.CharField(_("address"), max_length=250)
    latitude = models.DecimalField(
        _("latitude"), max_digits=9, decimal_places=6,
        validators=[MinValueValidator(Decimal("-90")), MaxValueValidator(Decimal("90"))],
    )
    longitude = models.DecimalField(
        _("longitude"), max_digits=9, decimal_places=6,
        validators=[MinValueValidator(Decimal("-180")), MaxValueValidator(Decimal("180"))],
    )
    hours = models.CharField(_("opening hours"), max_length=120, blank=True)

    class Meta:
        verbose_name = _("application store")
        verbose_name_plural = _("application stores")
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.name


class Proposal(models.Model):
    """A decision for the council (提案): changing a parameter, allocating SHARED to a member,
    admitting a witness key, suspending or readmitting a merchant. Executed automatically when
    ``threshold`` council members (M of N, the ``council_threshold`` in force when it was made)
    have approved; proposals, approvals and executions are journalled as ledger events."""

    class Kind(models.TextChoices):
        SET_PARAMETER = "set_parameter", _("Change a parameter")
        ALLOCATE_SHARED = "allocate_shared", _("Allocate SHARED to a merchant")
        ADMIT_WITNESS_KEY = "admit_witness_key", _("Admit a witness key")
        SUSPEND_MERCHANT = "suspend_merchant", _("Suspend a merchant")
        READMIT_MERCHANT = "readmit_merchant", _("Readmit a merchant")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        EXECUTED = "executed", _("Executed")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    payload = models.JSONField(_("what"), default=dict)
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, null=True, blank=True,
        related_name="proposals", verbose_name=_("merchant"),
    )
    reason = models.TextField(_("reason"), blank=True)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("proposed by"),
    )
    threshold = models.PositiveSmallIntegerField(_("approvals needed"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    created_at = models.DateTimeField(_("proposed"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    outcome = models.JSONField(_("outcome"), default=dict, blank=True)

    class Meta:
        verbose_name = _("proposal")
        verbose_name_plural = _("proposals")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()}"


class ProposalApproval(models.Model):
    """One council member's approval of a proposal; one per member."""

    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="approvals")
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("council member"),
    )
    created_at = models.DateTimeField(_("approved"), default=timezone.now)

    class Meta:
        verbose_name = _("proposal approval")
        verbose_name_plural = _("proposal approvals")
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["proposal", "member"], name="approval_once_per_member")
        ]

    def __str__(self) -> str:
        return f"{self.member} approves #{self.proposal_id}"


class Alert(models.Model):
    """Something a supervisor (监管节点) should look at: a deposit below its level, issuance
    far above its trailing average, a suspected abuse pattern. Raised once per ``key``;
    acknowledged by a supervisor or alliance staff."""

    class Kind(models.TextChoices):
        DEPOSIT_LOW = "deposit_low", _("Deposit low")
        ISSUANCE_SPIKE = "issuance_spike", _("Issuance spike")
        ABUSE = "abuse", _("Abuse flag")

    class Severity(models.TextChoices):
        WARNING = "warning", _("Warning")
        CRITICAL = "critical", _("Critical")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, db_index=True)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, null=True, blank=True,
        related_name="alerts", verbose_name=_("merchant"),
    )
    key = models.CharField(max_length=120, unique=True, help_text=_("One alert per key."))
    details = models.JSONField(_("details"), default=dict, blank=True)
    raised_at = models.DateTimeField(_("raised"), default=timezone.now, db_index=True)
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+", verbose_name=_("acknowledged by"),
    )
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-raised_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.key}"
