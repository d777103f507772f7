"""Framework callbacks: the shared reporter always; the real frameworks only where installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlite_utils

import ecotrain
from ecotrain.callbacks import ProgressReporter, hf_callback


def test_reporter_logs_model_files_of_a_checkpoint_folder(db_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "checkpoint-10"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"w")
    (folder / "trainer_state.json").write_text("{}")
    with ecotrain.track(quiet=True) as run:
        reporter = ProgressReporter(run)
        reporter.step(10, 40)
        reporter.epoch(1, 4)
        reporter.checkpoint(folder)
    (row,) = sqlite_utils.Database(db_path)["runs"].rows
    progress = json.loads(row["progress"])
    assert (progress["kind"], progress["step"], progress["total"]) == ("epoch", 1, 4)
    links = list(sqlite_utils.Database(db_path)["run_checkpoints"].rows)
    # the folder is one checkpoint, named by the folder
    assert [Path(link["path"]).name for link in links] == ["checkpoint-10"]


def test_hf_callback_needs_transformers() -> None:
    try:
        import transformers  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="hf_callback needs transformers"):
            hf_callback()
        return
    from transformers import TrainerCallback

    assert isinstance(hf_callback(), TrainerCallback)


def test_lightning_callback_is_a_lightning_callback() -> None:
    pl = pytest.importorskip("lightning.pytorch")
    from ecotrain.callbacks import lightning_callback

    assert isinstance(lightning_callback(), pl.callbacks.Callback)
