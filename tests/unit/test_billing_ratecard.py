"""Rate cards: the sample parses, export round-trips, malformed cards are refused
with the file, the line and the reason; the card in force is chosen by date."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from relay.billing.ratecard import RateCard, select_card
from relay.billing.ratecard_export import card_digest, to_toml
from relay.billing.ratecard_parse import parse_rate_card
from shared.errors import ConfigError
from tests.unit.billing_helpers import CARD_TEXT, card

SAMPLE = Path(__file__).resolve().parents[2] / "relay" / "billing" / "sample_ratecard.toml"


def test_sample_card_parses_with_exact_decimals() -> None:
    sample = parse_rate_card(SAMPLE.read_text(), "sample_ratecard.toml")
    assert sample.effective_from == date(2026, 1, 1)
    assert sample.rates[("remote_support", 2)] == Decimal("90.00")
    assert str(sample.rates[("remote_support", 2)]) == "90.00"
    assert sample.complexity["complex"] == Decimal("1.25")
    assert [w.name for w in sample.surcharges.windows] == ["evening", "night", "weekend"]
    acme = sample.customers["cus-acme"]
    assert acme.service_rates == {"remote_support": Decimal("80.00"), "project": Decimal("90")}
    assert acme.level_rates == {("project", 3): Decimal("110.00")}
    assert sample.rounding["phone"].minimum_minutes == 5
    assert sample.rounding["phone"].mode is None  # inherits from rounding.default


@pytest.mark.parametrize("text", [CARD_TEXT, SAMPLE.read_text()])
def test_export_round_trips_to_an_equal_card(text: str) -> None:
    original = parse_rate_card(text, "x.toml")
    exported = to_toml(original)
    again = parse_rate_card(exported, "exported.toml")
    assert again == original
    assert to_toml(again) == exported
    assert card_digest(again) == card_digest(original)


def test_digest_changes_with_any_rate() -> None:
    changed = CARD_TEXT.replace("2 = 90.00", "2 = 90.01")
    assert card_digest(card(changed)) != card_digest(card())


def test_card_level_defaults_are_filled_in() -> None:
    minimal = CARD_TEXT.split("[sessions]")[0]
    parsed = card(minimal)
    assert parsed.sessions.merge_window_minutes == 10
    assert parsed.rounding["default"].minimum_minutes == 15
    assert parsed.surcharges.windows == ()
    assert parsed.surcharges.holiday is None


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _refused(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_rate_card(text, "rates-2026.toml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("rates-2026.toml, line ")
    return message


def test_bad_toml_names_file_line_and_column() -> None:
    text = CARD_TEXT.replace("complex = 1.5", "complex = 1.5.0")
    message = _refused(text)
    line = _line_of(text, "complex = 1.5.0")
    assert re.match(rf"rates-2026.toml, line {line}, column \d+: not valid TOML: ", message)


def test_unterminated_toml_points_at_the_end() -> None:
    text = 'name = "x"\nrates = [1,\n'
    assert _refused(text).startswith("rates-2026.toml, line 2")


@pytest.mark.parametrize(
    ("old", "new", "needle", "reason"),
    [
        (
            "phone = { 1 = 45.00",
            "fone = { 1 = 45.00",
            "fone = ",
            "unknown service type 'fone'",
        ),
        ("2 = 90.00", "2 = -90.00", "remote_support = {", "a rate cannot be negative (-90.00)"),
        ("merge_window_minutes = 10", "merge_windw_minutes = 10", "merge_windw", "unknown key"),
        ('from = "18:00"', 'from = "25:00"', '"25:00"', "is not a time of day"),
        ('to = "22:00"', 'to = "18:00"', 'to = "18:00"', "from and to are equal"),
        ('"sat", "sun"]', '"sat", "sunday"]', '"sunday"', "unknown day 'sunday'"),
        ('mode = "up"', 'mode = "sideways"', "sideways", "mode must be one of up, nearest"),
        ("increment_minutes = 5", "increment_minutes = 0", "increment_minutes = 0", "at least 1"),
        ("discount_percent = 10", "discount_percent = 110", "percent = 110", "exceed 100"),
        ("evening = 20", "evenings = 20", "evenings", "unknown surcharge 'evenings'"),
        ("complex = 1.5", "complex = 0", "complex = 0", "must be above 0"),
        ("standard = 1", 'standard = "one"', '"one"', "should be a number"),
        ('timezone = "Europe/Amsterdam"', 'timezone = "Europe/Amsterdan"', "Amsterdan", "zone"),
        ("effective_from = 2026-01-01", 'effective_from = "soon"', "soon", "should be a date"),
        ('calendar = "NL"', 'calendar = "NL"\nobserve = ["kingsday"]', "kingsday", "unknown"),
        ("2 = 90.00, ", "", "remote_support = {", "no rate for level 2"),
    ],
)
def test_malformed_cards_are_refused_with_line_and_reason(
    old: str, new: str, needle: str, reason: str
) -> None:
    assert old in CARD_TEXT
    text = CARD_TEXT.replace(old, new, 1)
    message = _refused(text)
    assert f", line {_line_of(text, needle)}: " in message
    assert reason in message


def test_missing_rates_table_is_refused() -> None:
    text = CARD_TEXT.replace("[rates]", "[ratez]")
    assert "unknown key 'ratez'" in _refused(text)


def test_window_in_second_array_element_is_located() -> None:
    text = CARD_TEXT.replace('from = "22:00"', 'from = "22:60"')
    message = _refused(text)
    assert f"line {_line_of(text, '22:60')}: surcharges.window[2].from:" in message


def _dated(day: str) -> RateCard:
    return card(CARD_TEXT.replace("effective_from = 2026-01-01", f"effective_from = {day}"))


def test_select_card_takes_the_latest_in_force_by_local_date() -> None:
    old, new = _dated("2025-01-01"), _dated("2026-07-01")
    # 22:30 UTC on 30 June is already 1 July in Amsterdam.
    assert select_card([old, new], datetime(2026, 6, 30, 21, 59, tzinfo=UTC)) is old
    assert select_card([new, old], datetime(2026, 6, 30, 22, 0, tzinfo=UTC)) is new
    with pytest.raises(ConfigError, match="no rate card is in force"):
        select_card([new], datetime(2026, 1, 1, tzinfo=UTC))


def test_customer_rates_for_every_level_and_one_level_together() -> None:
    text = CARD_TEXT.replace("project = 95.00", "project = { all = 95.00, 3 = 99.00 }")
    big = card(text).customers["cus-big"]
    assert big.service_rates["project"] == Decimal("95.00")
    assert big.level_rates[("project", 3)] == Decimal("99.00")
    assert parse_rate_card(to_toml(card(text)), "x.toml") == card(text)
    bad = CARD_TEXT.replace("project = 95.00", "project = { 4 = 95.00 }")
    assert "unknown expertise level '4'; expected one of 1, 2, 3, all" in _refused(bad)


def test_quoted_customer_ids_are_located_and_exported() -> None:
    text = CARD_TEXT + '\n[customers."cus 7"]\nname = "Seven"\ndiscount_percent = -1\n'
    assert f"line {_line_of(text, 'discount_percent = -1')}: " in _refused(text)
    good = card(text.replace("discount_percent = -1", "discount_percent = 5"))
    assert '[customers."cus 7"]' in to_toml(good)
    assert parse_rate_card(to_toml(good), "x.toml") == good
