"""Checking uploads by what they contain, not by what they are called.

A licence image is accepted as JPEG, PNG or PDF, recognised by its leading bytes; the
extension the applicant gave must agree with the content (an HTML page or an executable
renamed ``licence.png`` is refused), and the file must not be larger than the limit.
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

LICENCE_MAX_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class FileType:
    extension: str
    content_type: str
    extensions: tuple[str, ...]


# (leading bytes, type). PNG's signature includes the IHDR chunk that must come first.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", FileType(".png", "image/png", (".png",))),
    (b"\xff\xd8\xff", FileType(".jpg", "image/jpeg", (".jpg", ".jpeg"))),
    (b"%PDF-", FileType(".pdf", "application/pdf", (".pdf",))),
)
LICENCE_TYPES_LABEL = "JPEG, PNG, PDF"


def sniff(head: bytes) -> FileType | None:
    for signature, file_type in _SIGNATURES:
        if head.startswith(signature):
            return file_type
    return None


def licence_file_check(upload: UploadedFile) -> FileType:
    """The type of an uploaded licence image, or ``ValidationError`` saying what is wrong."""
    if upload.size is None or upload.size == 0:
        raise ValidationError(_("The file is empty."), code="empty")
    if upload.size > LICENCE_MAX_BYTES:
        raise ValidationError(
            _("The file is %(size)s; the limit is %(limit)s.")
            % {"size": filesizeformat(upload.size), "limit": filesizeformat(LICENCE_MAX_BYTES)},
            code="too_large",
        )
    upload.seek(0)
    head = upload.read(32)
    upload.seek(0)
    found = sniff(head)
    if found is None:
        raise ValidationError(
            _("The file is not a %(types)s image or document.") % {"types": LICENCE_TYPES_LABEL},
            code="unknown_type",
        )
    name = (upload.name or "").lower()
    extension = name[name.rfind("."):] if "." in name else ""
    if extension not in found.extensions:
        raise ValidationError(
            _("The file's content is %(type)s but its name ends in “%(extension)s”.")
            % {"type": found.content_type, "extension": extension or "—"},
            code="disguised",
        )
    return found
