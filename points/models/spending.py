"""Spending (SPEC §4.5): cash deduction at the till (积分抵扣), the redemption catalog and its
vouchers (兑换商品), exchange between merchants' points (积分互通) and provably fair
lotteries (抽奖).

Value moves only through ``ledger.services``; these rows record what was asked, what it cost
and which ledger transaction carried it. Services in ``points.holds``, ``points.catalog``,
``points.exchange`` and ``points.lottery`` are the only writers.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

__all__ = [
    "CashDeduction",
    "CatalogItem",
    "Exchange",
    "LotteryCampaign",
    "LotteryDraw",
    "LotteryParticipant",
    "PrizeTier",
    "SpendingSettings",
    "Voucher",
]


class SpendingSettings(models.Model):
    """A merchant's spending choices: how much of an order its points may pay, and whether
    (and how much a day) its points take part in the exchange between merchants."""

    merchant = models.OneToOneField(
        "merchants.Merchant", on_delete=models.CASCADE, related_name="spending_settings"
    )
    max_deduction_ratio = models.DecimalField(
        _("cash deduction ratio"), max_digits=5, decimal_places=4, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text=_("Share of an order the merchant's points may pay; empty for the "
                    "alliance's maximum, which always applies as a ceiling."),
    )
    exchange_opted_in = models.BooleanField(
        _("take part in the exchange"), default=False,
        help_text=_("Shoppers may exchange this merchant's points for other members' points "
                    "and back; settlement is paid from and into the deposit."),
    )
    exchange_daily_cap = models.DecimalField(
        _("daily exchange cap (CNY)"), max_digits=14, decimal_places=2,
        default=Decimal("10000.00"), validators=[MinValueValidator(Decimal("0"))],
        help_text=_("Most value, in CNY, exchanged in or out of this merchant's points in one "
                    "day (alliance time zone)."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("spending settings")
        verbose_name_plural = _("spending settings")
        constraints = [
            models.CheckConstraint(condition=models.Q(exchange_daily_cap__gte=0),
                                   name="spending_daily_cap_non_negative"),
        ]

    def __str__(self) -> str:
        return f"spending settings of {self.merchant_id}"


class CashDeduction(models.Model):
    """积分抵扣: a till's hold of a shopper's brand points against one order. The ledger's
    ``Hold`` carries the points; this row says whose till placed it and for which order, so a
    merchant reaches only its own holds."""

    hold = models.OneToOneField(
        "ledger.Hold", on_delete=models.PROTECT, related_name="cash_deduction"
    )
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="cash_deductions"
    )
    shopper = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                related_name="+")
    order_total = models.DecimalField(_("order total (CNY)"), max_digits=14, decimal_places=2)
    order_ref = models.CharField(_("order reference"), max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("cash deduction")
        verbose_name_plural = _("cash deductions")
        indexes = [models.Index(fields=["merchant", "created_at"], name="deduction_merchant")]

    def __str__(self) -> str:
        return f"deduction hold #{self.hold_id}"


def catalog_image_path(instance: "CatalogItem", filename: str) -> str:
    extension = filename[filename.rfind("."):].lower() if "." in filename else ""
    return f"catalog/{instance.merchant_id}/{timezone.now():%Y%m}/{instance.image_sha256}" \
           f"{extension}"


class CatalogItem(models.Model):
    """Goods a merchant offers for points (兑换商品): a price in its brand points or in SHARED,
    a stock that redemptions take one at a time, an optional per-shopper limit, a window in
    which it can be redeemed, and how long the voucher it gives stays valid."""

    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="catalog_items",
        verbose_name=_("merchant"),
    )
    name_zh = models.CharField(_("name (Chinese)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    image = models.FileField(_("image"), upload_to=catalog_image_path, blank=True,
                             max_length=200)
    image_type = models.CharField(max_length=32, blank=True, editable=False)
    image_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    price_asset = models.ForeignKey(
        "ledger.Asset", on_delete=models.PROTECT, related_name="+", verbose_name=_("paid in")
    )
    price = models.BigIntegerField(_("price (minor units)"))
    stock = models.PositiveIntegerField(_("stock"))
    per_shopper_limit = models.PositiveIntegerField(
        _("limit per shopper"), null=True, blank=True,
        help_text=_("How many one shopper may redeem; empty for no limit."),
    )
    available_from = models.DateTimeField(_("available from"), null=True, blank=True)
    available_until = models.DateTimeField(_("available until"), null=True, blank=True)
    voucher_valid_days = models.PositiveSmallIntegerField(
        _("voucher valid for (days)"), default=30,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
    )
    refundable = models.BooleanField(
        _("refundable"), default=True,
        help_text=_("An unused voucher can be cancelled and its points returned."),
    )
    active = models.BooleanField(_("listed"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("catalog item")
        verbose_name_plural = _("catalog items")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gt=0), name="catalog_price_positive"),
            models.CheckConstraint(condition=models.Q(per_shopper_limit__isnull=True)
                                   | models.Q(per_shopper_limit__gt=0),
                                   name="catalog_limit_positive"),
            models.CheckConstraint(
                condition=models.Q(available_from__isnull=True)
                | models.Q(available_until__isnull=True)
                | models.Q(available_until__gt=models.F("available_from")),
                name="catalog_window_ordered",
            ),
        ]
        indexes = [models.Index(fields=["merchant", "active"], name="catalog_merchant_active")]

    def __str__(self) -> str:
        return self.name_en or self.name_zh

    def is_available(self, now=None) -> bool:
        now = now or timezone.now()
        return (self.active
                and (self.available_from is None or self.available_from <= now)
                and (self.available_until is None or now < self.available_until))


class Voucher(models.Model):
    """What a redemption (or a lottery prize) gives the shopper: a unique code, shown as a QR,
    that the merchant's staff validate once before it expires."""

    class State(models.TextChoices):
        ISSUED = "issued", _("Ready to use")
        USED = "used", _("Used")
        CANCELLED = "cancelled", _("Cancelled and refunded")
        EXPIRED = "expired", _("Expired")

    class Source(models.TextChoices):
        CATALOG = "catalog", _("Redeemed from the catalog")
        LOTTERY = "lottery", _("Won in a lottery")

    class Channel(models.TextChoices):
        DASHBOARD = "dashboard", _("Dashboard")
        API = "api", _("API")

    code = models.CharField(_("code"), max_length=16, unique=True)
    item = models.ForeignKey(CatalogItem, on_delete=models.PROTECT, related_name="vouchers",
                             verbose_name=_("item"))
    # The item's merchant, copied so the till's lookup (code and merchant) is one index.
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT,
                                 related_name="vouchers")
    shopper = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                related_name="vouchers")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.CATALOG)
    price_asset = models.ForeignKey("ledger.Asset", on_delete=models.PROTECT, null=True,
                                    blank=True, related_name="+")
    price = models.BigIntegerField(_("paid (minor units)"), default=0)
    state = models.CharField(_("state"), max_length=10, choices=State.choices,
                             default=State.ISSUED)
    issued_at = models.DateTimeField(_("issued"), default=timezone.now)
    expires_at = models.DateTimeField(_("valid until"))
    used_at = models.DateTimeField(_("used"), null=True, blank=True)
    used_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                                blank=True, related_name="+")
    used_via = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    # Where it was accepted, when the till names its store (``voucher.redeemed`` carries it).
    used_store = models.ForeignKey("merchants.Store", on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+", verbose_name=_("store"))
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)
    payment = models.OneToOneField("ledger.Transaction", on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+")
    refund = models.OneToOneField("ledger.Transaction", on_delete=models.PROTECT, null=True,
                                  blank=True, related_name="+")

    class Meta:
        verbose_name = _("voucher")
        verbose_name_plural = _("vouchers")
        ordering = ["-issued_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["shopper", "idempotency_key"],
                                    condition=models.Q(idempotency_key__isnull=False),
                                    name="voucher_idempotency_unique"),
            models.CheckConstraint(condition=models.Q(price__gte=0),
                                   name="voucher_price_non_negative"),
        ]
        indexes = [
            models.Index(fields=["item", "shopper"], name="voucher_item_shopper"),
            models.Index(fields=["shopper", "state"], name="voucher_shopper_state"),
            models.Index(fields=["state", "expires_at"], name="voucher_state_expiry"),
        ]

    def __str__(self) -> str:
        return self.display_code

    @property
    def display_code(self) -> str:
        """``ABCD-EFGH-JKMN``: easier to read out at a till."""
        return "-".join(self.code[i:i + 4] for i in range(0, len(self.code), 4))

    def effective_state(self, now=None) -> str:
        """The state a person should see: an issued voucher past its date is expired even
        before the expiry job marks it."""
        now = now or timezone.now()
        if self.state == self.State.ISSUED and self.expires_at <= now:
            return self.State.EXPIRED
        return self.state


class Exchange(models.Model):
    """积分互通: one shopper's exchange of merchant A's points for merchant B's. The ledger
    transaction retires A's points, issues B's and pays B the value in SHARED from A's
    deposit; this row keeps the figures shown to the shopper and counts toward the caps."""

    shopper = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                related_name="exchanges")
    source_merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT,
                                        related_name="+")
    target_merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT,
                                        related_name="+")
    source_asset = models.ForeignKey("ledger.Asset", on_delete=models.PROTECT, related_name="+")
    target_asset = models.ForeignKey("ledger.Asset", on_delete=models.PROTECT, related_name="+")
    amount_in = models.BigIntegerField(_("given (minor units of A)"))
    amount_out = models.BigIntegerField(_("received (minor units of B)"))
    # CNY to 6 places, truncated: what the shopper gave and what the points received are
    # worth; their difference is the rounding (less than one minor unit of B).
    value_in = models.DecimalField(_("value given (CNY)"), max_digits=20, decimal_places=6)
    value_out = models.DecimalField(_("value received (CNY)"), max_digits=20, decimal_places=6)
    settlement = models.BigIntegerField(_("settlement (SHARED minor units)"))
    reference_price = models.DecimalField(max_digits=12, decimal_places=4)
    day = models.DateField(_("day"))
    transaction = models.OneToOneField("ledger.Transaction", on_delete=models.PROTECT,
                                       related_name="+")
    idempotency_key = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("exchange")
        verbose_name_plural = _("exchanges")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["shopper", "idempotency_key"],
                                    name="exchange_idempotency_unique"),
            models.CheckConstraint(condition=models.Q(amount_in__gt=0)
                                   & models.Q(amount_out__gt=0) & models.Q(settlement__gte=0),
                                   name="exchange_amounts_positive"),
            models.CheckConstraint(condition=~models.Q(source_merchant=models.F("target_merchant")),
                                   name="exchange_two_merchants"),
        ]
        indexes = [
            models.Index(fields=["source_merchant", "day"], name="exchange_source_day"),
            models.Index(fields=["target_merchant", "day"], name="exchange_target_day"),
        ]

    def __str__(self) -> str:
        return f"exchange #{self.pk}"


class LotteryCampaign(models.Model):
    """抽奖: a merchant's lottery. Provably fair: when it opens, ``commitment`` =
    SHA-256(server seed) is published and journalled in the ledger; each draw is derived
    from the seed (``points.lottery``); at close the seed is revealed so anyone can recompute
    every draw. Tiers and weights are frozen once it opens."""

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT,
                                 related_name="lotteries", verbose_name=_("merchant"))
    name_zh = models.CharField(_("name (Chinese)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    asset = models.ForeignKey("ledger.Asset", on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("entry paid in"))
    entry_cost = models.BigIntegerField(_("entry cost (minor units)"))
    state = models.CharField(_("state"), max_length=8, choices=State.choices,
                             default=State.DRAFT)
    # Secret while the campaign is open: never shown until ``state`` is closed.
    server_seed = models.CharField(max_length=64, blank=True, editable=False)
    commitment = models.CharField(_("commitment (SHA-256 of the seed)"), max_length=64,
                                  blank=True, editable=False)
    commitment_transaction = models.OneToOneField(
        "ledger.Transaction", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reveal_transaction = models.OneToOneField(
        "ledger.Transaction", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    opened_at = models.DateTimeField(_("opened"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("lottery campaign")
        verbose_name_plural = _("lottery campaigns")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(entry_cost__gt=0),
                                   name="lottery_entry_cost_positive"),
            models.CheckConstraint(condition=models.Q(state="draft") | ~models.Q(commitment=""),
                                   name="lottery_committed_when_open"),
        ]

    def __str__(self) -> str:
        return self.name_en or self.name_zh

    @property
    def revealed_seed(self) -> str:
        """The seed, once the campaign is closed; empty before."""
        return self.server_seed if self.state == self.State.CLOSED else ""


class PrizeTier(models.Model):
    """One tier of a campaign's prizes. A draw lands on a tier with probability weight / total
    weight; a tier that ran out of stock gives no prize (the documented fallback)."""

    class Kind(models.TextChoices):
        POINTS = "points", _("Points")
        VOUCHER = "voucher", _("Voucher for a catalog item")
        COUPON = "coupon", _("Coupon")
        NOTHING = "nothing", _("No prize")

    campaign = models.ForeignKey(LotteryCampaign, on_delete=models.CASCADE,
                                 related_name="tiers")
    position = models.PositiveSmallIntegerField(_("position"))
    label = models.CharField(_("label"), max_length=80)
    kind = models.CharField(_("prize"), max_length=8, choices=Kind.choices)
    weight = models.PositiveIntegerField(_("weight"))
    # Null for the "no prize" tier, which never runs out.
    stock = models.PositiveIntegerField(_("stock"), null=True, blank=True)
    remaining = models.PositiveIntegerField(_("left"), null=True, blank=True)
    points = models.BigIntegerField(_("points (minor units)"), null=True, blank=True)
    catalog_item = models.ForeignKey(CatalogItem, on_delete=models.PROTECT, null=True,
                                     blank=True, related_name="+", verbose_name=_("item"))
    coupon_text = models.CharField(_("coupon"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("prize tier")
        verbose_name_plural = _("prize tiers")
        ordering = ["campaign", "position"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "position"], name="tier_position_unique"),
            models.CheckConstraint(condition=models.Q(weight__gt=0), name="tier_weight_positive"),
            models.CheckConstraint(
                condition=models.Q(remaining__isnull=True)
                | models.Q(remaining__lte=models.F("stock")),
                name="tier_remaining_within_stock",
            ),
        ]

    def __str__(self) -> str:
        return self.label


class LotteryParticipant(models.Model):
    """A shopper in one campaign: the pseudonym its draws are derived from and the count
    that gives each draw its nonce (1, 2, 3, …)."""

    campaign = models.ForeignKey(LotteryCampaign, on_delete=models.PROTECT,
                                 related_name="participants")
    shopper = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                related_name="+")
    # The public id of the shopper's wallet of the campaign's asset: pseudonymous, already
    # what the explorer shows, so the public recomputation names no person.
    shopper_ref = models.CharField(max_length=24)
    draws = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("lottery participant")
        verbose_name_plural = _("lottery participants")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "shopper"],
                                    name="participant_once_per_campaign"),
        ]

    def __str__(self) -> str:
        return f"{self.shopper_ref} in {self.campaign_id}"


class LotteryDraw(models.Model):
    """One draw: its inputs (shopper pseudonym, nonce), the HMAC it produced, the tier the
    HMAC maps to, and what the shopper got."""

    class Outcome(models.TextChoices):
        WON = "won", _("Won")
        NO_PRIZE = "no_prize", _("No prize")
        OUT_OF_STOCK = "out_of_stock", _("Prize gone: no prize")

    campaign = models.ForeignKey(LotteryCampaign, on_delete=models.PROTECT,
                                 related_name="draws")
    shopper = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                related_name="+")
    shopper_ref = models.CharField(max_length=24)
    nonce = models.PositiveIntegerField()
    digest = models.CharField(_("HMAC-SHA256"), max_length=64)
    ticket = models.BigIntegerField(_("ticket (first 8 bytes mod total weight)"))
    drawn_tier = models.ForeignKey(PrizeTier, on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    prize_points = models.BigIntegerField(default=0)
    coupon_text = models.CharField(max_length=200, blank=True)
    voucher = models.OneToOneField(Voucher, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="lottery_draw")
    entry_transaction = models.OneToOneField("ledger.Transaction", on_delete=models.PROTECT,
                                             related_name="+")
    prize_transaction = models.OneToOneField("ledger.Transaction", on_delete=models.PROTECT,
                                             null=True, blank=True, related_name="+")
    idempotency_key = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("lottery draw")
        verbose_name_plural = _("lottery draws")
        ordering = ["campaign", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "shopper_ref", "nonce"],
                                    name="draw_nonce_unique"),
            models.UniqueConstraint(fields=["campaign", "shopper", "idempotency_key"],
                                    name="draw_idempotency_unique"),
        ]

    def __str__(self) -> str:
        return f"draw {self.shopper_ref}#{self.nonce}"
