"""Forms of the membership application and of the staff console (review, governance,
supervision). Forms check what a field can check; the services check the rules."""

from decimal import Decimal

from django import forms
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from .models import ApplicationStore, MerchantApplication, Proposal
from .parameters import PARAMETERS
from .uploads import LICENCE_MAX_BYTES, LICENCE_TYPES_LABEL, licence_file_check

asset_code_validator = RegexValidator(
    r"^[A-Za-z][A-Za-z0-9]{1,15}$",
    _("2 to 16 letters or digits, starting with a letter."),
)


class ApplicationForm(forms.ModelForm):
    """The application's fields. The licence image is checked by content and size here; the
    uniqueness of the licence number and the point code by the services."""

    licence_image = forms.FileField(
        label=_("Business licence image"), required=False,
        help_text=_("%(types)s, at most %(mb)d MB.")
        % {"types": LICENCE_TYPES_LABEL, "mb": LICENCE_MAX_BYTES // (1024 * 1024)},
        widget=forms.FileInput(attrs={"accept": ".jpg,.jpeg,.png,.pdf"}),
    )

    class Meta:
        model = MerchantApplication
        fields = [
            "name_zh", "name_en", "legal_name", "licence_number", "licence_image",
            "contact_name", "contact_phone", "contact_email", "category", "district",
            "rebate_rate", "asset_code", "asset_name_zh", "asset_name_en", "units_per_cny",
            "expiry_months", "applicant_reply",
        ]
        widgets = {"applicant_reply": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, show_reply: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["asset_code"].validators.append(asset_code_validator)
        if not show_reply:
            del self.fields["applicant_reply"]
        else:
            self.fields["applicant_reply"].help_text = _(
                "Tell the alliance what you changed in answer to its request."
            )

    def clean_contact_phone(self) -> str:
        from .adapters import normalize_phone

        return normalize_phone(self.cleaned_data["contact_phone"])

    def clean_licence_image(self):
        upload = self.cleaned_data.get("licence_image")
        if upload and hasattr(upload, "size") and not isinstance(upload, str):
            if getattr(upload, "_committed", False):
                return None  # the stored file, unchanged
            licence_file_check(upload)
            return upload
        return None

    def clean_licence_number(self) -> str:
        return self.cleaned_data["licence_number"].strip().upper()

    def clean_asset_code(self) -> str:
        return self.cleaned_data["asset_code"].strip().upper()


class StoreForm(forms.ModelForm):
    class Meta:
        model = ApplicationStore
        fields = ["name", "address", "latitude", "longitude", "hours"]


StoreFormSet = forms.formset_factory(StoreForm, extra=1, can_delete=True, max_num=50,
                                     validate_max=True)


class ReasonForm(forms.Form):
    """Requesting changes, rejecting: the words the applicant will read."""

    message = forms.CharField(label=_("Message to the applicant"), max_length=4000,
                              widget=forms.Textarea(attrs={"rows": 4}))


class ApplicationFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"), required=False,
        choices=[("", _("All"))] + [c for c in MerchantApplication.Status.choices
                                    if c[0] != MerchantApplication.Status.DRAFT],
    )
    category = forms.ChoiceField(label=_("Category"), required=False,
                                 choices=[("", _("All")), *MerchantApplication.Category.choices])
    district = forms.SlugField(label=_("District"), required=False)
    q = forms.CharField(label=_("Search"), required=False, max_length=100)


class ProposalForm(forms.Form):
    """A proposal to the council; which fields matter depends on the kind."""

    kind = forms.ChoiceField(label=_("Proposal"), choices=Proposal.Kind.choices)
    key = forms.ChoiceField(
        label=_("Parameter"), required=False,
        choices=[("", "—")] + [(key, f"{spec.label} ({key})") for key, spec in PARAMETERS.items()],
    )
    value = forms.CharField(label=_("New value"), required=False, max_length=40)
    merchant = forms.TypedChoiceField(label=_("Merchant"), required=False, coerce=int,
                                      empty_value=None)
    amount = forms.DecimalField(label=_("Amount of SHARED"), required=False,
                                min_value=Decimal("0.01"), decimal_places=2, max_digits=16)
    witness_key = forms.TypedChoiceField(label=_("Witness key"), required=False, coerce=int,
                                         empty_value=None)
    reason = forms.CharField(label=_("Reason"), required=False, max_length=4000,
                             widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, merchants=(), witness_keys=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["merchant"].choices = [("", "—")] + [
            (m.pk, f"{m.name_en} · {m.name_zh} ({m.get_status_display()})") for m in merchants
        ]
        self.fields["witness_key"].choices = [("", "—")] + [
            (k.pk, str(k)) for k in witness_keys
        ]

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        required = {
            Proposal.Kind.SET_PARAMETER: ("key", "value"),
            Proposal.Kind.ALLOCATE_SHARED: ("merchant", "amount"),
            Proposal.Kind.SUSPEND_MERCHANT: ("merchant",),
            Proposal.Kind.READMIT_MERCHANT: ("merchant",),
            Proposal.Kind.ADMIT_WITNESS_KEY: ("witness_key",),
        }.get(kind, ())
        for name in required:
            if data.get(name) in (None, ""):
                self.add_error(name, _("Required for this kind of proposal."))
        return data

    def payload(self) -> dict:
        data = self.cleaned_data
        return {
            Proposal.Kind.SET_PARAMETER: lambda: {"key": data["key"], "value": data["value"]},
            Proposal.Kind.ALLOCATE_SHARED: lambda: {"merchant": data["merchant"],
                                                    "amount": str(data["amount"])},
            Proposal.Kind.SUSPEND_MERCHANT: lambda: {"merchant": data["merchant"]},
            Proposal.Kind.READMIT_MERCHANT: lambda: {"merchant": data["merchant"]},
            Proposal.Kind.ADMIT_WITNESS_KEY: lambda: {"witness_key": data["witness_key"]},
        }[data["kind"]]()


class NoteForm(forms.Form):
    note = forms.CharField(label=_("Note"), required=False, max_length=200)


class RequiredNoteForm(forms.Form):
    note = forms.CharField(label=_("Reason"), max_length=4000,
                           widget=forms.Textarea(attrs={"rows": 3}))
