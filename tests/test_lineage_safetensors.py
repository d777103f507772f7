"""safetensors reads and writes files in Rust, past Python's open(): the hook must still see
them (transformers loads weights through ``safetensors.safe_open``)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import sqlite_utils

from ecotrain.lineage import hf_info
from tests.conftest import run_cli

PY = sys.executable

SAVE = """
import numpy as np
from safetensors.numpy import save_file
save_file({"w": np.arange(64, dtype=np.float32)}, "base.safetensors")
"""

LOAD = """
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file
w = load_file("base.safetensors")["w"]
with safe_open("base.safetensors", framework="np") as f:
    assert list(f.keys()) == ["w"]
np.save("ft.npy", w + 1)
"""


def _links(db: Path) -> dict[tuple[str, str], dict]:
    assert run_cli("sync", "-q").returncode == 0
    rows = sqlite_utils.Database(db).query(
        "select r.project, l.* from run_checkpoints l join runs r using (run_id)"
    )
    return {(r["project"], Path(r["path"]).name, r["role"]): r for r in rows}


def test_safetensors_save_and_load_are_seen(db_path: Path) -> None:
    for project, code in (("pre", SAVE), ("ft", LOAD)):
        r = run_cli("run", "-q", "--project", project, "--", PY, "-c", code)
        assert r.returncode == 0, r.stderr
    base = Path("base.safetensors")
    sha = "sha256:" + hashlib.sha256(base.read_bytes()).hexdigest()
    got = _links(db_path)
    assert got["pre", "base.safetensors", "produced"]["checkpoint_id"] == sha
    consumed = got["ft", "base.safetensors", "consumed"]
    assert (consumed["checkpoint_id"], consumed["detected_by"]) == (sha, "audit")
    # a bare numpy array is no checkpoint unless --produces/--uses/the API says it is
    assert ("ft", "ft.npy", "produced") not in got


def test_hf_cache_repo_without_an_org() -> None:
    path = "/c/hub/models--gpt2/snapshots/607a30d/model.safetensors"
    assert hf_info(path) == ("gpt2", "607a30d")
    path = "/c/hub/models--meta-llama--Llama-2-7b-hf/snapshots/abc/model.safetensors"
    assert hf_info(path) == ("meta-llama/Llama-2-7b-hf", "abc")
