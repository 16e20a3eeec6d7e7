"""Kubernetes resource quantities ("500m", "1.5Gi", "1e3"), exact, as upstream resource.Quantity.

Values are Fractions, never floats: like upstream's fixed-point Quantity, parsing rounds a
value up (away from zero) to a multiple of 1n and never loses precision otherwise.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

DECIMAL_SI = "DecimalSI"  # 12M, 500m
BINARY_SI = "BinarySI"  # 12Mi
DECIMAL_EXPONENT = "DecimalExponent"  # 12e6

QUANTITY_REGEX = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT_WRONG = f"quantities must match the regular expression '{QUANTITY_REGEX}'"
ERR_NUMERIC = "unable to parse numeric part of quantity"
ERR_SUFFIX = "unable to parse quantity's suffix"

_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12,
                     "P": 15, "E": 18}
_DECIMAL_BY_EXPONENT = {e: s for s, e in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BINARY_BY_POWER = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]  # index = power of 1024

_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")
_EXPONENT_RE = re.compile(r"[+-]?[0-9]+")
_NANO = Fraction(1, 10**9)
_INT64_MAX = 2**63 - 1
# Beyond this, 10**exponent stops being cheap; upstream's int32 exponent is wider.
_MAX_EXPONENT = 10_000

Number = str | int | float | Fraction


def _scan(s: str) -> tuple[bool, str, str, str]:
    """Split `s` into (positive, integer digits, fraction digits, suffix).

    A port of upstream's parseQuantityString, quirks included ("1." and ".5" are fine,
    a lone sign is zero); raises ValueError(ERR_FORMAT_WRONG) where upstream does.
    """
    end = len(s)
    pos = 0
    positive = True
    if s[:1] in ("-", "+"):
        positive = s[0] == "+"
        pos = 1
    while pos < end and s[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    num = s[start:pos] or "0"
    denom = ""
    if pos < end and s[pos] == ".":
        pos += 1
        start = pos
        while pos < end and s[pos] in _DIGITS:
            pos += 1
        denom = s[start:pos]
    suffix_start = pos
    while pos < end and s[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and s[pos] in "+-":
        pos += 1
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise ValueError(ERR_FORMAT_WRONG)
    return positive, num, denom, s[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) for a suffix, or ValueError(ERR_SUFFIX)."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    # "E" alone is exa (handled above); "E3", "e-2" and "e+6" are exponents.
    if len(suffix) > 1 and suffix[0] in "eE" and _EXPONENT_RE.fullmatch(suffix[1:]):
        exponent = int(suffix[1:])
        if -(2**63) <= exponent <= _INT64_MAX:
            return 10, exponent, DECIMAL_EXPONENT
    raise ValueError(ERR_SUFFIX)


def _round_up_to_nano(value: Fraction) -> Fraction:
    # Upstream rounds non-zero values away from zero, so a request for "some" stays "some".
    scaled = value / _NANO
    if scaled.denominator == 1:
        return value
    magnitude = math.ceil(abs(scaled))
    return Fraction(magnitude if value > 0 else -magnitude) * _NANO


def _text(value: Number) -> str:
    if isinstance(value, bool):
        raise TypeError("a quantity is a string or a number, not a bool")
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(ERR_FORMAT_WRONG)
        return repr(value)  # shortest round-trip text, e.g. "0.1" or "1e-05"
    raise TypeError(f"a quantity is a string or a number, not {type(value).__name__}")


def parse_quantity_with_format(s: str | float) -> tuple[Fraction, str]:
    """Parse a quantity and report the format its suffix implies (used to re-serialize it)."""
    text = _text(s)
    if not text:
        raise ValueError(ERR_FORMAT_WRONG)
    positive, num, denom, suffix = _scan(text)
    base, exponent, fmt = _interpret(suffix)
    magnitude = Fraction(int(num + denom), 10 ** len(denom))
    if base == 2:
        magnitude *= 2**exponent
    elif exponent > _MAX_EXPONENT:
        raise ValueError(ERR_NUMERIC)
    else:
        # A tinier exponent changes nothing: any non-zero value rounds up to 1n anyway.
        magnitude *= Fraction(10) ** max(exponent, -_MAX_EXPONENT)
    magnitude = _round_up_to_nano(magnitude)
    if fmt == BINARY_SI:
        # Upstream caps binary quantities at int64 and shows sub-unit ones as decimals.
        magnitude = min(magnitude, Fraction(_INT64_MAX))
        if 0 < magnitude < 1:
            fmt = DECIMAL_SI
    return (magnitude if positive else -magnitude), fmt


def parse_quantity(s: str | float) -> Fraction:
    """The exact value of a quantity: "500m" -> 1/2, "1.5Gi" -> 1610612736, "1e3" -> 1000.

    Raises ValueError with upstream's message (ERR_FORMAT_WRONG, ERR_SUFFIX) when invalid.
    """
    return parse_quantity_with_format(s)[0]


def is_valid_quantity(s: object) -> bool:
    try:
        parse_quantity(s)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False
    return True


def _as_value(q: Number) -> Fraction:
    if isinstance(q, Fraction):
        return q
    return parse_quantity(q)


def _decimal(magnitude: Fraction, fmt: str) -> str:
    # mantissa * 10**exponent with no trailing zeros in the mantissa, then the exponent
    # lowered to a multiple of three (upstream's AsCanonicalBytes).
    mantissa = int(magnitude / _NANO)
    exponent = -9
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    shift = exponent % 3
    mantissa *= 10**shift
    exponent -= shift
    if fmt == DECIMAL_EXPONENT:
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    if exponent > 18:
        # Upstream has no suffix past E (and would print a wrong number); stay exact.
        mantissa *= 10 ** (exponent - 18)
        exponent = 18
    return f"{mantissa}{_DECIMAL_BY_EXPONENT[exponent]}"


def _binary(magnitude: int) -> str:
    power = 0
    while magnitude % 1024 == 0 and power < len(_BINARY_BY_POWER) - 1:
        magnitude //= 1024
        power += 1
    return f"{magnitude}{_BINARY_BY_POWER[power]}"


def format_quantity(value: Number, fmt: str | None = None) -> str:
    """The canonical text of a quantity, as upstream serializes it.

    `fmt` is DecimalSI, BinarySI or DecimalExponent; by default a string keeps the format
    its suffix implies and a number is DecimalSI. The largest suffix that keeps the number
    whole is used: 0.5 -> "500m", "1000m" -> "1", "1.5Gi" -> "1536Mi". A BinarySI value
    that is not a whole number, or is within (-1024, 1024), is written DecimalSI.
    """
    if isinstance(value, str):
        amount, parsed_fmt = parse_quantity_with_format(value)
        fmt = fmt or parsed_fmt
    elif isinstance(value, Fraction):
        amount = _round_up_to_nano(value)
    else:
        amount = parse_quantity(value)
    fmt = fmt or DECIMAL_SI
    if amount == 0:
        return "0"
    if fmt not in (DECIMAL_SI, BINARY_SI, DECIMAL_EXPONENT):
        fmt = DECIMAL_EXPONENT
    if fmt == BINARY_SI and (-1024 < amount < 1024 or amount.denominator != 1):
        fmt = DECIMAL_SI
    sign = "-" if amount < 0 else ""
    if fmt == BINARY_SI:
        return sign + _binary(int(abs(amount)))
    return sign + _decimal(abs(amount), fmt)


def milli_value(q: Number) -> int:
    """The value in thousandths, rounded up (upstream MilliValue): "0.1" -> 100."""
    return math.ceil(_as_value(q) * 1000)


def int_value(q: Number) -> int:
    """The value as an integer, rounded up (upstream Value): "1500m" -> 2."""
    return math.ceil(_as_value(q))
