"""Resource quantities: exact parsing, canonical text and rounding, as upstream resource.Quantity."""

from __future__ import annotations

from fractions import Fraction

import pytest

from api.quantity import (
    BINARY_SI,
    DECIMAL_EXPONENT,
    DECIMAL_SI,
    ERR_FORMAT_WRONG,
    ERR_SUFFIX,
    format_quantity,
    int_value,
    is_valid_quantity,
    milli_value,
    parse_quantity,
    parse_quantity_with_format,
)

GI = 2**30


@pytest.mark.parametrize(("text", "value"), [
    ("0", 0),
    ("1", 1),
    ("500m", Fraction(1, 2)),
    ("0.5", Fraction(1, 2)),
    ("0.1", Fraction(1, 10)),
    ("100m", Fraction(1, 10)),
    ("1000m", 1),
    ("250u", Fraction(250, 10**6)),
    ("3n", Fraction(3, 10**9)),
    ("2k", 2000),
    ("129M", 129_000_000),
    ("1G", 10**9),
    ("1T", 10**12),
    ("1P", 10**15),
    ("1E", 10**18),  # "E" alone is exa, not an exponent
    ("1Ki", 1024),
    ("100Mi", 100 * 2**20),
    ("123Mi", 128_974_848),
    ("1.5Gi", 1_610_612_736),
    ("1Ti", 2**40),
    ("1Pi", 2**50),
    ("1Ei", 2**60),
    ("1e3", 1000),
    ("1E3", 1000),
    ("129e6", 129_000_000),
    ("1.5E-2", Fraction(15, 1000)),
    ("1e-3", Fraction(1, 1000)),
    ("1e+3", 1000),
    ("-1", -1),
    ("-500m", Fraction(-1, 2)),
    ("-1.5Gi", -1_610_612_736),
    ("+2", 2),
    ("007", 7),
    (".5", Fraction(1, 2)),
    ("5.", 5),
    ("1.G", 10**9),
    ("0.000000001", Fraction(1, 10**9)),
])
def test_parse_exact_values(text: str, value: Fraction | int) -> None:
    parsed = parse_quantity(text)
    assert isinstance(parsed, Fraction)
    assert parsed == value
    assert is_valid_quantity(text)


@pytest.mark.parametrize(("raw", "value"), [
    (3, 3),
    (-2, -2),
    (0.5, Fraction(1, 2)),
    (0.1, Fraction(1, 10)),  # the shortest text of the float, not its binary expansion
    (1e-05, Fraction(1, 100_000)),
    (2.0, 2),
])
def test_parse_numbers(raw: float, value: Fraction | int) -> None:
    assert parse_quantity(raw) == value


@pytest.mark.parametrize(("text", "fmt"), [
    ("1", DECIMAL_SI), ("500m", DECIMAL_SI), ("1k", DECIMAL_SI), ("1Mi", BINARY_SI),
    ("1e3", DECIMAL_EXPONENT), ("1E3", DECIMAL_EXPONENT), ("1E", DECIMAL_SI),
    # a binary quantity below one unit is shown as a decimal one
    ("0.5Ki", BINARY_SI), ("0.0001Ki", DECIMAL_SI),
])
def test_format_follows_the_suffix(text: str, fmt: str) -> None:
    assert parse_quantity_with_format(text)[1] == fmt


@pytest.mark.parametrize("text", ["1.5.5", "abc", "5 Gi", "", "1Gb", " 1", "1 ", "1e3k",
                                  "1KI", "1,5", "1..5", "0x10", "1e3.5"])
def test_invalid_format(text: str) -> None:
    assert not is_valid_quantity(text)
    with pytest.raises(ValueError) as err:
        parse_quantity(text)
    assert str(err.value) == ERR_FORMAT_WRONG
    assert str(err.value) == ("quantities must match the regular expression "
                              "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


@pytest.mark.parametrize("text", ["1Gii", "1e", "1ee3", "1mk", "1iK", "Gi1", "--1"])
def test_invalid_suffix(text: str) -> None:
    assert not is_valid_quantity(text)
    with pytest.raises(ValueError, match="^unable to parse quantity's suffix$"):
        parse_quantity(text)
    assert ERR_SUFFIX == "unable to parse quantity's suffix"


@pytest.mark.parametrize("raw", [True, None, [1], {"cpu": 1}, float("nan"), float("inf")])
def test_non_quantities_are_invalid(raw: object) -> None:
    assert not is_valid_quantity(raw)


@pytest.mark.parametrize(("text", "value"), [
    ("0.1n", Fraction(1, 10**9)),
    ("1.0000000001", 1 + Fraction(1, 10**9)),
    ("-0.1n", Fraction(-1, 10**9)),  # away from zero, like upstream
    ("1e-20", Fraction(1, 10**9)),
    ("0e-20", 0),
])
def test_values_round_up_to_nano(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value


def test_binary_quantities_are_capped_at_int64() -> None:
    assert parse_quantity("8Ei") == 2**63 - 1
    assert parse_quantity("-16Ei") == -(2**63 - 1)
    assert parse_quantity("8E") == 8 * 10**18  # decimal ones are not capped


@pytest.mark.parametrize(("text", "canonical"), [
    ("0", "0"),
    ("0Mi", "0"),
    ("500m", "500m"),
    ("0.5", "500m"),
    ("1.5", "1500m"),
    ("0.1", "100m"),
    ("1000m", "1"),
    ("1100m", "1100m"),
    ("1000", "1k"),
    ("1500", "1500"),
    ("2000000", "2M"),
    ("128974848", "128974848"),
    ("129M", "129M"),
    ("0.001k", "1"),
    ("1000000u", "1"),
    ("100Mi", "100Mi"),
    ("1024Mi", "1Gi"),
    ("1.5Gi", "1536Mi"),
    ("1536Mi", "1536Mi"),
    ("1Ki", "1Ki"),
    ("1.5Ki", "1536"),  # whole but not a multiple of 1Ki
    ("0.5Ki", "512"),  # under 1024: shown as a decimal
    ("1023", "1023"),
    ("0.3Ki", "307200m"),  # not whole: decimal keeps it exact
    ("-1.5Gi", "-1536Mi"),
    ("-500m", "-500m"),
    ("1e3", "1e3"),
    ("129e6", "129e6"),
    ("1.5e3", "1500"),
    ("1e-3", "1e-3"),
    ("0.5e-3", "500e-6"),
    ("12e0", "12"),
    ("0.1n", "1n"),
    ("8Ei", "9223372036854775807"),
])
def test_canonical_form(text: str, canonical: str) -> None:
    assert format_quantity(text) == canonical
    # The canonical text parses back to the same value.
    assert parse_quantity(canonical) == parse_quantity(text)


@pytest.mark.parametrize(("value", "fmt", "text"), [
    (Fraction(1, 2), DECIMAL_SI, "500m"),
    (0.5, DECIMAL_SI, "500m"),
    (1, DECIMAL_SI, "1"),
    (1000, DECIMAL_SI, "1k"),
    (1000, DECIMAL_EXPONENT, "1e3"),
    (1_610_612_736, BINARY_SI, "1536Mi"),
    (1_073_741_824, BINARY_SI, "1Gi"),
    (1000, BINARY_SI, "1k"),  # under 1Ki: decimal
    (Fraction(3, 2) * GI + Fraction(1, 2), BINARY_SI, "1610612736500m"),
    (Fraction(1, 3), DECIMAL_SI, "333333334n"),
    (10**21, DECIMAL_SI, "1000E"),
    (-(2**20), BINARY_SI, "-1Mi"),
])
def test_format_numbers(value: Fraction | float, fmt: str, text: str) -> None:
    assert format_quantity(value, fmt) == text


def test_format_defaults() -> None:
    assert format_quantity(Fraction(1, 2)) == "500m"  # numbers are DecimalSI
    assert format_quantity("1.5Gi") == "1536Mi"  # strings keep their own format
    assert format_quantity("1536Mi", DECIMAL_SI) == "1610612736"
    assert format_quantity("1k", BINARY_SI) == "1k"
    assert format_quantity("2048", BINARY_SI) == "2Ki"
    assert format_quantity("1k", "Unknown") == "1e3"  # unknown formats are DecimalExponent


@pytest.mark.parametrize(("q", "milli", "whole"), [
    ("500m", 500, 1),
    ("0.1", 100, 1),
    ("1", 1000, 1),
    ("1.5", 1500, 2),
    ("2", 2000, 2),
    ("1n", 1, 1),
    ("0.0001", 1, 1),
    ("1.5Gi", 1_610_612_736_000, 1_610_612_736),
    ("100Mi", 104_857_600_000, 104_857_600),
    ("1e3", 1_000_000, 1000),
    ("0", 0, 0),
    ("-1.5", -1500, -1),
    ("-1n", 0, 0),
    (Fraction(1, 3), 334, 1),
    (3, 3000, 3),
])
def test_milli_and_int_values_round_up(q: str | Fraction | int, milli: int, whole: int) -> None:
    assert milli_value(q) == milli
    assert int_value(q) == whole


def test_comparisons_are_exact() -> None:
    # the reason quantities are Fractions: no float drift in sums of requests
    total = sum((parse_quantity(q) for q in ["100m"] * 10), Fraction(0))
    assert total == parse_quantity("1")
    assert parse_quantity("1Gi") > parse_quantity("1G")
    assert parse_quantity("1024Mi") == parse_quantity("1Gi")
    assert parse_quantity("1000m") == parse_quantity("1") == parse_quantity("1e0")
