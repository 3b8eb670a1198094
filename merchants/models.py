"""Member merchants (商家), their stores and their staff."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


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
