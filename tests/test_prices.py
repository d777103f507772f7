"""The price table: sources and dates, forgiving GPU names, user files merged over it."""

from __future__ import annotations

import tomllib

import pytest

from ecotrain.errors import UserError
from ecotrain.prices import (
    BUILTIN,
    Price,
    PriceError,
    electricity_price,
    gpu_hour_price,
    load_prices,
    normalise_gpu,
)


def test_every_builtin_entry_has_source_and_date() -> None:
    data = tomllib.loads(BUILTIN.read_text())
    for section in ("electricity", "gpu_hour"):
        for key, entry in data[section].items():
            assert entry["price"] > 0, key
            assert entry.get("source") and entry.get("date", "").startswith("20"), key
    for model in ("A100-40GB", "A100-80GB", "H100", "H200", "V100", "L4", "T4", "A10G"):
        assert model in data["gpu_hour"]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("NVIDIA A100-SXM4-80GB", "A100-80GB"),
        ("NVIDIA A100-SXM4-40GB", "A100-40GB"),
        ("NVIDIA A100-PCIE-40GB", "A100-40GB"),
        ("NVIDIA A100 80GB PCIe", "A100-80GB"),
        ("A100", "A100-80GB"),
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA H100 PCIe", "H100"),
        ("NVIDIA H200", "H200"),
        ("Tesla V100-SXM2-16GB", "V100"),
        ("Tesla T4", "T4"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA A10G", "A10G"),
        ("NVIDIA GeForce RTX 4090", "RTX-4090"),
        ("TPU v4", "TPUv4"),
    ],
)
def test_normalise_gpu(name: str, key: str) -> None:
    assert normalise_gpu(name) == key


def test_gpu_hour_prices_from_references() -> None:
    table = load_prices()
    a100 = gpu_hour_price("NVIDIA A100-SXM4-80GB", table)
    assert a100 == Price(5.12, "USD/GPU-hour", a100.source, "A100-80GB", False)
    assert a100.price == a100.value  # the older attribute name still reads
    assert "p4de" in a100.source and "2025" in a100.source
    h100 = gpu_hour_price("NVIDIA H100 80GB HBM3", table)
    # AWS p5: $12.29/GPU-h before the June 2025 cut of up to 45%: 12.29 x 0.55 = 6.76.
    assert h100.value == pytest.approx(12.29 * 0.55, abs=0.01)
    assert "12.29" in h100.source and "45%" in h100.source and h100.approximate
    assert "(approximate)" in h100.source
    gcp = gpu_hour_price("H100", table, provider="gcp")
    assert gcp.value == 11.06 and gcp.key == "H100@gcp" and "GCP" in gcp.source
    assert gpu_hour_price("H100", table, provider="aws").value == h100.value
    assert gpu_hour_price("T4", table, provider="gcp") is None  # no silent provider swap
    assert gpu_hour_price("Tesla V100-SXM2-16GB").value == 3.06
    assert gpu_hour_price("Voodoo5 6000", table) is None


def test_electricity_prices() -> None:
    table = load_prices()
    us = electricity_price("USA/CA", table)
    assert us.value == 0.08 and us.unit == "USD/kWh" and us.key == "USA"
    fra = electricity_price("FRA", table)
    # EUR 0.20/kWh at 1.0824 USD/EUR
    assert fra.value == pytest.approx(0.20 * 1.0824, abs=1e-4) and fra.key == "EU"
    assert "1.0824" in fra.source and "EUR" in fra.source
    assert table.meta["fx_usd_per_eur"] == 1.0824
    japan = electricity_price("JPN", table)
    assert japan.key == "default" and japan.source.startswith("no price for JPN, default:")
    assert electricity_price(None, table).key == "default"


def test_user_file_merges_over_builtin(tmp_path) -> None:
    user = tmp_path / "prices.toml"
    user.write_text(
        '[gpu_hour."H100"]\nprice = 2.5\nsource = "our contract"\ndate = "2025-03"\n'
        '[gpu_hour]\n"B200" = 9.0\n'
        "[electricity.FRA]\nprice = 0.15\n"
    )
    table = load_prices(user)
    h100 = gpu_hour_price("NVIDIA H100 80GB HBM3", table)
    assert h100.value == 2.5 and h100.source == "our contract, 2025-03"
    b200 = gpu_hour_price("B200", table)
    assert b200.value == 9.0 and "user price table" in b200.source
    assert electricity_price("FRA", table).value == 0.15
    assert electricity_price("DEU", table).key == "EU"  # built-in entries remain
    assert gpu_hour_price("T4", table).value == 0.53
    assert table.files[-1] == str(user)
    assert gpu_hour_price("H100").value != 2.5  # the built-in table is untouched


@pytest.mark.parametrize(
    "text",
    [
        '[gpu_hour."H100"]\nprice = -1\n',
        '[gpu_hour."H100"]\nprice = "cheap"\n',
        '[gpu_hour."H100"]\nsource = "no price"\n',
        "[fuel]\nx = 1\n",
        "[gpu_hour\n",
    ],
)
def test_bad_user_file_is_one_line_error(tmp_path, text: str) -> None:
    user = tmp_path / "prices.toml"
    user.write_text(text)
    with pytest.raises(PriceError) as e:
        load_prices(user)
    assert isinstance(e.value, UserError) and isinstance(e.value, ValueError)
    assert str(user) in str(e.value)


def test_missing_user_file(tmp_path) -> None:
    with pytest.raises(PriceError, match="cannot read price table"):
        load_prices(tmp_path / "nope.toml")
