"""Prices and money. Money is integer micro-dollars everywhere inside; dollars appear only at the edges."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

MICRO = 1_000_000


# The most one grant may add: a typo of a few zeros stays a typo, and no sum can overflow a 64-bit balance.
MAX_GRANT_DOLLARS = Decimal(1_000_000)


def grant_micro(dollars: Decimal, *, allow_zero: bool = False) -> int:
    """A grant of credits in whole micro-dollars (rounded half up), or ValueError saying why it cannot be one:
    an amount that rounds to nothing is refused, never granted as $0."""
    if not dollars.is_finite():
        raise ValueError(f"{dollars} is not an amount of dollars")
    if dollars < 0:
        raise ValueError("the amount cannot be negative")
    if dollars > MAX_GRANT_DOLLARS:
        raise ValueError(f"at most ${MAX_GRANT_DOLLARS:,} can be added at once")
    micro = to_micro(dollars)
    if micro == 0 and not allow_zero:
        raise ValueError(f"the amount must be at least $0.000001, got ${dollars}")
    return micro


def to_micro(dollars: Decimal | str | int) -> int:
    return int((Decimal(dollars) * MICRO).to_integral_value(rounding=ROUND_HALF_UP))


def to_dollars(micro: int) -> Decimal:
    return Decimal(micro) / MICRO


def format_dollars(micro: int) -> str:
    """'0.8', '12', '0.000001': what the hosted API's x-cost and x-remaining-credits headers look like."""
    return format(to_dollars(micro).normalize(), "f")


@dataclass(frozen=True)
class PriceTable:
    per_second: dict[str, int]  # micro-dollars per second of output, by resolution

    @classmethod
    def from_dollars(cls, prices: dict[str, Decimal]) -> PriceTable:
        return cls({resolution: to_micro(price) for resolution, price in prices.items()})

    def price(self, resolution: str, duration_s: int) -> int:
        return self.per_second[resolution] * duration_s
