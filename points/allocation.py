"""Exact splits in integer minor units: the airdrop's and the inflation's arithmetic.

Pure functions, no database: the airdrop job on SQLite, ``airdrop_verify`` and anyone holding
a published snapshot compute the split with these; on PostgreSQL the job computes the same
split in SQL (``points.airdrop``), and the tests hold the two to the same answers.
"""

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal


def largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` so that the parts sum to exactly ``total``.

    Each part is first ``total × weight // sum(weights)``; the units left over go one each
    to the largest remainders (``total × weight mod sum(weights)``), ties to the earlier
    position. Weights of 0 get 0; with no positive weight nothing is split (all zeros)."""
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("total and weights must not be negative")
    whole = sum(weights)
    if not whole or not total:
        return [0] * len(weights)
    parts = []
    remainders = []
    for weight in weights:
        part, remainder = divmod(total * weight, whole)
        parts.append(part)
        remainders.append(remainder)
    left = total - sum(parts)
    # left < len(weights): each remainder is below ``whole``, so they sum to under n × whole.
    for position in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        parts[position] += 1
    return parts


def sv_cut(part: int, sv: int, sv_per_shared: Decimal) -> int:
    """SV (minor units) a holder loses for ``part`` SHARED minor units received: their CNY
    value in SV, rounded half up to a minor unit, never more than the holder's ``sv``."""
    return min(sv, int((part * sv_per_shared).quantize(Decimal(1), rounding=ROUND_HALF_UP)))


def sv_per_shared(*, price: Decimal, shared_scale: int, sv_scale: int,
                  sv_units_per_cny: Decimal) -> Decimal:
    """SV minor units worth one SHARED minor unit: ``price`` CNY per SHARED, SV per CNY,
    adjusted for the two assets' decimal places."""
    return price * sv_units_per_cny * Decimal(10) ** (sv_scale - shared_scale)
