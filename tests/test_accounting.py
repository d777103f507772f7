"""The one accounting function, against hand-computed values."""

from __future__ import annotations

import pytest

from ecotrain.accounting import (
    DEFAULT_PUE,
    DEFAULT_PUE_SOURCE,
    RECORD_KEYS,
    Energy,
    SettingsError,
    Site,
    account,
    account_summaries,
    reprice,
    site_from_settings,
)
from ecotrain.errors import UserError
from ecotrain.grid import Intensity, UnknownRegion, resolve_intensity, world_average
from ecotrain.prices import electricity_price, load_prices
from ecotrain.sensors.base import SensorSummary
from ecotrain.store.schema import runs

ENERGY = Energy(gpu_j=3.6e6, gpu_method="measured", cpu_j=1.8e6, cpu_method="modelled")


def site(**kw) -> Site:
    base = dict(pue=1.2, pue_source="test", intensity=Intensity("X", 100.0, "test"), price=0.10)
    return Site(**{**base, **kw})


def test_account_hand_computed() -> None:
    acc = account(ENERGY, site(price_source="tariff"))
    assert acc.it_energy_kwh == pytest.approx(1.5)  # 3.6e6 J + 1.8e6 J = 5.4e6 J
    assert acc.facility_energy_kwh == pytest.approx(1.8)  # x PUE 1.2
    assert acc.co2_kg == pytest.approx(0.18)  # 1.8 kWh x 100 g/kWh / 1000
    assert acc.cost_usd == pytest.approx(0.18)  # 1.8 kWh x $0.10
    assert acc.cost_reason is None and acc.price_source == "tariff"


def test_france_co2_uses_the_files_intensity() -> None:
    fra = resolve_intensity("FRA")
    acc = account(ENERGY, site(intensity=fra))
    assert acc.co2_kg == pytest.approx(1.8 * fra.g_per_kwh / 1000)  # ~0.10 kg at ~56 g/kWh
    assert acc.co2_kg == pytest.approx(0.1009, abs=0.001)


def test_as_record_is_exactly_the_runs_columns() -> None:
    acc = account(ENERGY, site())
    rec = acc.as_record()
    assert tuple(rec) == RECORD_KEYS
    assert set(rec) == {
        "gpu_energy_j",
        "gpu_method",
        "cpu_energy_j",
        "cpu_method",
        "ram_energy_j",
        "ram_method",
        "it_energy_kwh",
        "pue",
        "pue_source",
        "facility_energy_kwh",
        "region",
        "intensity_g_per_kwh",
        "intensity_source",
        "intensity_boundary",
        "co2_kg",
        "cost_usd",
        "cost_method",
        "price",
        "price_source",
    }
    assert set(rec) <= {c.name for c in runs.columns}
    assert rec["gpu_method"] == "measured" and rec["cpu_method"] == "modelled"
    assert rec["ram_energy_j"] is None and rec["ram_method"] is None
    assert rec["pue"] == 1.2 and rec["intensity_g_per_kwh"] == 100.0 and rec["region"] == "X"
    assert rec["cost_method"] == "electricity" and rec["price"] == 0.10


def test_gpu_hour_cost() -> None:
    cloud = site(
        pue=1.1,
        intensity=Intensity("X", 0.0, "t"),
        cost_method="gpu_hour",
        price=None,
        prices=load_prices(),
    )
    acc = account(
        Energy(gpu_j=1.0, gpu_method="measured"),
        cloud,
        gpu_hours=8 * 2.0,
        gpu_model="NVIDIA A100-SXM4-80GB",
    )
    assert acc.price == 5.12 and "p4de" in acc.price_source
    assert acc.cost_usd == pytest.approx(81.92)  # 8 GPUs x 2 h x $5.12
    # The hardware can ride on the Energy instead of the arguments.
    carried = Energy(gpu_j=1.0, gpu_hours=16.0, gpu_model="NVIDIA A100-SXM4-80GB")
    assert account(carried, cloud).cost_usd == pytest.approx(81.92)
    # A configured price wins over the table.
    fixed = account(carried, site(cost_method="gpu_hour", price=2.0, price_source="contract"))
    assert fixed.cost_usd == pytest.approx(32.0) and fixed.price_source == "contract"


def test_no_cost_is_none_with_a_reason_never_zero() -> None:
    cloud = site(cost_method="gpu_hour", price=None, prices=load_prices())
    cpu_only = account(Energy(cpu_j=3.6e6, cpu_method="measured"), cloud)
    assert cpu_only.cost_usd is None and "no GPU" in cpu_only.cost_reason
    assert cpu_only.co2_kg == pytest.approx(0.12)  # CO2e is still accounted: 1.2 kWh x 100 g
    unknown = account(Energy(gpu_j=1.0), cloud, gpu_hours=1.0, gpu_model="Mystery GPU")
    assert unknown.cost_usd is None and "Mystery GPU" in unknown.cost_reason
    assert unknown.notes == [unknown.cost_reason]
    no_tariff = account(ENERGY, site(price=None))
    assert no_tariff.cost_usd is None and "price_per_kwh" in no_tariff.cost_reason


def test_reprice_is_account_at_another_site() -> None:
    here = site(pue=1.1, intensity=Intensity("FRA", 50.0, "t"), price=0.2)
    acc = reprice(here, it_energy_kwh=100.0)
    # 100 kWh x 1.1 = 110 kWh; x 50 g = 5.5 kg; x $0.20 = $22
    assert (acc.facility_energy_kwh, acc.co2_kg, acc.cost_usd) == pytest.approx((110, 5.5, 22))
    assert acc.energy.gpu_method == "recorded"
    # The same as account() on the same energy: one function.
    same = account(Energy.from_kwh(100.0), here)
    assert same.as_record() == acc.as_record()
    # A stored run, re-accounted from its row.
    row = {
        "gpu_energy_j": 3.6e6,
        "gpu_method": "measured",
        "cpu_energy_j": 1.8e6,
        "cpu_method": "modelled",
        "gpu_hours": 2.0,
        "gpu_model": "NVIDIA H100 80GB HBM3",
    }
    again = reprice(here, energy=Energy.from_record(row))
    assert again.it_energy_kwh == pytest.approx(1.5) and again.gpu_hours == 2.0
    # GPU-hours alone: energy from the GPU's board power (A100-80GB: 400 W).
    cloud = site(
        pue=1.0,
        intensity=Intensity("X", 100.0, "t"),
        cost_method="gpu_hour",
        price=None,
        prices=load_prices(),
    )
    by_hours = reprice(cloud, gpu_hours=10.0, gpu_model="A100-80GB")
    assert by_hours.it_energy_kwh == pytest.approx(4.0)  # 10 h x 400 W
    assert by_hours.cost_usd == pytest.approx(51.2)  # 10 h x $5.12
    with pytest.raises(ValueError):
        reprice(cloud)


def test_site_defaults_are_stated_not_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    fra = site_from_settings({"region": "FRA"})
    assert fra.pue == DEFAULT_PUE == 1.56 and fra.pue_source == DEFAULT_PUE_SOURCE
    assert "1.56" in fra.pue_source and "Uptime" in fra.pue_source
    assert fra.intensity == resolve_intensity("FRA")
    assert fra.price == electricity_price("FRA").value and "Eurostat" in fra.price_source
    assert fra.currency == "USD" and fra.cost_method == "electricity"
    monkeypatch.setenv("TZ", "Etc/UTC")  # no guess possible: the world average, said so
    world = site_from_settings({})
    assert world.intensity == world_average()
    assert "no region is configured" in world.intensity.source
    monkeypatch.setenv("TZ", "Europe/Paris")
    guessed = site_from_settings({})
    assert guessed.intensity.region == "FRA" and "guessed" in guessed.intensity.source


def test_site_configured_values() -> None:
    s = site_from_settings({"region": "USA/CA", "pue": 1.1, "price_per_kwh": 0.12})
    assert s.pue == 1.1 and "configured" in s.pue_source
    assert s.price == 0.12 and "configured" in s.price_source
    assert s.intensity.region == "USA/CA"
    custom = site_from_settings({"region": "FRA", "intensity": 20})
    assert custom.intensity.g_per_kwh == 20 and custom.intensity.region == "FRA"
    assert custom.intensity.source == "user-supplied" and custom.intensity.boundary is None
    cloud = site_from_settings({"cost_method": "gpu_hour", "gpu_model": "NVIDIA H100 80GB HBM3"})
    assert cloud.price == pytest.approx(6.76) and "p5" in cloud.price_source
    per_run = site_from_settings({"region": "FRA", "cost_method": "gpu_hour"})
    assert per_run.price is None  # looked up by each run's GPU
    fixed = site_from_settings(
        {"region": "FRA", "cost_method": "gpu_hour", "price_per_gpu_hour": "2.5"}
    )
    assert fixed.price == 2.5


@pytest.mark.parametrize(
    ("settings", "error", "words"),
    [
        ({"pue": 0.9}, SettingsError, "pue must be between 1.0"),
        ({"pue": 15}, SettingsError, "pue must be between 1.0"),
        ({"pue": "high"}, SettingsError, "pue must be a number"),
        ({"intensity": -5}, SettingsError, "intensity must be >= 0"),
        ({"cost_method": "barter"}, SettingsError, "cost_method must be one of"),
        ({"price_per_kwh": -0.1}, SettingsError, "price must be >= 0"),
        ({"price_per_kwh": "nan"}, SettingsError, "finite"),
        ({"cost_method": "gpu_hour", "gpu_model": "Voodoo5"}, SettingsError, "Voodoo5"),
        ({"region": "Atlantis"}, UnknownRegion, "--region"),
    ],
)
def test_site_validation_is_one_line(settings: dict, error: type, words: str) -> None:
    with pytest.raises(error) as e:
        site_from_settings({"region": "FRA", **settings})
    assert words in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, ValueError) and isinstance(e.value, UserError)


def test_account_summaries_builds_record_and_hardware() -> None:
    s = Site(pue=1.0, pue_source="t", intensity=Intensity("X", 500.0, "t", None, "cc 1"), price=0.2)
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
    rec, hw = account_summaries(summaries, s, 1800.0)
    assert rec["it_energy_kwh"] == pytest.approx(3.0)  # 7.2e6 + 3.6e6 J
    assert rec["co2_kg"] == pytest.approx(1.5)  # 3 kWh x 500 g
    assert rec["cost_usd"] == pytest.approx(0.6)  # 3 kWh x $0.20
    assert rec["data_version"] == "cc 1"
    assert set(rec) == set(RECORD_KEYS) | {"data_version"}
    assert hw["gpu_count"] == 2 and hw["gpu_hours"] == 0.5 and hw["cpu_model"] == "EPYC"
    assert hw["ram_gb_mean"] == 1.5
    # Two sensors of one component with different methods: "mixed".
    both = [
        SensorSummary("gpu", "measured", 1.0, "a", {}),
        SensorSummary("gpu", "integrated", 1.0, "b", {}),
    ]
    assert account_summaries(both, s, 1.0)[0]["gpu_method"] == "mixed"
