from decimal import Decimal

from ltxserve.billing.prices import PriceTable, format_dollars, to_micro
from ltxserve.config import Settings


def test_default_prices_follow_the_hosted_anchor():
    table = PriceTable.from_dollars(Settings().prices)
    assert table.price("1080p", 6) == 300_000
    assert table.price("2k", 8) == 800_000
    assert table.price("4k", 10) == 2_000_000


def test_money_is_exact():
    assert to_micro("0.1") * 3 == to_micro("0.3")
    assert to_micro(Decimal("0.0000005")) == 1
    assert format_dollars(800_000) == "0.8"
    assert format_dollars(12_000_000) == "12"
    assert format_dollars(1) == "0.000001"
