"""The what-if calculator, by hand."""

from __future__ import annotations

import pytest

from ecotrain.accounting import Site
from ecotrain.estimate import UnknownGPU, estimate, find_gpu
from ecotrain.grid import Intensity

SITE = Site(
    pue=1.1, pue_source="t", intensity=Intensity("X", 400.0, "t"), price=0.10, price_source="t"
)


def test_gpus_times_hours() -> None:
    est = estimate("A100", SITE, gpus=8, hours=72)
    assert est.gpu_hours == 576
    # 576 GPU-h x 400 W = 230.4 kWh IT; x1.1 = 253.44 kWh; x 400 g = 101.376 kg; x $0.10
    assert est.accounting.it_energy_kwh == pytest.approx(230.4)
    assert est.accounting.facility_energy_kwh == pytest.approx(253.44)
    assert est.accounting.co2_kg == pytest.approx(101.376)
    assert est.accounting.cost_usd == pytest.approx(25.344)


def test_six_n_d_flops() -> None:
    est = estimate("H100", SITE, params=7e9, tokens=2e12, mfu=0.4)
    assert est.flops == pytest.approx(8.4e22)
    # 8.4e22 / (989e12 x 0.4) s = 2.1233e8 s = 58,981 GPU-hours
    assert est.gpu_hours == pytest.approx(8.4e22 / (989e12 * 0.4) / 3600)
    assert "6 x" in est.basis


def test_unknown_gpu_lists_known() -> None:
    with pytest.raises(UnknownGPU) as e:
        find_gpu("Voodoo5")
    assert "A100-80GB" in str(e.value) and "H100" in str(e.value)
    assert find_gpu("NVIDIA A100-SXM4-40GB").key == "A100-40GB"
