"""Forms of the explorer's log pages."""

import json

from django import forms
from django.utils.translation import gettext_lazy as _

MAX_RECEIPT_BYTES = 256 * 1024


class ReceiptForm(forms.Form):
    """A receipt to check: pasted, or uploaded as the file the portal gave."""

    receipt_text = forms.CharField(
        label=_("Receipt (JSON)"), required=False, max_length=MAX_RECEIPT_BYTES,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false",
                                     "class": "font-monospace"}),
    )
    receipt_file = forms.FileField(label=_("…or upload the receipt file"), required=False)

    def clean(self):
        cleaned = super().clean()
        text = (cleaned.get("receipt_text") or "").strip()
        upload = cleaned.get("receipt_file")
        if bool(text) == bool(upload):
            raise forms.ValidationError(_("Paste a receipt or upload one, not both."))
        if upload:
            if upload.size > MAX_RECEIPT_BYTES:
                raise forms.ValidationError(_("The file is too large to be a receipt."))
            try:
                text = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError(_("The file is not UTF-8 text.")) from None
        try:
            cleaned["receipt"] = json.loads(text)
        except ValueError:
            raise forms.ValidationError(_("This is not JSON; a receipt is a JSON file.")) from None
        return cleaned


class ReceiptDownloadForm(forms.Form):
    transaction = forms.IntegerField(label=_("Transaction number"), min_value=1,
                                     max_value=2**63 - 1)
