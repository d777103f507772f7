"""The what-if calculator, by hand."""

from __future__ import annotations

import tomllib

import pytest

from ecotrain.accounting import Site
from ecotrain.errors import UserError
from ecotrain.estimate import (
    DEFAULT_MFU,
    DEFAULT_POWER_FRACTION,
    GPUS_FILE,
    EstimateError,
    UnknownGPU,
    estimate,
    find_gpu,
    known_gpus,
)
from ecotrain.grid import Intensity
from ecotrain.prices import load_prices

SITE = Site(
    pue=1.1, pue_source="t", intensity=Intensity("X", 400.0, "t"), price=0.10, price_source="t"
)


def test_gpus_times_hours() -> None:
    est = estimate("A100", SITE, gpus=8, hours=72)
    assert est.gpu.key == "A100-80GB" and est.gpu.power_w == 400
    assert est.gpu_hours == 576  # 8 x 72
    # 576 GPU-h x 400 W = 230.4 kWh IT; x 1.1 = 253.44 kWh; x 400 g = 101.376 kg; x $0.10
    assert est.accounting.it_energy_kwh == pytest.approx(230.4)
    assert est.accounting.facility_energy_kwh == pytest.approx(253.44)
    assert est.accounting.co2_kg == pytest.approx(101.376)
    assert est.accounting.cost_usd == pytest.approx(25.344)
    assert est.accounting.energy.gpu_method == "estimated"
    assert est.flops is None and est.mfu is None and est.basis == "8 x A100-80GB for 72 h"
    assert est.power_fraction == DEFAULT_POWER_FRACTION == 1.0


def test_gpu_hour_pricing_of_an_estimate() -> None:
    cloud = Site(
        pue=1.1,
        pue_source="t",
        intensity=Intensity("X", 400.0, "t"),
        cost_method="gpu_hour",
        prices=load_prices(),
    )
    est = estimate("NVIDIA A100-SXM4-80GB", cloud, gpus=8, hours=2)
    assert est.accounting.cost_usd == pytest.approx(81.92)  # 8 GPUs x 2 h x $5.12


def test_power_fraction() -> None:
    est = estimate("H100", SITE, gpu_hours=10, power_fraction=0.8)
    assert est.accounting.it_energy_kwh == pytest.approx(5.6)  # 10 h x 700 W x 0.8


def test_six_n_d_flops() -> None:
    est = estimate("H100", SITE, params=7e9, tokens=2e12, mfu=0.4)
    assert est.flops == pytest.approx(8.4e22)  # 6 x 7e9 x 2e12
    # 8.4e22 FLOPs / (989e12 FLOP/s x 0.4) = 2.12336e8 s = 58,982.14 GPU-hours
    assert est.gpu_hours == pytest.approx(8.4e22 / (989e12 * 0.4) / 3600)
    assert est.gpu_hours == pytest.approx(58_982, abs=1)
    # x 700 W = 41,287.5 kWh IT
    assert est.accounting.it_energy_kwh == pytest.approx(41_287.5, abs=0.01)
    assert est.mfu == 0.4 == DEFAULT_MFU and "6 x" in est.basis and "40% MFU" in est.basis
    a100 = estimate("A100-80GB", SITE, params=7e9, tokens=2e12)
    assert a100.gpu_hours == pytest.approx(8.4e22 / (312e12 * 0.4) / 3600)  # 186,966 h


def test_unknown_gpu_lists_known() -> None:
    with pytest.raises(UnknownGPU) as e:
        find_gpu("Voodoo5")
    message = str(e.value)
    assert "A100-80GB" in message and "H100" in message and "\n" not in message
    assert isinstance(e.value, ValueError) and isinstance(e.value, UserError)
    with pytest.raises(UnknownGPU, match="did you mean H100"):
        find_gpu("H1000")


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("NVIDIA A100-SXM4-40GB", "A100-40GB"),
        ("NVIDIA A100-SXM4-80GB", "A100-80GB"),
        ("NVIDIA A100 80GB PCIe", "A100-80GB-PCIe"),
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA H100 PCIe", "H100-PCIe"),
        ("h200", "H200"),
        ("Tesla V100-SXM2-32GB", "V100"),
        ("NVIDIA GeForce RTX 3090", "RTX-3090"),
        ("rtx-4090", "RTX-4090"),
        ("TPU v3", "TPUv3"),
        ("tpuv4", "TPUv4"),
    ],
)
def test_find_gpu_forgiving_names(name: str, key: str) -> None:
    assert find_gpu(name).key == key


def test_gpu_table_is_complete_and_sourced() -> None:
    data = tomllib.loads(GPUS_FILE.read_text())
    for key in (
        "V100",
        "A100-40GB",
        "A100-80GB",
        "H100",
        "H200",
        "L4",
        "T4",
        "A10G",
        "RTX-3090",
        "RTX-4090",
        "TPUv3",
        "TPUv4",
    ):
        entry = data[key]
        assert entry["power_w"] > 0 and entry["peak_tflops"] > 0 and entry["source"], key
    assert known_gpus()["TPUv4"].approximate and not known_gpus()["H100"].approximate


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"hours": -1},
        {"gpus": 0, "hours": 1},
        {"params": 7e9, "tokens": 2e12, "mfu": 0},
        {"params": 7e9, "tokens": 2e12, "mfu": 1.5},
        {"gpu_hours": 1, "power_fraction": 0},
    ],
)
def test_bad_input_is_one_line_error(kwargs: dict) -> None:
    with pytest.raises(EstimateError) as e:
        estimate("H100", SITE, **kwargs)
    assert isinstance(e.value, ValueError) and "\n" not in str(e.value)


def test_table_says_tdp_or_measured_and_cites_each_row() -> None:
    for key, gpu in known_gpus().items():
        assert gpu.power_kind in ("tdp", "measured-average"), key
        assert gpu.source and gpu.power_w > 0, key
    # TPU v3: no public TDP; 220 W (listed before) was a TPU v2 figure. Patterson et al. 2021
    # Table 4 gives 310 W average per chip for T5.
    tpu = known_gpus()["TPUv3"]
    assert tpu.power_w == 310 and tpu.power_kind == "measured-average"
    assert "Patterson" in tpu.source
    # PCIe and SXM parts are told apart: Stable Diffusion's A100 PCIe 40GB is 250 W.
    assert find_gpu("NVIDIA A100-PCIE-40GB").power_w == 250
    assert find_gpu("A100-40GB").power_w == 400
    v100 = known_gpus()["V100"]
    assert v100.power_w == 300 and v100.measured_w == 330 and "Table 4" in v100.measured_source


def test_stated_power_overrides_the_table_and_is_listed_as_given() -> None:
    est = estimate("A100-80GB", SITE, gpu_hours=1_038_336, power_w=350)
    assert est.accounting.it_energy_kwh == pytest.approx(363_417.6)  # 350 W, not 400 W
    inputs = {i.name: i for i in est.inputs}
    assert inputs["power_w"].given and inputs["power_w"].value == 350
    assert est.power_basis == "350 W per accelerator (given)"
    default = estimate("A100-80GB", SITE, gpu_hours=10)
    assert not {i.name: i for i in default.inputs}["power_w"].given
    assert "A100-80GB TDP" in default.power_basis


def test_days_and_system_power() -> None:
    est = estimate("V100", SITE, gpus=64, days=79 / 24, system_power_w=12_041.51)
    assert est.gpu_hours == pytest.approx(5056)
    assert est.accounting.it_energy_kwh == pytest.approx(951.279, abs=0.001)
    assert est.power_w is None and "total system power" in est.power_basis
    with pytest.raises(EstimateError, match="wall-clock"):
        estimate("V100", SITE, gpu_hours=5056, system_power_w=12_041.51)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 0.0, -1.0])
def test_non_finite_or_non_positive_numbers_refused(value: float) -> None:
    for kwargs in ({"hours": value}, {"gpu_hours": value}, {"gpu_hours": 1, "power_w": value}):
        with pytest.raises(EstimateError) as e:
            estimate("H100", SITE, **kwargs)
        assert "\n" not in str(e.value)
