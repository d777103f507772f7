"""Checkpoint lineage and reuse savings, through real `ecotrain run` subprocesses."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
import sqlite_utils

from ecotrain.accounting import Site
from ecotrain.catalogue import lookup
from ecotrain.grid import Intensity
from ecotrain.lineage import hf_info, read_model_card
from ecotrain.savings import Footprint, avoided, avoided_for_runs, checkpoint_footprint
from ecotrain.store.db import Store
from ecotrain.store.queries import RunFilter
from tests.conftest import run_cli

PY = sys.executable
ST = "import numpy as np; from safetensors.numpy import load_file, save_file; "
SAVE = ST + "save_file({{'w': np.arange(5000, dtype=float) * {k}}}, {out!r})"
LOAD_SAVE = ST + "w = load_file({src!r})['w']; save_file({{'w': w + {k}}}, {out!r})"


def sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def run(project: str, code: str, *extra: str) -> str:
    result = run_cli("run", "-q", "--project", project, *extra, "--", PY, "-c", code)
    assert result.returncode == 0, result.stderr
    return result


def links(db: Path) -> list[dict]:
    assert run_cli("sync", "-q").returncode == 0
    database = sqlite_utils.Database(db)
    return list(
        database.query(
            "select r.project, l.checkpoint_id, l.role, l.detected_by, l.path "
            "from run_checkpoints l join runs r using (run_id) order by r.started_at, l.role"
        )
    )


def test_pretrain_finetune_dag_and_content_identity(db_path: Path, tmp_path: Path) -> None:
    pre, ft1, ft2 = (tmp_path / f"{n}.safetensors" for n in ("pre", "ft1", "ft2"))
    run("foundation", SAVE.format(out=str(pre), k=1))
    copy = tmp_path / "copied" / "pre.safetensors"
    copy.parent.mkdir()
    shutil.copy(pre, copy)  # the same weights on another path are the same checkpoint
    run("legal", LOAD_SAVE.format(src=str(pre), out=str(ft1), k=1))
    run("finance", LOAD_SAVE.format(src=str(copy), out=str(ft2), k=2))
    rows = links(db_path)
    by = {(r["project"], r["role"]): r for r in rows}
    assert by[("foundation", "produced")]["checkpoint_id"] == sha(pre)
    assert by[("legal", "consumed")]["checkpoint_id"] == sha(pre)
    assert by[("finance", "consumed")]["checkpoint_id"] == sha(pre)  # via the copy
    assert by[("legal", "produced")]["checkpoint_id"] == sha(ft1)
    assert by[("finance", "produced")]["checkpoint_id"] == sha(ft2)
    assert {r["detected_by"] for r in rows} == {"audit"}

    store = Store(str(db_path))
    # The fine-tune's footprint includes its ancestor, each run once.
    fp1 = checkpoint_footprint(store.engine, sha(ft1))
    runs = {r["project"]: r for r in sqlite_utils.Database(db_path)["runs"].rows}
    assert fp1.source == "recorded" and fp1.runs == [runs["legal"]["run_id"]]
    assert fp1.citation == "2 ecotrain-recorded run(s)" and fp1.ancestors == [sha(pre)]
    # Each run counts up to the moment it wrote the checkpoint (its energy share then).
    share = {
        r["project"]: r["energy_share"]
        for r in sqlite_utils.Database(db_path).query(
            "select project, energy_share from run_checkpoints join runs using (run_id) "
            "where role = 'produced'"
        )
    }
    assert all(0 < v <= 1 for v in share.values()), share
    paid = {p: runs[p]["facility_energy_kwh"] * share[p] for p in ("foundation", "legal")}
    assert fp1.energy_kwh == pytest.approx(paid["foundation"] + paid["legal"])
    # Lab-wide: pre.safetensors reused by two projects, its retraining avoided once.
    lab = avoided_for_runs(store.engine, RunFilter(), mode="as-published")
    assert [a.checkpoint_id for a in lab] == [sha(pre)]
    assert lab[0].reuses == 2
    assert lab[0].energy_kwh == pytest.approx(paid["foundation"])
    # Within the project that produced it, reuse saves nothing.
    assert avoided_for_runs(store.engine, RunFilter(project="foundation")) == []
    # none: reuse listed, nothing claimed.
    (nothing,) = avoided_for_runs(store.engine, RunFilter(project="legal"), mode="none")
    assert (nothing.energy_kwh, nothing.co2_kg, nothing.cost_usd) == (0.0, 0.0, 0.0)


def test_file_opened_and_closed_quickly_is_detected(db_path: Path, tmp_path: Path) -> None:
    weights = tmp_path / "w.safetensors"
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"w": np.ones(10, dtype=np.float32)}, str(weights))
    code = f"open({str(weights)!r}, 'rb').read(8)"
    run("quick", code)
    (row,) = links(db_path)
    assert row["role"] == "consumed" and row["checkpoint_id"] == sha(weights)


def test_explicit_uses_hf_id_and_catalogue(db_path: Path) -> None:
    run("ft", "pass", "--uses", "bert-base-uncased")
    (row,) = links(db_path)
    assert row["checkpoint_id"] == "hf:bert-base-uncased" and row["detected_by"] == "explicit"
    store = Store(str(db_path))
    fp = checkpoint_footprint(store.engine, "hf:bert-base-uncased")
    # Strubell et al. 2019, Table 3: 1,507 kWh (after PUE 1.58), 1,438 lb = 652.27 kg
    assert fp.source == "catalogue" and fp.co2_kg == 652.27 and fp.energy_kwh == 1507
    assert "Strubell" in fp.citation
    # reproduce: the IT energy the paper measured, 1,507 kWh / 1.58 = 953.8 kWh (not 5,056
    # V100-h x 300 W TDP), re-priced at this run's site: its PUE applied once.
    (a,) = avoided_for_runs(store.engine, RunFilter(project="ft"))
    run_row = next(iter(sqlite_utils.Database(db_path)["runs"].rows))
    assert a.energy_kwh == pytest.approx(1507 / 1.58 * run_row["pue"])
    assert a.co2_kg == pytest.approx(
        1507 / 1.58 * run_row["pue"] * run_row["intensity_g_per_kwh"] / 1000
    )


def test_counterfactual_modes_by_hand() -> None:
    fp = Footprint(
        "sha256:x",
        "base",
        "recorded",
        it_energy_kwh=100.0,
        energy_kwh=150.0,
        co2_kg=60.0,
        cost_usd=12.0,
    )
    site = Site(
        pue=1.2, pue_source="t", intensity=Intensity("FRA", 50.0, "t"), price=0.2, price_source="t"
    )
    rep = avoided(fp, "reproduce", site)
    assert rep.energy_kwh == pytest.approx(120.0)  # 100 kWh IT x 1.2
    assert rep.co2_kg == pytest.approx(6.0)  # 120 kWh x 50 g
    assert rep.cost_usd == pytest.approx(24.0)  # 120 kWh x $0.20
    assert "PUE 1.2" in rep.assumption
    pub = avoided(fp, "as-published", site)
    assert (pub.energy_kwh, pub.co2_kg, pub.cost_usd) == (150.0, 60.0, 12.0)
    unknown = avoided(Footprint("sha256:y", "mystery", "unknown"), "reproduce", site)
    assert unknown.co2_kg is None and "unknown" in unknown.assumption


def test_produced_at_the_very_end_does_not_delay_exit(db_path: Path, tmp_path: Path) -> None:
    big = tmp_path / "final.bin"
    code = (
        # a pickle (torch's legacy format) by its first bytes, whatever the suffix
        f"import time; f = open({str(big)!r}, 'wb'); "
        "f.write(b'\\x80\\x02' + b'\\1' * (200 * 2**20)); f.close(); print(time.time(), flush=True)"
    )
    result = run("big", code)
    exit_latency = time.time() - float(result.stdout.split()[0])
    assert exit_latency < 5.0  # hashing 200 MB is left to the detached sync
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = links(db_path)
        if rows and rows[0]["checkpoint_id"].startswith("sha256:"):
            break
        time.sleep(0.5)
    assert rows[0]["checkpoint_id"] == sha(big)


def test_hf_cache_layout_uses_blob_name(tmp_path: Path) -> None:
    content = b"weights"
    digest = hashlib.sha256(content).hexdigest()
    repo = tmp_path / "hub" / "models--org--tiny"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / digest).write_bytes(content)
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    os.symlink(repo / "blobs" / digest, snap / "model.safetensors")
    assert hf_info(str(snap / "model.safetensors")) == ("org/tiny", "abc123")
    from ecotrain.lineage import identify

    row = identify(str(snap / "model.safetensors"))
    assert row["checkpoint_id"] == f"sha256:{digest}" and row["hf_repo"] == "org/tiny"


def test_model_card_footprint(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"x")
    (tmp_path / "README.md").write_text(
        "---\nco2_eq_emissions:\n  emissions: 1500\n  source: our logs\n"
        "  training_type: pre-training\n  hardware_used: 8 x A100\n---\n# card\n"
    )
    card = read_model_card(str(tmp_path / "model.safetensors"))
    assert card["fp_co2_kg"] == 1.5 and card["footprint_source"] == "model_card"
    (tmp_path / "README.md").write_text("---\nco2_eq_emissions: [unclosed\n---\n")
    assert "malformed" in read_model_card(str(tmp_path / "model.safetensors"))["card_error"]


def test_catalogue_matches_published_figures() -> None:
    # Figures from shared/REFERENCES.md's table of published training footprints (facility
    # energy as published, or None where the source states no PUE); tests/test_catalogue.py
    # recomputes each from its inputs.
    expected = {
        "bert-base-uncased": (1507, 652.27),
        "t5-11b": (85700, 46700),
        "gpt-3": (1287000, 552000),
        "bigscience/bloom": (433196, 24700),
        "facebook/opt-175b": (None, 75000),
        "huggyllama/llama-65b": (449000, 173000),
        "allenai/OLMo-2-1124-7B": (None, 52000),
        "allenai/OLMo-2-1124-13B": (None, 101000),
    }
    for name, (kwh, co2) in expected.items():
        entry = lookup(name)
        assert entry is not None, name
        assert entry.energy_kwh == (kwh if kwh is None else pytest.approx(kwh, rel=0.01)), name
        assert entry.co2_kg == pytest.approx(co2, rel=0.01), name
        assert entry.citation
    assert lookup("meta-llama/Llama-2-7b-hf").gpu_hours == 184320
    assert lookup("meta-llama/Llama-3.1-405B").co2_kg == 8_930_000
    assert lookup("CompVis/stable-diffusion-v1-4").gpu_hours == 150000


def test_cli_commands(db_path: Path, tmp_path: Path) -> None:
    pre, ft = tmp_path / "pre.safetensors", tmp_path / "ft.safetensors"
    run("foundation", SAVE.format(out=str(pre), k=1))
    run("legal", LOAD_SAVE.format(src=str(pre), out=str(ft), k=1))
    out = run_cli("savings", "--json", "--mode", "as-published")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["mode"] == "as-published" and len(data["avoided"]) == 1
    assert run_cli("savings", "--mode", "bogus").returncode == 2
    listing = json.loads(run_cli("checkpoints", "--json").stdout)
    # names tell checkpoints apart: the file with its folder
    assert {r["name"] for r in listing} == {f"{tmp_path.name}/{n}" for n in (pre.name, ft.name)}
    tree = run_cli("lineage", str(ft))
    assert tree.returncode == 0 and "pre.safetensors" in tree.stdout
    assert "[foundation]" in tree.stdout
    assert run_cli("lineage", "nothing-like-this").returncode == 2
    reg = run_cli(
        "checkpoint",
        "register",
        "org/model",
        "--gpu",
        "A100-80GB",
        "--gpu-hours",
        "1000",
        "--source",
        "paper",
        "--region",
        "FRA",
        "--pue",
        "1.1",
    )
    assert reg.returncode == 0, reg.stderr
    fp = checkpoint_footprint(Store(str(db_path)).engine, "hf:org/model")
    # 1,000 GPU-h x 400 W = 400 kWh IT; x 1.1 = 440 kWh
    assert fp.source == "registered" and fp.energy_kwh == pytest.approx(440.0)
    bad = run_cli("checkpoint", "register", "org/model", "--gpu", "Voodoo", "--gpu-hours", "1")
    assert bad.returncode == 2 and "known" in bad.stderr


def test_safetensors_native_io_is_detected(db_path: Path, tmp_path: Path) -> None:
    # safetensors opens files from Rust, which Python's audit hook cannot see.
    base, out = tmp_path / "base.safetensors", tmp_path / "out.safetensors"
    code = (
        "import numpy as np; from safetensors.numpy import save_file, load_file; "
        f"save_file({{'w': np.ones(4, dtype=np.float32)}}, {str(base)!r})"
    )
    run("st", code)
    code = (
        "from safetensors.numpy import load_file, save_file; "
        # new weights: writing out the very weights read is a copy, not production
        f"w = load_file({str(base)!r}); save_file({{'w': w['w'] * 2}}, {str(out)!r})"
    )
    run("st2", code)
    rows = links(db_path)
    roles = {(r["project"], r["role"]): r["checkpoint_id"] for r in rows}
    assert roles[("st", "produced")] == sha(base)
    assert roles[("st2", "consumed")] == sha(base)
    assert roles[("st2", "produced")] == sha(out)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_batched_footprints_match_one_at_a_time_and_count_each_run_once(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    """A produces X and Y; B: X -> Z; C: Y + Z -> W; D (another project) reuses W.
    W's footprint is A + B + C, A once although two of W's ancestors came from it.
    The same SQL (window functions included) on both databases."""
    from store_helpers import make_record

    from ecotrain.savings import footprints

    url = str(tmp_path / "s.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    store = Store(url)
    plan = {  # run: (project, IT kWh, consumed, produced)
        "A": ("p", 1.0, [], ["X", "Y"]),
        "B": ("p", 2.0, ["X"], ["Z"]),
        "C": ("p", 4.0, ["Y", "Z"], ["W"]),
        "D": ("q", 8.0, ["W"], []),
    }
    for run_id, (project, kwh, consumed, produced) in plan.items():
        record = make_record(run_id, status="finished")
        record["run"].update(
            project=project, it_energy_kwh=kwh, facility_energy_kwh=1.5 * kwh, co2_kg=0.1 * kwh
        )
        record["checkpoints"] = [{"checkpoint_id": c, "name": c} for c in consumed + produced]
        record["links"] = [{"checkpoint_id": c, "role": "consumed"} for c in consumed] + [
            {"checkpoint_id": c, "role": "produced"} for c in produced
        ]
        store.write_record(record)

    batch = footprints(store.engine, ["W", "Z", "X", "nowhere"])
    for ckpt, fp in batch.items():
        one = checkpoint_footprint(store.engine, ckpt)
        assert (fp.citation, fp.ancestors, fp.runs, fp.it_energy_kwh, fp.co2_kg) == (
            one.citation, one.ancestors, one.runs, one.it_energy_kwh, one.co2_kg
        )  # fmt: skip
    w = batch["W"]
    assert w.it_energy_kwh == pytest.approx(7.0) and w.energy_kwh == pytest.approx(10.5)
    assert w.citation == "3 ecotrain-recorded run(s)" and w.ancestors == ["X", "Y", "Z"]
    assert w.runs == ["C"]
    assert batch["Z"].it_energy_kwh == pytest.approx(3.0)
    assert batch["X"].it_energy_kwh == pytest.approx(1.0)
    assert batch["nowhere"].source == "unknown"

    (a,) = avoided_for_runs(store.engine, RunFilter(project="q"), mode="as-published")
    assert (a.checkpoint_id, a.energy_kwh, a.reuses) == ("W", pytest.approx(10.5), 1)
    # inside project p the checkpoints were paid for: nothing avoided
    assert avoided_for_runs(store.engine, RunFilter(project="p")) == []
