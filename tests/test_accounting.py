"""Grid intensity, prices and the accounting chain, against hand-computed values."""

from __future__ import annotations

import json

import pytest

from ecotrain.accounting import (
    DEFAULT_PUE,
    Energy,
    Site,
    account,
    account_summaries,
    site_from_settings,
)
from ecotrain.errors import UserError
from ecotrain.grid import (
    LBS_PER_MWH_TO_G_PER_KWH,
    Intensity,
    UnknownRegion,
    data_dir,
    resolve_intensity,
)
from ecotrain.prices import electricity_price, gpu_hour_price, load_prices, normalise_gpu
from ecotrain.sensors.base import SensorSummary


def raw(relative: str) -> dict:
    return json.loads((data_dir() / "private_infra" / relative).read_text())


def test_country_intensity_is_read_from_codecarbon_file() -> None:
    fra = resolve_intensity("FRA")
    assert fra.g_per_kwh == raw("global_energy_mix.json")["FRA"]["carbon_intensity"]
    assert 40 < fra.g_per_kwh < 70  # ~56 g/kWh, nuclear-heavy grid
    assert "global_energy_mix" in fra.source and fra.year
    assert resolve_intensity("france") == fra
    assert resolve_intensity("fra") == fra


def test_us_state_converts_lbs_per_mwh() -> None:
    ca = resolve_intensity("USA/CA")
    lbs = raw("2023/usa_emissions.json")["california"]["emissions"]
    assert ca.g_per_kwh == pytest.approx(lbs * 0.45359237, abs=1e-3)
    assert LBS_PER_MWH_TO_G_PER_KWH == 0.45359237
    assert resolve_intensity("USA-CA") == ca
    assert ca.region == "USA/CA" and "eGRID" in ca.source


def test_canadian_province_from_mix_and_factors() -> None:
    qc = resolve_intensity("CAN/QC")
    # Quebec 2023: gas 0.2, petroleum 0.3, biomass 0.7, solar 0.01, wind 6.7, hydro 92.1 (%)
    expected = (0.2 * 743 + 0.3 * 816 + 0.7 * 230 + 0.01 * 48 + 6.7 * 26 + 92.1 * 26) / 100.01
    assert qc.g_per_kwh == pytest.approx(expected, abs=1e-3)
    assert qc.region == "CAN/QC"


def test_unknown_region_is_a_helpful_error() -> None:
    with pytest.raises(UnknownRegion) as e:
        resolve_intensity("FRX")
    message = str(e.value)
    assert "FRX" in message and "--region" in message and "FRA" in message
    with pytest.raises(UnknownRegion):
        resolve_intensity("USA/ZZ")


def test_account_hand_computed() -> None:
    site = Site(
        pue=1.2,
        pue_source="test",
        intensity=Intensity("X", 100.0, "test"),
        price=0.10,
        price_source="test",
    )
    energy = Energy(gpu_j=3.6e6, gpu_method="measured", cpu_j=1.8e6, cpu_method="modelled")
    acc = account(energy, site)
    assert acc.it_energy_kwh == pytest.approx(1.5)
    assert acc.facility_energy_kwh == pytest.approx(1.8)
    assert acc.co2_kg == pytest.approx(0.18)  # 1.8 kWh x 100 g/kWh
    assert acc.cost_usd == pytest.approx(0.18)  # 1.8 kWh x $0.10
    rec = acc.as_record()
    assert rec["gpu_method"] == "measured" and rec["cpu_method"] == "modelled"
    assert rec["pue"] == 1.2 and rec["intensity_g_per_kwh"] == 100.0


def test_gpu_hour_cost() -> None:
    site = Site(
        pue=1.1,
        pue_source="t",
        intensity=Intensity("X", 0.0, "t"),
        cost_method="gpu_hour",
        prices=load_prices(),
    )
    acc = account(
        Energy(gpu_j=1.0, gpu_method="measured"),
        site,
        gpu_hours=16.0,
        gpu_model="NVIDIA A100-SXM4-80GB",
    )
    assert acc.price == 5.12
    assert acc.cost_usd == pytest.approx(81.92)  # 8 GPUs x 2 h x $5.12
    unknown = account(Energy(gpu_j=1.0), site, gpu_hours=1.0, gpu_model="Mystery GPU")
    assert unknown.cost_usd is None and unknown.notes


def test_site_defaults_are_stated_not_silent() -> None:
    site = site_from_settings({"region": "FRA"})
    assert site.pue == DEFAULT_PUE == 1.56
    assert "1.56" in site.pue_source
    assert site.price == electricity_price("FRA").price
    assert site.price_source
    world = site_from_settings({})
    assert world.intensity.g_per_kwh > 0 and world.intensity.source


def test_site_validation() -> None:
    with pytest.raises(UserError):
        site_from_settings({"pue": 0.9})
    with pytest.raises(UserError):
        site_from_settings({"cost_method": "barter"})
    with pytest.raises(UnknownRegion):
        site_from_settings({"region": "Atlantis"})
    custom = site_from_settings({"region": "FRA", "intensity": 20})
    assert custom.intensity.g_per_kwh == 20 and "override" in custom.intensity.source


def test_prices_table_and_user_override(tmp_path) -> None:
    assert normalise_gpu("NVIDIA H100 80GB HBM3") == "H100"
    assert normalise_gpu("NVIDIA A100-SXM4-40GB") == "A100-40GB"
    assert gpu_hour_price("Tesla V100-SXM2-16GB").price == 3.06
    user = tmp_path / "prices.toml"
    user.write_text('[gpu_hour]\n"H100" = { price = 2.5, source = "our contract" }\n')
    table = load_prices(user)
    price = gpu_hour_price("NVIDIA H100 80GB HBM3", table)
    assert price.price == 2.5 and "our contract" in price.source
    assert gpu_hour_price("T4", table).price == 0.53  # built-in entries remain


def test_account_summaries_builds_record_and_hardware() -> None:
    site = Site(pue=1.0, pue_source="t", intensity=Intensity("X", 500.0, "t"), price=0.2)
    summaries = [
        SensorSummary(
            "gpu",
            "measured",
            7.2e6,
            "nvml",
            {"model": "A100", "count": 2, "gpu_hours": 0.5, "mean_power_w": 300.0},
        ),
        SensorSummary("cpu", "modelled", 3.6e6, "cpu", {"cpu_model": "EPYC", "cpu_count": 8}),
        SensorSummary("ram", "modelled", 0.0, "ram", {"mean_rss_gb": 1.5}),
    ]
    rec, hw = account_summaries(summaries, site, 1800.0)
    assert rec["it_energy_kwh"] == pytest.approx(3.0)
    assert rec["co2_kg"] == pytest.approx(1.5)
    assert rec["cost_usd"] == pytest.approx(0.6)
    assert hw["gpu_count"] == 2 and hw["gpu_hours"] == 0.5 and hw["cpu_model"] == "EPYC"
    assert hw["ram_gb_mean"] == 1.5
