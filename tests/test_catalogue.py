"""The catalogue reproduces the literature: each entry's published CO2e from its own inputs.

Published figures (shared/REFERENCES.md, each with its primary source in the entry):
BLOOM-176B 24.7 t (Luccioni et al. 2022), Llama 2 7B/13B/34B/70B 31.22/62.44/153.90/291.42 t
and 539.00 t in all (Touvron et al. 2023b, Table 2), LLaMA-65B 173 t (Touvron et al. 2023a,
Table 15), BERT-base 1,438 lb (Strubell et al. 2019, Table 3), OPT-175B 75 t (Zhang et al.
2022). Tolerance: 2 %, as the issue asks; most reproduce far closer (noted per case).
"""

from __future__ import annotations

import tomllib
from dataclasses import replace

import pytest

from ecotrain.catalogue import CATALOGUE_FILE, entries, lookup
from ecotrain.estimate import find_gpu

LB = 0.45359237  # kg per lb


def co2(key: str) -> float:
    """The entry's CO2e (kg) recomputed from its stored inputs."""
    recomputed = entries()[key].recompute()
    assert recomputed.co2_kg is not None, (key, recomputed.how)
    return recomputed.co2_kg


def test_bloom_from_its_inputs() -> None:
    bloom = lookup("bigscience/bloom")
    # 1,082,990 GPU-h x 400 W = 433,196 kWh dynamic energy; no PUE applied; x 57 g = 24.69 t
    assert bloom.recompute().it_energy_kwh == pytest.approx(433_196)
    assert co2("bloom-176b") == pytest.approx(24_700, rel=0.02)
    assert co2("bloom-176b") == pytest.approx(24_692.2, abs=0.1)
    assert bloom.pue == 1.0 and "1.2" in bloom.note  # stated beside, not applied
    assert bloom.it_energy_kwh == bloom.energy_kwh == 433_196


@pytest.mark.parametrize(
    ("key", "tonnes", "watts"),
    [
        ("llama-2-7b", 31.22, 400),
        ("llama-2-13b", 62.44, 400),
        ("llama-2-34b", 153.90, 350),  # the production cluster's 350 W cap, not 400 W
        ("llama-2-70b", 291.42, 400),
    ],
)
def test_llama_2_table_2(key: str, tonnes: float, watts: int) -> None:
    entry = entries()[key]
    assert entry.power_w == watts and entry.pue == 1.1 and entry.intensity_g_per_kwh == 385
    assert entry.co2_kg == pytest.approx(tonnes * 1000)
    assert co2(key) == pytest.approx(tonnes * 1000, rel=0.02)
    assert co2(key) == pytest.approx(tonnes * 1000, abs=10)  # to 0.01 t, as printed


def test_llama_2_total_539_t() -> None:
    keys = ("llama-2-7b", "llama-2-13b", "llama-2-34b", "llama-2-70b")
    assert sum(entries()[k].gpu_hours for k in keys) == 3_311_616  # Table 2's 3.3M GPU-h
    assert sum(co2(k) for k in keys) == pytest.approx(539_000, rel=0.02)
    assert sum(co2(k) for k in keys) == pytest.approx(539_000, abs=10)


def test_llama_65b_table_15() -> None:
    entry = lookup("huggyllama/llama-65b")
    recomputed = entry.recompute()
    assert recomputed.facility_energy_kwh == pytest.approx(449_000, rel=0.01)  # 449 MWh
    assert co2("llama-65b") == pytest.approx(173_000, rel=0.02)
    # the stated 449 MWh is facility energy: IT = 449 MWh / 1.1, never x PUE again
    assert entry.energy_basis == "facility"
    assert entry.it_energy_kwh == pytest.approx(449_000 / 1.1)


def test_bert_base_per_strubell() -> None:
    bert = lookup("bert-base-uncased")
    # Measured total system power 12,041.51 W (CPU + DRAM + 64 GPUs) x 79 h = 951.3 kWh IT,
    # not 5,056 V100-h x 300 W TDP = 1,516.8 kWh (+59 %).
    assert bert.recompute().it_energy_kwh == pytest.approx(951.28, abs=0.01)
    assert bert.recompute().facility_energy_kwh == pytest.approx(1507, rel=0.02)
    assert bert.co2_kg == pytest.approx(1438 * LB, abs=0.01)  # 1,438 lb
    assert co2("bert-base") == pytest.approx(1438 * LB, rel=0.02)
    assert bert.intensity_g_per_kwh == pytest.approx(0.954 * LB * 1000, abs=0.001)
    assert bert.energy_kwh == 1507 and bert.it_energy_kwh == pytest.approx(1507 / 1.58)


def test_opt_175b_states_only_its_total() -> None:
    opt = lookup("facebook/opt-175b")
    assert opt.co2_kg == 75_000 and opt.gpus == 992
    assert "Zhang" in opt.sources["co2_kg"] and "Zhang" in opt.sources["gpus"]
    # Zhang et al. publish no PUE or intensity: the 75 t cannot be recomputed, and the entry
    # says so instead of inventing them.
    assert opt.recompute().co2_kg is None and opt.pue is None and opt.energy_kwh is None
    assert opt.secondary and "cannot be recomputed" in opt.note
    # Its GPU-hours are LLaMA's (Table 15), and under LLaMA's assumptions they give LLaMA's
    # own figures for OPT: 356 MWh and 137 t.
    assert "Table 15" in opt.sources["gpu_hours"]
    llama_way = replace(opt, pue=1.1, intensity_g_per_kwh=385).recompute()
    assert llama_way.facility_energy_kwh == pytest.approx(356_000, rel=0.02)
    assert llama_way.co2_kg == pytest.approx(137_000, rel=0.02)


@pytest.mark.parametrize("key", sorted(tomllib.loads(CATALOGUE_FILE.read_text())))
def test_every_entry_reproduces_or_says_why_not(key: str) -> None:
    entry = entries()[key]
    assert entry.citation and entry.co2_kg and entry.co2_kg > 0
    assert entry.co2_basis in ("location-based", "market-based", "unstated")
    recomputed = entry.recompute()
    if recomputed.co2_kg is not None:
        assert recomputed.co2_kg == pytest.approx(entry.co2_kg, rel=0.02), recomputed.how
    else:
        assert entry.note and "recomputed" in entry.note, key  # it says why not
    # every number stored has a source; the derived energies are not stored in the file
    raw = tomllib.loads(CATALOGUE_FILE.read_text())[key]
    for name in ("gpu_hours", "power_w", "system_power_w", "pue", "intensity_g_per_kwh"):
        if name in raw and not (name == "pue" and raw[name] == 1.0):
            assert name in entry.sources, (key, name)
    assert "co2_kg" in entry.sources, key
    if entry.verified:  # primary sources only
        assert entry.checked and not entry.secondary, key
    if entry.gpu_model:
        find_gpu(entry.gpu_model)  # a known accelerator


def test_stable_diffusion_is_the_pcie_part() -> None:
    sd = lookup("CompVis/stable-diffusion-v1-4")
    assert sd.gpu_model == "A100-40GB-PCIe" and find_gpu(sd.gpu_model).power_w == 250
    assert sd.it_energy_kwh == pytest.approx(37_500)  # 150,000 h x 250 W
    assert co2("stable-diffusion-v1") == pytest.approx(11_250)


def test_reuse_counterfactual_uses_the_sources_energy(tmp_path) -> None:
    """`reproduce` re-prices the IT energy the source used: Llama 2 34B at 350 W, LLaMA-65B's
    449 MWh divided by its PUE once (not multiplied by a PUE again), BERT's measured power."""
    from ecotrain.accounting import Site
    from ecotrain.grid import Intensity
    from ecotrain.savings import avoided, checkpoint_footprint
    from ecotrain.store.db import Store

    engine = Store(str(tmp_path / "fp.db")).engine
    site = Site(pue=1.2, pue_source="t", intensity=Intensity("X", 100.0, "t"), price=0.1)
    cases = {
        "hf:meta-llama/Llama-2-34b": 1_038_336 * 0.350,
        "hf:huggyllama/llama-65b": 449_000 / 1.1,
        "hf:bert-base-uncased": 1507 / 1.58,
        "hf:bigscience/bloom": 433_196,
    }
    for checkpoint_id, it_kwh in cases.items():
        fp = checkpoint_footprint(engine, checkpoint_id)
        assert fp.source == "catalogue" and fp.it_energy_kwh == pytest.approx(it_kwh)
        again = avoided(fp, "reproduce", site)
        assert again.energy_kwh == pytest.approx(it_kwh * 1.2), checkpoint_id
        assert again.co2_kg == pytest.approx(it_kwh * 1.2 * 0.1), checkpoint_id
