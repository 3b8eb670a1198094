"""Forms of the merchant dashboard's onboarding pages: staff, API keys, deposit, imports."""

import uuid
from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from .imports import MAX_FILE_BYTES
from .models import ApiKey, StaffMembership


class StaffInviteForm(forms.Form):
    email = forms.EmailField(label=_("Email address"))
    role = forms.ChoiceField(label=_("Role"), choices=StaffMembership.Role.choices,
                             initial=StaffMembership.Role.CASHIER)


class StaffRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=StaffMembership.Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=80,
                           help_text=_("Where the key is used, e.g. “Till 2, Nanjing Rd”."))
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"), choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple,
        initial=[ApiKey.Scope.PURCHASES],
    )


class TopUpForm(forms.Form):
    """An amount of SHARED with the request's idempotency key: sending the form twice (a
    double click, a reload) moves the SHARED once."""

    amount = forms.DecimalField(label=_("Amount of SHARED"), min_value=Decimal("0.01"),
                                max_digits=16, decimal_places=2)
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)


class LeaveForm(forms.Form):
    reason = forms.CharField(label=_("Why are you leaving? (optional)"), required=False,
                             max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("Member file (CSV)"),
        help_text=_("Columns: phone or email, balance, and optionally expiry (YYYY-MM-DD). "
                    "UTF-8, one member per row."),
        widget=forms.FileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(_("The file is larger than %(mb)d MB.")
                                        % {"mb": MAX_FILE_BYTES // (1024 * 1024)})
        return upload
