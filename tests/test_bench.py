"""The benchmark harness: measuring, summarising, the hook protocol, the NVML comparison."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import types
from pathlib import Path

import pytest

from tests.conftest import ROOT


def load(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = load("run")
gpu_nvml = load("gpu_nvml")


def test_measure_times_a_child_and_its_exit_latency(tmp_path: Path) -> None:
    stamp = tmp_path / "stamp"
    sample = bench.measure(bench.sleeper(0.2, stamp), {}, tmp_path, stamp)
    assert sample.rc == 0
    assert 0.2 <= sample.wall_s < 5
    # The child wrote its timestamp just before exiting: the latency is small, not negative.
    assert 0 <= sample.exit_latency_s < 1
    assert sample.rss_mb > 1  # a Python interpreter was polled


def test_summarise_medians_overheads_and_ratios() -> None:
    def s(wall: float) -> object:
        return bench.Sample(wall_s=wall, cpu_s=wall / 2, rss_mb=10, exit_latency_s=None, rc=0)

    out = bench.summarise(
        {
            "bare": [s(1.0), s(1.2), s(1.1)],
            "ecotrain": [s(1.3), s(1.4), s(1.2)],
            "codecarbon": [s(3.1), s(3.2), s(3.3)],
        }
    )
    assert out["bare"]["wall_median_s"] == pytest.approx(1.1)
    assert out["ecotrain"]["overhead_median_s"] == pytest.approx(0.2)
    assert out["ecotrain"]["overhead_min_s"] == pytest.approx(0.2)
    assert out["codecarbon"]["ratio_median"] == pytest.approx(3.2 / 1.1)
    assert out["codecarbon_vs_ecotrain_overhead"] == pytest.approx(2.1 / 0.2)


def test_hook_protocol_rows_json_skipped_and_raw() -> None:
    rows = bench.parse_hook_output("x", "noise\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert rows.status == "ok" and rows.rows == ["| a | b |", "|---|---|", "| 1 | 2 |"]
    figures = bench.parse_hook_output("x", 'hello\n{"name": "pages", "figures": {"p50_s": 0.4}}')
    assert figures.name == "pages" and figures.figures == {"p50_s": 0.4} and not figures.detail
    skipped = bench.parse_hook_output("x", '{"name": "gpu", "skipped": "no GPU"}')
    assert skipped.status == "skipped" and skipped.detail == "no GPU"
    raw = bench.parse_hook_output("x", "just text\n")
    assert raw.status == "ok" and raw.detail == "just text"


def test_run_hooks_lists_missing_runs_present_and_reports_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "good.py").write_text(
        'print("| n | 3 |")\nprint(\'{"name": "good", "figures": {"n": 3}}\')\n'
    )
    (tmp_path / "bad.py").write_text('import sys\nprint("boom", file=sys.stderr)\nsys.exit(3)\n')
    monkeypatch.setattr(bench, "HERE", tmp_path)
    good, bad, missing = bench.run_hooks(("good.py", "bad.py", "missing.py"), timeout=30)
    assert (good.status, good.rows, good.figures) == ("ok", ["| n | 3 |"], {"n": 3})
    assert bad.status == "failed" and bad.detail == "exit code 3: boom"
    assert (missing.name, missing.status) == ("missing", "not present")
    page = bench.render({"cpu": "test"}, {"hooks": [vars(h) for h in (good, bad, missing)]})
    assert "### good: ok" in page and "| n | 3 |" in page
    assert "### missing: not present" in page


def test_gpu_nvml_skips_cleanly_without_nvml(capsys: pytest.CaptureFixture) -> None:
    # The isolated fixture sets ECOTRAIN_NO_GPU=1.
    assert gpu_nvml.main(["--seconds", "0.1"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "name": "gpu_nvml",
        "skipped": "ECOTRAIN_NO_GPU is set",
    }


class FakeNVML(types.ModuleType):
    """A GPU drawing a constant 250 W whose energy counter follows the clock."""

    class NVMLError(Exception):
        pass

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.t0 = None
        self.lock = threading.Lock()

    def nvmlInit(self) -> None:
        import time

        self.t0 = time.monotonic()

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"gpu{index}"

    def nvmlDeviceGetName(self, handle: str) -> bytes:
        return b"Fake H100"

    def nvmlDeviceGetPowerUsage(self, handle: str) -> int:
        return 250_000  # mW

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: str) -> int:
        import time

        return int((time.monotonic() - self.t0) * 250_000)  # mJ


def test_gpu_nvml_counter_and_integration_agree_on_a_fake_gpu(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("ECOTRAIN_NO_GPU")
    monkeypatch.setitem(sys.modules, "pynvml", FakeNVML())
    monkeypatch.setattr(gpu_nvml, "make_workload", lambda index: (None, None, None))
    monkeypatch.setattr(gpu_nvml, "ecotrain_gpu_sensor", lambda: (None, "off in this test"))
    assert gpu_nvml.main(["--seconds", "0.6", "--warmup", "0", "--interval", "0.05"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(out[-1])["figures"]
    assert figures["gpu"] == "Fake H100" and figures["workload"] == "idle"
    # 250 W over the window, both ways (the counter truncates to whole mJ).
    assert figures["counter_j"] == pytest.approx(250 * figures["window_s"], rel=0.01)
    assert figures["integrated_over_counter"] == pytest.approx(1.0, abs=0.01)
    assert figures["power_samples"] >= 8
    assert any(line.startswith("| NVML total-energy counter |") for line in out)


class _MonotonicClock:
    """A FakeClock reading real time, for the bench's own time.monotonic() window."""

    def __init__(self) -> None:
        import time

        self.t0 = time.monotonic()

    @property
    def t(self) -> float:
        import time

        return time.monotonic() - self.t0


def test_gpu_nvml_share_splits_two_processes_by_utilisation(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import os
    from types import SimpleNamespace

    from fakes import FakeGPU
    from fakes import FakeNVML as TestNVML

    other_pid = 424242
    me = os.getpid()
    gpu = FakeGPU(
        "GPU-abcd1234-0000-0000-0000-000000000000",
        power_w=300.0,
        processes=lambda t: {me: 1 << 30, other_pid: 1 << 30},
        proc_util=lambda t: {me: 30, other_pid: 10},
    )
    monkeypatch.delenv("ECOTRAIN_NO_GPU")
    monkeypatch.setitem(sys.modules, "pynvml", TestNVML(_MonotonicClock(), [gpu]))
    monkeypatch.setattr(gpu_nvml, "make_workload", lambda index: (None, None, None))
    monkeypatch.setattr(gpu_nvml, "ecotrain_gpu_sensor", lambda: (None, "off in this test"))
    monkeypatch.setattr(gpu_nvml, "WORKER_START_S", 0.0)
    monkeypatch.setattr(
        gpu_nvml,
        "start_worker",
        lambda index, seconds: SimpleNamespace(
            pid=other_pid, terminate=lambda: None, wait=lambda timeout: 0
        ),
    )
    args = ["--seconds", "1.0", "--warmup", "0", "--interval", "0.1", "--share"]
    assert gpu_nvml.main(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    split = json.loads(out[-1])["figures"]["split"]
    this, other = split["sensors"]["this"], split["sensors"]["other"]
    assert this["share_method"] == other["share_method"] == "sm_utilisation"
    assert this["other_processes"] == other["other_processes"] == 1
    # SM 30 : 10 -> 3 : 1, and the two shares add up to what the counter measured
    assert this["charged_j"] == pytest.approx(3 * other["charged_j"], rel=0.02)
    assert split["sum_over_counter"] == pytest.approx(1.0, abs=0.05)
    assert any(line.startswith("| ecotrain split: sum |") for line in out)


def test_measure_waits_for_what_the_command_leaves_behind(tmp_path: Path) -> None:
    """A wrapper that exits at once but leaves a detached process (as ecotrain's sync was):
    the whole-tree figures wait for it and count it."""
    argv = ["sh", "-c", "setsid sh -c 'sleep 0.6; :' </dev/null >/dev/null 2>&1 & exit 0"]
    sample = bench.measure(argv, {}, tmp_path)
    assert sample.rc == 0
    assert sample.wall_s < 0.5
    assert sample.tree_wall_s is not None and sample.tree_wall_s >= 0.6
    assert sample.tree_procs >= 2


def test_measure_leaves_the_callers_other_children_alone(tmp_path: Path) -> None:
    """A server the caller runs meanwhile is neither waited for nor counted."""
    import subprocess

    server = subprocess.Popen(["sleep", "30"])
    try:
        sample = bench.measure(["true"], {}, tmp_path)
        assert sample.tree_wall_s is not None and sample.tree_wall_s < 5
        assert server.poll() is None
    finally:
        server.kill()
        server.wait()
