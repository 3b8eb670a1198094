"""Forms of the spending pages. They parse what people type (amounts in major units, the
picture checked by its bytes); the services decide and write."""

import uuid
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from alliance.errors import DomainError
from ledger.models import Asset

from .catalog import catalog_image_check, catalog_price_assets
from .models import CatalogItem, PrizeTier
from .spending import amount_parse, brand_asset


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


class IdempotentForm(forms.Form):
    """A form that moves value carries a key made when it was drawn, so a double click or a
    resubmission posts once."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=128)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", new_idempotency_key())


def _amount(value, asset: Asset, field: str) -> int:
    try:
        return amount_parse(value, asset, field=field)
    except DomainError as exc:
        raise ValidationError(str(exc.message)) from None


class AssetChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Asset) -> str:
        return f"{obj.code} · {obj.name}"


class CatalogItemForm(forms.ModelForm):
    price_asset = AssetChoiceField(queryset=Asset.objects.none(), label=_("Paid in"))
    price = forms.DecimalField(label=_("Price"), min_value=Decimal("0"), max_digits=20,
                               decimal_places=2,
                               help_text=_("In the chosen points: whole brand points, SHARED "
                                           "to the cent."))
    image = forms.FileField(label=_("Picture"), required=False,
                            help_text=_("PNG, JPEG, GIF or WebP, at most 2 MB."))
    available_from = forms.DateTimeField(
        label=_("Available from"), required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    available_until = forms.DateTimeField(
        label=_("Available until"), required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))

    class Meta:
        model = CatalogItem
        fields = ["name_zh", "name_en", "description", "price_asset", "price", "stock",
                  "per_shopper_limit", "available_from", "available_until",
                  "voucher_valid_days", "refundable", "active"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, merchant, **kwargs):
        super().__init__(*args, **kwargs)
        self.merchant = merchant
        assets = catalog_price_assets(merchant)
        self.fields["price_asset"].queryset = Asset.objects.filter(
            pk__in=[a.pk for a in assets])
        if not self.is_bound:
            if self.instance.pk:
                self.initial["price"] = self.instance.price_asset.to_major(self.instance.price)
            else:
                self.initial["price_asset"] = assets[0].pk

    def clean_image(self):
        upload = self.cleaned_data.get("image")
        if upload:
            catalog_image_check(upload)
        return upload

    def clean(self):
        data = super().clean()
        asset, price = data.get("price_asset"), data.get("price")
        if asset is not None and price is not None:
            try:
                data["price"] = _amount(price, asset, "price")
            except ValidationError as exc:
                self.add_error("price", exc)
        start, end = data.get("available_from"), data.get("available_until")
        if start and end and end <= start:
            self.add_error("available_until", _("The end must come after the start."))
        return data

    def service_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class VoucherLookupForm(forms.Form):
    code = forms.CharField(
        label=_("Voucher code"), max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters",
                                      "placeholder": "ABCD-EFGH-JKMN", "autofocus": True}),
    )


class RedeemForm(IdempotentForm):
    pass


class ExchangeForm(IdempotentForm):
    # The page draws the widgets by hand (not crispy): they carry Bootstrap's classes.
    source = forms.ChoiceField(label=_("Give"),
                               widget=forms.Select(attrs={"class": "form-select"}))
    target = forms.ChoiceField(label=_("Receive"),
                               widget=forms.Select(attrs={"class": "form-select"}))
    amount = forms.CharField(label=_("Points to give"), max_length=30,
                             widget=forms.TextInput(attrs={"inputmode": "decimal",
                                                           "class": "form-control"}))
    expected_amount_out = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, sources: list[Asset], targets: list[Asset], **kwargs):
        super().__init__(*args, **kwargs)
        # The quote is asked for without a key; the confirmation carries one (the service
        # refuses a confirmation without it).
        self.fields["idempotency_key"].required = False
        self.assets = {a.code: a for a in [*sources, *targets]}
        self.fields["source"].choices = [(a.code, f"{a.code} · {a.name}") for a in sources]
        self.fields["target"].choices = [(a.code, f"{a.code} · {a.name}") for a in targets]

    def clean(self):
        data = super().clean()
        source = self.assets.get(data.get("source", ""))
        target = self.assets.get(data.get("target", ""))
        if source is None or target is None:
            return data
        data["source_asset"], data["target_asset"] = source, target
        if data.get("amount"):
            try:
                data["amount_minor"] = _amount(data["amount"], source, "amount")
            except ValidationError as exc:
                self.add_error("amount", exc)
        expected = data.get("expected_amount_out")
        data["expected_minor"] = None
        if expected:
            try:
                data["expected_minor"] = _amount(expected, target, "expected_amount_out")
            except ValidationError:
                data["expected_minor"] = None
        return data


class SpendingSettingsForm(forms.Form):
    exchange_opted_in = forms.BooleanField(
        label=_("Take part in the exchange"), required=False,
        help_text=_("Shoppers may exchange your points for other members' points and back. "
                    "You pay for points exchanged out of yours from your deposit, and are "
                    "paid into it for points exchanged into yours."))
    exchange_daily_cap = forms.DecimalField(
        label=_("Daily exchange cap (CNY)"), min_value=Decimal("0"), max_digits=14,
        decimal_places=2, help_text=_("Counted over exchanges in and out of your points."))
    deduction_percent = forms.DecimalField(
        label=_("Cash deduction (percentage of an order)"), required=False, min_value=Decimal("0"),
        max_value=Decimal("100"), decimal_places=2,
        help_text=_("Empty for the alliance's maximum, which always applies as a ceiling."))

    def ratio(self) -> Decimal | None:
        percent = self.cleaned_data.get("deduction_percent")
        return None if percent is None else (percent / 100).quantize(Decimal("0.0001"))


class LotteryCampaignForm(forms.Form):
    name_zh = forms.CharField(label=_("Name (Chinese)"), max_length=120)
    name_en = forms.CharField(label=_("Name (English)"), max_length=120)
    description = forms.CharField(label=_("Description"), required=False,
                                  widget=forms.Textarea(attrs={"rows": 3}))
    entry_cost = forms.DecimalField(label=_("Entry cost (your points)"), min_value=Decimal("0"),
                                    max_digits=20, decimal_places=2)

    def __init__(self, *args, merchant, **kwargs):
        super().__init__(*args, **kwargs)
        self.asset = brand_asset(merchant)

    def clean_entry_cost(self):
        return _amount(self.cleaned_data["entry_cost"], self.asset, "entry_cost")


class PrizeTierForm(forms.Form):
    label = forms.CharField(label=_("Label"), max_length=80)
    kind = forms.ChoiceField(label=_("Prize"), choices=PrizeTier.Kind.choices)
    weight = forms.IntegerField(label=_("Weight"), min_value=1, max_value=10**9)
    stock = forms.IntegerField(label=_("Stock"), min_value=0, max_value=10**9, required=False)
    points = forms.DecimalField(label=_("Points won"), required=False, min_value=Decimal("0"),
                                max_digits=20, decimal_places=2)
    catalog_item = forms.ModelChoiceField(label=_("Catalog item"), required=False,
                                          queryset=CatalogItem.objects.none())
    coupon_text = forms.CharField(label=_("Coupon"), max_length=200, required=False)

    def __init__(self, *args, merchant, **kwargs):
        super().__init__(*args, **kwargs)
        self.asset = brand_asset(merchant)
        self.fields["catalog_item"].queryset = CatalogItem.objects.filter(merchant=merchant)

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind and kind != PrizeTier.Kind.NOTHING and data.get("stock") is None:
            self.add_error("stock", _("A prize needs a stock."))
        if kind == PrizeTier.Kind.POINTS:
            if data.get("points") is None:
                self.add_error("points", _("How many points does this prize give?"))
            else:
                try:
                    data["points"] = _amount(data["points"], self.asset, "points")
                except ValidationError as exc:
                    self.add_error("points", exc)
        else:
            data["points"] = None
        if kind == PrizeTier.Kind.VOUCHER and not data.get("catalog_item"):
            self.add_error("catalog_item", _("Choose the item the voucher is for."))
        if kind == PrizeTier.Kind.COUPON and not (data.get("coupon_text") or "").strip():
            self.add_error("coupon_text", _("Write what the coupon gives."))
        return data
