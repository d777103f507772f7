"""`ecotrain estimate` and `ecotrain checkpoint register` through the real entry point.

Given the inputs a paper states, both reproduce its figures; computed figures are labelled
"estimated from ...", published ones "as published"; a bad number is one line and exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlite_utils

from ecotrain.footprints import stated_footprint
from tests.conftest import ROOT, run_cli

UTC = {"TZ": "UTC"}  # no region guessed from the host's time zone


def footprint_row(db_path: Path, checkpoint_id: str) -> dict:
    return sqlite_utils.Database(db_path)["checkpoints"].get(checkpoint_id)


def test_readme_llama_2_7b_register_reproduces_table_2(db_path: Path) -> None:
    (line,) = [
        line.strip()
        for line in (ROOT / "README.md").read_text().splitlines()
        if "checkpoint register meta-llama/Llama-2-7b-hf" in line
    ]
    import shlex

    argv = shlex.split(line.split(" #")[0])
    assert argv[0] == "ecotrain"
    out = run_cli(*argv[1:], env=UTC)
    assert out.returncode == 0, out.stderr
    row = footprint_row(db_path, "hf:meta-llama/Llama-2-7b-hf")
    # 184,320 GPU-h x 400 W x PUE 1.1 x 0.385 kg/kWh = 31,223.8 kg: Table 2 prints 31.22 t
    assert row["fp_co2_kg"] == pytest.approx(31_220, rel=0.001)
    assert row["fp_energy_kwh"] == pytest.approx(81_100.8)
    assert row["fp_pue"] == 1.1 and row["fp_intensity_g_per_kwh"] == 385
    assert row["fp_gpu_model"] == "A100-80GB" and row["fp_gpu_hours"] == 184_320
    citation = row["footprint_citation"]
    assert "estimated from" in citation and "as published" not in citation
    assert "Touvron" in citation and "(given)" in citation and "default" not in citation
    assert "31.2 t" in out.stdout


def test_register_as_published_is_labelled_so(db_path: Path) -> None:
    out = run_cli(
        "checkpoint", "register", "meta-llama/Llama-2-13b-hf", "--co2-kg", "62440",
        "--source", "Touvron et al. 2023b, Table 2", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["fp_co2_kg"] == 62_440 and data["fp_energy_kwh"] is None
    assert data["footprint_citation"] == "as published: Touvron et al. 2023b, Table 2"


def test_register_with_defaults_says_they_are_defaults(db_path: Path) -> None:
    # No PUE, no region: the old README line. It is an estimate, and says which inputs
    # were defaults (PUE 1.56, the world average), never that it is the published figure.
    out = run_cli(
        "checkpoint", "register", "org/model", "--gpu", "A100-80GB", "--gpu-hours", "184320",
        "--source", "paper", env=UTC,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    citation = footprint_row(db_path, "hf:org/model")["footprint_citation"]
    assert citation.startswith("inputs from: paper; energy and CO2e estimated from")
    assert "PUE 1.56 (default)" in citation and "world average" in citation
    assert "A100-80GB TDP" in citation


def test_estimate_reproduces_llama_2_34b_at_350_w() -> None:
    out = run_cli(
        "estimate", "--gpu", "A100-80GB", "--gpu-hours", "1038336", "--power-w", "350",
        "--pue", "1.1", "--intensity", "385", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["co2_kg"] == pytest.approx(153_900, rel=0.001)  # Table 2: 153.90 t
    assert data["power_w"] == 350 and data["defaults"] == []
    assert data["kind"].startswith("reproduction")
    assert data["intensity_source"] == "user-supplied"


def test_estimate_reproduces_bert_from_total_system_power() -> None:
    # Strubell et al. 2019: 64 V100 x 79 h at a measured 12,041.51 W in all, PUE 1.58,
    # 0.954 lb/kWh -> 1,507 kWh and 1,438 lb (652.3 kg) in Table 3.
    out = run_cli(
        "estimate", "--accelerator", "V100", "--gpus", "64", "--hours", "79",
        "--system-power-w", "12041.51", "--pue", "1.58", "--intensity", "432.727", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["facility_energy_kwh"] == pytest.approx(1507, rel=0.02)
    assert data["co2_kg"] == pytest.approx(1438 * 0.45359237, rel=0.02)
    assert data["gpu_hours"] == 5056 and data["power_w"] is None


def test_estimate_days_tpu_and_defaults_listed() -> None:
    # T5 per Patterson et al. 2021: 512 TPU v3 for 20 days, table power 310 W, PUE 1.12,
    # 545 g/kWh -> 85.7 MWh, 46.7 t.
    out = run_cli(
        "estimate", "--gpu", "TPUv3", "--gpus", "512", "--days", "20", "--pue", "1.12",
        "--intensity", "545", "--json",
    )  # fmt: skip
    data = json.loads(out.stdout)
    assert data["gpu_hours"] == 512 * 480
    assert data["facility_energy_kwh"] == pytest.approx(85_700, rel=0.02)
    assert data["co2_kg"] == pytest.approx(46_700, rel=0.02)
    assert data["defaults"] == ["power_w"]  # the table's figure, not the user's
    text = run_cli("estimate", "--gpu", "H100", "--gpus", "8", "--hours", "10", env=UTC)
    assert "defaults: power_w" in text.stdout and "pue (default" in text.stdout
    assert "intensity (world average" in text.stdout and "estimate:" in text.stdout


def test_estimate_cloud_region() -> None:
    out = run_cli(
        "estimate", "--gpu", "H100", "--gpu-hours", "1000", "--pue", "1.1",
        "--region", "gcp:europe-west9", "--json",
    )  # fmt: skip
    data = json.loads(out.stdout)
    assert data["region"] == "gcp:europe-west9" and data["intensity_g_per_kwh"] == 34
    assert data["intensity_boundary"] == "direct"
    assert data["co2_kg"] == pytest.approx(1000 * 0.7 * 1.1 * 34 / 1000)


def test_estimate_labels_a_given_intensity_and_an_explicit_world_region() -> None:
    """A bare --intensity reads "user-supplied" (not "custom"), with no stand-in price
    remark for a region called CUSTOM; --region WORLD is given, not a default."""
    bare = run_cli("estimate", "--gpu", "A100-80GB", "--gpu-hours", "1000", "--intensity", "100")
    assert "at 100 g/kWh (user-supplied)" in bare.stdout
    assert "(custom)" not in bare.stdout and "CUSTOM" not in bare.stdout
    with_region = run_cli(
        "estimate", "--gpu", "A100-80GB", "--gpu-hours", "1000", "--region", "FRA",
        "--intensity", "30",
    )  # fmt: skip
    assert "at 30 g/kWh (FRA, user-supplied)" in with_region.stdout
    world = json.loads(
        run_cli(
            "estimate",
            "--gpu",
            "A100-80GB",
            "--gpu-hours",
            "1000",
            "--region",
            "world",
            "--json",
        ).stdout  # fmt: skip
    )
    assert "intensity" not in world["defaults"]
    assert world["region"] == "WORLD" and world["intensity_boundary"] == "lifecycle"
    default = json.loads(
        run_cli("estimate", "--gpu", "A100-80GB", "--gpu-hours", "1000", "--json", env=UTC).stdout
    )
    assert "intensity" in default["defaults"]


BAD = [
    # issue 16, item 8
    ("checkpoint", "register", "org/m", "--energy-kwh", "-1"),
    ("checkpoint", "register", "org/m", "--co2-kg", "nan"),
    ("checkpoint", "register", "org/m", "--co2-kg", "inf"),
    ("checkpoint", "register", "org/m", "--gpu", "A100", "--gpu-hours", "inf"),
    ("checkpoint", "register", "org/m", "--co2-kg", "1", "--energy-kwh", "2", "--gpu",
     "A100", "--gpu-hours", "inf"),
    ("checkpoint", "register", "org/m", "--gpu-hours", "3"),
    ("checkpoint", "register", "org/m"),
    ("checkpoint", "register", "org/m", "--gpu", "Voodoo5", "--gpu-hours", "1"),
    ("estimate", "--gpu", "A100", "--hours", "0"),
    ("estimate", "--gpu", "A100", "--hours", "inf"),
    ("estimate", "--gpu", "A100", "--hours", "nan"),
    # issue 13, bad input
    ("estimate", "--gpu", "Voodoo5", "--hours", "1"),
    ("estimate", "--gpu", "A100", "--gpus", "0", "--hours", "1"),
    ("estimate", "--gpu", "A100", "--gpus", "-2", "--hours", "1"),
    ("estimate", "--gpu", "A100", "--gpu-hours", "-5"),
    ("estimate", "--gpu", "A100", "--days", "0"),
    ("estimate", "--gpu", "A100", "--gpu-hours", "5", "--power-w", "0"),
    ("estimate", "--gpu", "A100", "--gpu-hours", "5", "--power-w", "-300"),
    ("estimate", "--gpu", "A100", "--gpus", "8", "--hours", "1", "--system-power-w", "-1"),
    ("estimate", "--gpu", "A100", "--gpu-hours", "5", "--pue", "0.9"),
    ("estimate", "--gpu", "A100", "--gpu-hours", "5", "--pue", "5.5"),
    ("estimate", "--gpu", "A100", "--gpu-hours", "5", "--intensity", "-1"),
    ("estimate", "--gpu", "A100", "--gpu-hours", "5", "--intensity", "nan"),
    ("estimate", "--gpu", "A100", "--hours", "1", "--days", "1"),
    ("estimate", "--gpu", "A100", "--params", "7e9", "--tokens", "2e12", "--mfu", "0"),
    ("estimate", "--gpu", "A100"),
]  # fmt: skip


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a) for a in BAD])
def test_bad_input_is_one_line_and_exit_2(argv: tuple[str, ...], db_path: Path) -> None:
    out = run_cli(*argv)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ecotrain: error: "), out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    if "Voodoo5" in argv:
        assert "known: " in lines[0] and "A100-80GB" in lines[0] and "TPUv3" in lines[0]
    if argv[0] == "checkpoint":  # nothing was registered
        assert (
            not db_path.exists()
            or "checkpoints" not in sqlite_utils.Database(db_path).table_names()
            or (sqlite_utils.Database(db_path)["checkpoints"].count == 0)
        )


def test_gpu_hours_without_gpu_names_the_fix() -> None:
    out = run_cli("checkpoint", "register", "org/m", "--gpu-hours", "3")
    assert "--gpu" in out.stderr and out.returncode == 2


def test_stated_footprint_keeps_a_published_pue() -> None:
    stated = stated_footprint(energy_kwh=1507, co2_kg=652.27, source="Strubell", pue=1.58)
    assert stated.row["fp_pue"] == 1.58 and stated.estimated == []
    assert stated.row["footprint_citation"] == "as published: Strubell"
