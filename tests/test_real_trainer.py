"""A real Hugging Face `Trainer` (torch, transformers, accelerate) under `ecotrain run`, and
with ecotrain's callback alone: issue 12's Trainer patterns on the library itself, not on a
stand-in. Skipped where those libraries are not installed (they are not in `[dev]`: torch is
hundreds of MB; `pip install torch --index-url https://download.pytorch.org/whl/cpu
transformers accelerate` runs them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.store_helpers import links, runs_by_project

pytestmark = pytest.mark.skipif(
    not all(find_spec(m) for m in ("torch", "transformers", "accelerate")),
    reason="torch, transformers and accelerate not installed",
)

PY = sys.executable

MAKE_BASE = """
import torch
from transformers import GPT2Config, GPT2LMHeadModel
torch.manual_seed(0)
config = GPT2Config(n_layer=1, n_head=2, n_embd=32, vocab_size=64, n_positions=32,
                    bos_token_id=0, eos_token_id=0)
GPT2LMHeadModel(config).save_pretrained("base")
"""

# A fine-tune as the transformers docs write one, plus ecotrain's callback for progress.
TRAIN = """
import sys, torch
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments
from ecotrain.callbacks import hf_callback

base, out, steps, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), len(sys.argv) > 4

class Toy(torch.utils.data.Dataset):
    def __len__(self):
        return 64
    def __getitem__(self, i):
        ids = torch.tensor([(i + k) % 64 for k in range(16)])
        return {"input_ids": ids, "labels": ids}

args = TrainingArguments(output_dir=out, max_steps=steps, save_steps=10, save_total_limit=2,
                         per_device_train_batch_size=4, report_to=[], use_cpu=True,
                         disable_tqdm=True, logging_strategy="no", seed=0)
model = AutoModelForCausalLM.from_pretrained(base)
Trainer(model=model, args=args, train_dataset=Toy(), callbacks=[hf_callback()]).train(
    resume_from_checkpoint=True if resume else None)
"""


@pytest.fixture
def scripts(isolated: Path) -> Path:
    work = Path.cwd()
    (work / "train.py").write_text(TRAIN)
    made = subprocess.run([PY, "-c", MAKE_BASE], capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    return work


def test_trainer_fine_tune_then_resume_in_place(scripts: Path, db_path: Path) -> None:
    from ecotrain.lineage import identify

    base = identify("base")["checkpoint_id"]  # the folder is one checkpoint: its weights
    first = run_cli("run", "-q", "--project", "tune", "--", PY, "train.py", "base", "out", "30")
    assert first.returncode == 0, first.stderr
    ckpt30 = identify("out/checkpoint-30")["checkpoint_id"]
    # Resume in place: reads out/checkpoint-30, writes checkpoint-40, and save_total_limit=2
    # deletes checkpoint-20 under it.
    again = run_cli(
        "run", "-q", "--project", "resume", "--", PY, "train.py", "base", "out", "40", "resume"
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in Path("out").iterdir()) == ["checkpoint-30", "checkpoint-40"]
    rows = links(db_path)
    tune = [
        (r["role"], r["checkpoint_id"], Path(r["path"]).name)
        for r in rows
        if r["project"] == "tune"
    ]  # noqa: E501
    assert tune[0] == ("consumed", base, "base")
    produced = sorted(
        (r for r in rows if r["project"] == "tune" and r["role"] == "produced"),
        key=lambda r: r["written_s"],
    )
    # checkpoint-10 was deleted by the Trainer before the run ended: only what exists counts
    assert [Path(r["path"]).name for r in produced] == ["checkpoint-20", "checkpoint-30"]
    assert produced[1]["checkpoint_id"] == ckpt30
    assert 0 < produced[0]["written_s"] <= produced[1]["written_s"]
    assert 0 < produced[0]["energy_share"] <= produced[1]["energy_share"] <= 1
    resumed = {(r["role"], r["checkpoint_id"]) for r in rows if r["project"] == "resume"}
    # the bytes it read (the first run's checkpoint-30), not what it wrote afterwards
    assert ("consumed", ckpt30) in resumed and ("consumed", base) in resumed
    assert ("produced", identify("out/checkpoint-40")["checkpoint_id"]) in resumed

    runs = runs_by_project(db_path)
    progress = json.loads(runs["tune"]["progress"])
    assert (progress["step"], progress["total"], progress["fraction"]) == (30, 30, 1.0)
    assert progress["samples"] == 4 * 30  # per-device batch 4, one device
    # What the resume avoided: the first run's IT energy up to checkpoint-30's write, at the
    # reuser's PUE (reproduce mode); the base's footprint is unknown (made outside ecotrain).
    saved = json.loads(run_cli("savings", "--project", "resume", "--json").stdout)["avoided"]
    by_id = {a["checkpoint_id"]: a for a in saved}
    tune_run = runs["tune"]
    expected = tune_run["it_energy_kwh"] * produced[1]["energy_share"] * runs["resume"]["pue"]
    assert by_id[ckpt30]["energy_kwh"] == pytest.approx(expected, rel=1e-6)
    assert by_id[base]["energy_kwh"] is None and by_id[base]["path"].endswith("base")


def test_trainer_with_the_callback_alone(scripts: Path, db_path: Path) -> None:
    """No wrapper: the callback records the run, links the model the Trainer was given, and
    says which span it measured."""
    from ecotrain.lineage import identify

    env = {**os.environ, "ECOTRAIN_PROJECT": "alone"}
    done = subprocess.run(
        [PY, "train.py", "base", "out", "20"], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr
    rows = links(db_path)
    got = {(r["role"], r["checkpoint_id"]) for r in rows}
    assert ("consumed", identify("base")["checkpoint_id"]) in got
    assert ("produced", identify("out/checkpoint-20")["checkpoint_id"]) in got
    (run,) = runs_by_project(db_path).values()
    notes = json.loads(run["notes"])
    assert any("measured by the Hugging Face Trainer callback alone" in n for n in notes), notes
    progress = json.loads(run["progress"])
    assert (progress["step"], progress["total"], progress["fraction"]) == (20, 20, 1.0)
    assert run["status"] == "finished" and run["facility_energy_kwh"] > 0
