"""Forms of the earning pages: the cashier's purchase, the earning rule editor, tiers, tasks
and the storefront's task buttons. Forms parse and bound the input; services decide."""

import uuid
from decimal import Decimal

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from merchants.models import Store

from .models import MemberTier, Task

MAX_CNY = Decimal("1000000000")
MAX_MULTIPLIER = Decimal("100")
WEEKDAYS = [
    (0, _("Mon")), (1, _("Tue")), (2, _("Wed")), (3, _("Thu")), (4, _("Fri")), (5, _("Sat")),
    (6, _("Sun")),
]


def _new_key() -> str:
    return uuid.uuid4().hex


class IdempotentForm(forms.Form):
    """A form that moves value carries a key drawn when the page was drawn: sending it twice
    (a double click, a reload) records once."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=128,
                                      initial=_new_key)


class PurchaseForm(IdempotentForm):
    member = forms.CharField(
        label=_("Member code or QR"), max_length=400,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True,
                                      "autocapitalize": "characters"}),
        help_text=_("Type the member code or scan the member's QR code."),
    )
    amount = forms.DecimalField(
        label=_("Amount (CNY)"), max_digits=12, decimal_places=2,
        min_value=Decimal("0.01"), max_value=MAX_CNY,
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )
    order_ref = forms.CharField(label=_("Order reference"), max_length=100)
    store = forms.ModelChoiceField(label=_("Store"), queryset=Store.objects.none(),
                                   required=False, empty_label=_("(none)"))

    def __init__(self, *args, merchant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = Store.objects.filter(merchant=merchant).order_by("pk")
        if not self.fields["store"].queryset.exists():
            del self.fields["store"]


def _multiplier_field(label, required=True) -> forms.DecimalField:
    return forms.DecimalField(label=label, max_digits=8, decimal_places=4, required=required,
                              min_value=Decimal("0"), max_value=MAX_MULTIPLIER,
                              widget=forms.NumberInput(attrs={"step": "0.01"}))


class EarningRuleForm(forms.Form):
    base_rate = forms.DecimalField(
        label=_("Points per CNY"), max_digits=10, decimal_places=4, min_value=Decimal("0"),
        max_value=Decimal("100000"), initial=Decimal("1"),
        help_text=_("Brand points earned for each CNY spent, before multipliers."),
    )
    daily_cap = forms.IntegerField(
        label=_("Daily cap per shopper"), required=False, min_value=1,
        max_value=10**15, help_text=_("Most points one shopper can earn in a day; empty for "
                                      "no cap."),
    )
    budget = forms.IntegerField(
        label=_("Budget"), required=False, min_value=1, max_value=10**15,
        help_text=_("Most points this version may ever give; empty for no budget."),
    )
    preview_amount = forms.DecimalField(
        label=_("Preview a purchase of (CNY)"), max_digits=12, decimal_places=2,
        min_value=Decimal("0.01"), max_value=MAX_CNY, initial=Decimal("200"), required=False,
    )

    def __init__(self, *args, tiers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.tiers = list(tiers)
        for tier in self.tiers:
            self.fields[f"tier_{tier.code}"] = _multiplier_field(
                _("Multiplier for %(tier)s") % {"tier": tier.name_en or tier.name_zh},
                required=False)

    def tier_fields(self):
        return [self[f"tier_{tier.code}"] for tier in self.tiers]

    def tier_multipliers(self) -> dict[str, str]:
        return {
            tier.code: str(self.cleaned_data[f"tier_{tier.code}"])
            for tier in self.tiers if self.cleaned_data.get(f"tier_{tier.code}") is not None
        }


class TimeWindowForm(forms.Form):
    weekdays = forms.TypedMultipleChoiceField(
        label=_("Days"), choices=WEEKDAYS, coerce=int, required=False,
        widget=forms.CheckboxSelectMultiple, help_text=_("None ticked: every day."),
    )
    start = forms.TimeField(label=_("From"), required=False,
                            widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    end = forms.TimeField(label=_("Until"), required=False,
                          widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    multiplier = _multiplier_field(_("Multiplier"), required=False)

    def clean(self):
        data = super().clean()
        if data.get("multiplier") is None:
            if data.get("start") or data.get("end") or data.get("weekdays"):
                self.add_error("multiplier", _("Give this time window a multiplier."))
            return data
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            self.add_error("end", _("The window must end after it starts."))
        return data

    def as_rule(self) -> dict | None:
        data = self.cleaned_data
        if not data or data.get("multiplier") is None:
            return None
        window = {"multiplier": str(data["multiplier"])}
        if data.get("weekdays"):
            window["weekdays"] = sorted(data["weekdays"])
        if data.get("start"):
            window["start"] = data["start"].strftime("%H:%M")
        if data.get("end"):
            window["end"] = data["end"].strftime("%H:%M")
        return window


class CategoryMultiplierForm(forms.Form):
    category = forms.CharField(label=_("Product category"), max_length=60, required=False)
    multiplier = _multiplier_field(_("Multiplier"), required=False)

    def clean(self):
        data = super().clean()
        category, multiplier = (data.get("category") or "").strip(), data.get("multiplier")
        if bool(category) != (multiplier is not None):
            self.add_error(None, _("Give both the category and its multiplier."))
        data["category"] = category
        return data


TimeWindowFormSet = forms.formset_factory(TimeWindowForm, extra=0, max_num=10,
                                          validate_max=True, absolute_max=10)
CategoryFormSet = forms.formset_factory(CategoryMultiplierForm, extra=0, max_num=30,
                                        validate_max=True, absolute_max=30)


def category_multipliers(formset) -> dict[str, str]:
    found: dict[str, str] = {}
    for form in formset:
        data = form.cleaned_data
        if data and data.get("category") and data.get("multiplier") is not None:
            found[data["category"]] = str(data["multiplier"])
    return found


class MemberTierForm(forms.Form):
    code = forms.SlugField(label=_("Code"), max_length=30,
                           help_text=_("Short and unique, e.g. silver or gold."))
    name_zh = forms.CharField(label=_("Name (Chinese)"), max_length=40)
    name_en = forms.CharField(label=_("Name (English)"), max_length=40)
    threshold = forms.DecimalField(
        label=_("12-month spend (CNY)"), max_digits=12, decimal_places=2,
        min_value=Decimal("0"), max_value=MAX_CNY,
        help_text=_("Spend in the last 12 months that reaches this tier."),
    )

    def __init__(self, *args, merchant, **kwargs):
        super().__init__(*args, **kwargs)
        self.merchant = merchant

    def clean(self):
        data = super().clean()
        if data.get("threshold") is not None and data.get("code"):
            clash = (MemberTier.objects.filter(merchant=self.merchant,
                                               threshold=data["threshold"])
                     .exclude(code=data["code"]).first())
            if clash is not None:
                self.add_error("threshold", _("The tier %(tier)s already starts at this spend.")
                               % {"tier": clash.name_en or clash.name_zh})
        return data


class TaskForm(forms.ModelForm):
    class Meta:
        model = Task
        fields = ["kind", "name_zh", "name_en", "target", "browse_seconds", "min_amount",
                  "reward", "daily_limit", "lifetime_limit", "budget", "starts_at", "ends_at",
                  "audience", "audience_days", "active"]
        widgets = {
            "starts_at": forms.DateTimeInput(attrs={"type": "datetime-local"},
                                             format="%Y-%m-%dT%H:%M"),
            "ends_at": forms.DateTimeInput(attrs={"type": "datetime-local"},
                                           format="%Y-%m-%dT%H:%M"),
        }
        labels = {"reward": _("Reward (points)")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reward"].validators += [MinValueValidator(1), MaxValueValidator(10**12)]
        self.fields["reward"].widget.attrs["min"] = 1
        self.fields["browse_seconds"].validators.append(MaxValueValidator(24 * 3600))
        self.fields["audience_days"].validators.append(MaxValueValidator(3650))
        for name in ("daily_limit", "lifetime_limit", "budget"):
            self.fields[name].validators += [MinValueValidator(1), MaxValueValidator(10**9)]
        self.fields["min_amount"].validators += [MinValueValidator(Decimal("0")),
                                                 MaxValueValidator(MAX_CNY)]
        self.fields["starts_at"].input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        self.fields["ends_at"].input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]

    def clean(self):
        data = super().clean()
        if data.get("kind") == Task.Kind.BROWSE and not data.get("browse_seconds"):
            self.add_error("browse_seconds", _("A browse task needs the seconds to browse."))
        if data.get("starts_at") and data.get("ends_at") and data["ends_at"] <= data["starts_at"]:
            self.add_error("ends_at", _("The task must end after it starts."))
        if not (data.get("name_zh") or "").strip() and not (data.get("name_en") or "").strip():
            self.add_error("name_en", _("Give the task a name."))
        return data

    def _post_clean(self):
        # The service validates and saves; the model's own checks (unique etc.) are not the
        # form's to run against an instance the service will reload under a lock.
        pass


class TaskCompleteForm(IdempotentForm):
    """The storefront's "complete" button."""
