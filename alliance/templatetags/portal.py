"""Template helpers shared by every page."""

from typing import Any

from django import template
from django.utils.translation import get_language

register = template.Library()


@register.filter
def local_name(obj: Any) -> str:
    """``name_zh`` or ``name_en`` of a bilingual model, by the active language.

    Merchants, districts and assets carry both names; anything but Chinese reads the English
    one, and an empty name falls back to the other language rather than showing nothing.
    """
    chinese = (get_language() or "").lower().startswith("zh")
    first, second = ("name_zh", "name_en") if chinese else ("name_en", "name_zh")
    return getattr(obj, first, "") or getattr(obj, second, "") or str(obj)
