"""The one formatter (ecotrain/units.py): 3 significant figures, scaled units, no e-notation."""

from __future__ import annotations

import math
import re

import pytest

from ecotrain.units import (
    KWH,
    UNKNOWN,
    column_unit,
    fmt,
    fmt_co2,
    fmt_column,
    fmt_duration,
    fmt_energy,
    fmt_in,
    fmt_number,
    fmt_usd,
    sig,
)


@pytest.mark.parametrize(
    ("kwh", "text"),
    [
        (0.0, "0 kWh"),
        (1.2e-5, "12.0 mWh"),
        (5.3e-6, "5.30 mWh"),
        (1.2e-9, "0.00120 mWh"),
        (0.35, "350 Wh"),
        (0.9997, "1.00 kWh"),  # rounds up into the next unit, not "1,000 Wh"
        (18.0, "18.0 kWh"),
        (29_700.0, "29.7 MWh"),  # was "2.97e+04" kWh in LaTeX
        (2_246_122.4, "2.25 GWh"),  # was "2,246,122.…" on a metric card
        (3.1e9, "3,100 GWh"),
        (-0.5, "-500 Wh"),
    ],
)
def test_energy_scaled_three_figures(kwh: float, text: str) -> None:
    assert fmt_energy(kwh) == text


@pytest.mark.parametrize(
    ("kg", "text"),
    [
        (0.9, "900 g"),
        (1.2e-5, "12.0 mg"),
        (4.56, "4.56 kg"),
        (1500.0, "1.50 t"),
        (2.5e6, "2,500 t"),
    ],
)
def test_co2_scaled(kg: float, text: str) -> None:
    assert fmt_co2(kg) == text


@pytest.mark.parametrize(
    ("usd", "text"),
    [
        (0.0, "$0.00"),
        (2.6e-6, "$0.00000260"),  # was "$2.6e-06"
        (1.3e-6, "$0.00000130"),
        (0.0042, "$0.00420"),
        (3.6, "$3.60"),
        (1234.567, "$1,234.57"),
        (2_250_000.0, "$2.25M"),
        (-3.6, "-$3.60"),
    ],
)
def test_usd(usd: float, text: str) -> None:
    assert fmt_usd(usd) == text


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, -math.inf, "x"])
def test_unknown_reads_unknown_never_zero_or_none(bad) -> None:
    for f in (fmt_energy, fmt_co2, fmt_usd, fmt_duration, fmt_number):
        assert f(bad) == UNKNOWN == "unknown"
    assert fmt(bad, "h") == UNKNOWN


def test_never_e_notation() -> None:
    for exp in range(-15, 16):
        for mant in (1.0, 1.234, 9.999):
            v = mant * 10.0**exp
            for text in (fmt_energy(v), fmt_co2(v), fmt_usd(v), sig(v), fmt(v, "h")):
                assert not re.search(r"\d[eE][+-]?\d", text), (v, text)
                assert "None" not in text and "nan" not in text


def test_sig_and_duration() -> None:
    assert sig(1234.5) == "1,230"
    assert sig(0.000012) == "0.0000120"
    assert sig(999.7) == "1,000"
    assert fmt_duration(12) == "12s"
    assert fmt_duration(0.0842) == "0.0842s" and fmt_duration(1.234) == "1.23s"
    assert fmt_duration(9.996) == "10s" and fmt_duration(0) == "0s"
    assert fmt_duration(245) == "4m05s"
    assert fmt_duration(7980) == "2h13m"
    assert fmt_duration(90_000) == "1d01h"


def test_one_unit_per_column() -> None:
    values = [0.0012, 0.35, 0.8, None, 12.0]
    unit = column_unit(values, "energy")
    assert unit.symbol == "Wh"  # the median non-zero value is 0.575 kWh
    unit, cells = fmt_column(values, "energy")
    assert cells == ["1.20", "350", "800", "unknown", "12,000"]
    assert column_unit([0, None], "co2").symbol == "kg"
    assert fmt_energy(0.0012, unit=KWH) == "0.00120 kWh"
    assert fmt_in(5.0, KWH) == "5.00"
