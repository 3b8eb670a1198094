"""Earning: the rules that turn a purchase into points, member tiers, and the purchases
(共享购) and refunds recorded by merchants."""

import hashlib
import json
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["EarningRule", "MemberTier", "Purchase", "Refund"]


class EarningRule(models.Model):
    """One version of a merchant's earning rule. Versions are never edited: a change is a new
    version, and the one active version's ``content_hash`` is recorded in every earning
    transaction it produced.

    ``multipliers`` is JSON: ``{"time_windows": [{"weekdays": [0..6], "start": "HH:MM",
    "end": "HH:MM", "multiplier": "2"}], "categories": {"coffee": "1.5"},
    "tiers": {"gold": "1.2"}}``; multipliers that apply are multiplied together.
    """

    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.CASCADE, related_name="earning_rules"
    )
    version = models.PositiveIntegerField(_("version"))
    base_rate = models.DecimalField(
        _("points per CNY"), max_digits=10, decimal_places=4,
        help_text=_("Brand points earned for each CNY spent, before multipliers."),
    )
    multipliers = models.JSONField(_("multipliers"), default=dict, blank=True)
    daily_cap = models.PositiveBigIntegerField(
        _("daily cap per shopper"), null=True, blank=True,
        help_text=_("Most points one shopper can earn in a day; empty for no cap."),
    )
    budget = models.PositiveBigIntegerField(
        _("budget"), null=True, blank=True,
        help_text=_("Most points this rule may ever give; empty for no budget."),
    )
    budget_used = models.PositiveBigIntegerField(_("budget used"), default=0)
    active = models.BooleanField(_("active"), default=True)
    content_hash = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("earning rule")
        verbose_name_plural = _("earning rules")
        ordering = ["merchant", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "version"], name="rule_version_unique"),
            models.UniqueConstraint(fields=["merchant"], condition=models.Q(active=True),
                                    name="rule_one_active_per_merchant"),
            models.CheckConstraint(condition=models.Q(budget__isnull=True)
                                   | models.Q(budget_used__lte=models.F("budget")),
                                   name="rule_budget_not_exceeded"),
        ]

    def __str__(self) -> str:
        return f"{self.merchant} rule v{self.version}"

    def content(self) -> dict:
        return {
            "merchant": self.merchant_id, "version": self.version,
            "base_rate": str(self.base_rate), "multipliers": self.multipliers,
            "daily_cap": self.daily_cap, "budget": self.budget,
        }

    def compute_hash(self) -> str:
        raw = json.dumps(self.content(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()


class MemberTier(models.Model):
    """A merchant's member tier, reached by trailing 12-month spend at that merchant."""

    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.CASCADE, related_name="tiers"
    )
    code = models.SlugField(_("code"), max_length=30)
    name_zh = models.CharField(_("name (Chinese)"), max_length=40)
    name_en = models.CharField(_("name (English)"), max_length=40)
    threshold = models.DecimalField(
        _("12-month spend (CNY)"), max_digits=12, decimal_places=2,
        help_text=_("Spend in the last 12 months that reaches this tier."),
    )

    class Meta:
        verbose_name = _("member tier")
        verbose_name_plural = _("member tiers")
        ordering = ["merchant", "threshold"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "code"], name="tier_code_unique"),
            models.UniqueConstraint(fields=["merchant", "threshold"],
                                    name="tier_threshold_unique"),
        ]

    def __str__(self) -> str:
        return self.name_en


class Purchase(models.Model):
    """A purchase a merchant recorded for a shopper (SPEC §4.1), with what it produced."""

    # Indexed first in the unique (merchant, idempotency key) and in purchase_merchant_shopper.
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="purchases", db_index=False
    )
    shopper = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="purchases"
    )
    # Indexed where set (purchase_store): most purchases name no store.
    store = models.ForeignKey(
        "merchants.Store", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        db_index=False,
    )
    order_ref = models.CharField(_("order reference"), max_length=100)
    idempotency_key = models.CharField(max_length=128)
    amount = models.DecimalField(_("amount (CNY)"), max_digits=12, decimal_places=2)
    lines = models.JSONField(_("lines"), default=list, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    transaction = models.OneToOneField(
        "ledger.Transaction", on_delete=models.PROTECT, related_name="purchase"
    )
    rule = models.ForeignKey(
        EarningRule, on_delete=models.PROTECT, null=True, blank=True, related_name="purchases"
    )
    points = models.BigIntegerField(_("points earned"))
    rebate = models.DecimalField(_("rebate (CNY)"), max_digits=14, decimal_places=2)
    sv_shopper = models.BigIntegerField(_("share value to the shopper (minor units)"))
    sv_merchant = models.BigIntegerField(_("share value to the merchant (minor units)"))
    shared_burned = models.BigIntegerField(_("SHARED burned (minor units)"))
    refunded_amount = models.DecimalField(
        _("refunded (CNY)"), max_digits=12, decimal_places=2, default=Decimal("0")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("purchase")
        verbose_name_plural = _("purchases")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "idempotency_key"],
                                    name="purchase_idempotency_unique"),
            models.CheckConstraint(condition=models.Q(refunded_amount__lte=models.F("amount")),
                                   name="purchase_refund_within_amount"),
        ]
        indexes = [
            # Covering the shopper's spend and points at a merchant over a period (the tier's
            # trailing year, the daily cap): read from the index alone, not row by row.
            models.Index(fields=["merchant", "shopper", "occurred_at"],
                         include=["amount", "points"], name="purchase_merchant_shopper"),
            models.Index(fields=["store"], condition=models.Q(store__isnull=False),
                         name="purchase_store"),
        ]

    def __str__(self) -> str:
        return f"{self.merchant} {self.order_ref} CNY {self.amount}"


class Refund(models.Model):
    """A whole or partial refund of a purchase, reversing its points, SV and burn in
    proportion. ``shortfall`` is what the shopper no longer had and the merchant absorbed."""

    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(_("amount (CNY)"), max_digits=12, decimal_places=2)
    idempotency_key = models.CharField(max_length=128)
    transaction = models.OneToOneField(
        "ledger.Transaction", on_delete=models.PROTECT, related_name="refund"
    )
    points = models.BigIntegerField(_("points reversed"))
    sv_shopper = models.BigIntegerField()
    sv_merchant = models.BigIntegerField()
    shared_unburned = models.BigIntegerField()
    shortfall_points = models.BigIntegerField(_("points absorbed by the merchant"), default=0)
    shortfall_sv = models.BigIntegerField(_("share value absorbed"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            models.UniqueConstraint(fields=["purchase", "idempotency_key"],
                                    name="refund_idempotency_unique"),
        ]

    def __str__(self) -> str:
        return f"refund {self.amount} of {self.purchase_id}"
