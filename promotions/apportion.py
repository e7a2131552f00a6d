"""Discount apportionment (优惠分摊) to the cent, by the largest-remainder method.

Partial refunds pay back a line's apportioned amount, so the parts must add
up to the order discount exactly and no line may be discounted below zero.
"""

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def money(value: Decimal) -> Decimal:
    """Round to the cent, half up: the one rounding rule of the promotion center."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _cents(value: Decimal, *, what: str) -> int:
    if value != value.quantize(CENT):
        raise ValueError(f"{what} {value} is not a whole number of cents")
    if value < 0:
        raise ValueError(f"{what} {value} is negative")
    return int(value * 100)


def apportion(*, amount: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split ``amount`` over ``weights`` in proportion, to the cent.

    - the parts sum exactly to ``amount``;
    - each part is at most its weight (weights are the lines' remaining
      amounts, so no line goes negative);
    - deterministic: every part first gets floor(amount * weight / total) cents;
      the cents left over go one each to the largest remainders, ties to the
      earlier position.

    ``amount`` and the weights are non-negative whole cents and ``amount`` is
    at most the sum of the weights; anything else raises ValueError.
    """
    amount_cents = _cents(amount, what="amount")
    weight_cents = [_cents(weight, what="weight") for weight in weights]
    total = sum(weight_cents)
    if amount_cents > total:
        raise ValueError(f"cannot apportion {amount} over weights summing to {Decimal(total) / 100}")
    if amount_cents == 0:
        return [Decimal("0.00") for _ in weights]
    parts = [amount_cents * weight // total for weight in weight_cents]
    remainders = [amount_cents * weight % total for weight in weight_cents]
    left_over = amount_cents - sum(parts)
    # The remainders are fractions of `total` summing to left_over * total, each
    # below `total`: more than left_over of them are positive, and a part with a
    # positive remainder is strictly below its weight, so one more cent fits.
    by_remainder = sorted(range(len(parts)), key=lambda index: (-remainders[index], index))
    for index in by_remainder[:left_over]:
        parts[index] += 1
    return [(Decimal(part) / 100).quantize(CENT) for part in parts]
