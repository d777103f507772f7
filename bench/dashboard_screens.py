"""Screenshot every dashboard page in headless Chromium and check what a reader sees.

    python bench/dashboard_screens.py DB [--out bench/results/screens] [--size 1280x800]

Starts `ecotrain dashboard --db DB`, loads each page at the given window size, writes
<out>/<page>.png, and reports per page: no "e-0"/"e+0" (e-notation), no "None", no "…"
(a cut value) in the page text or the tables' text, and no metric value wider than its box.
Exit code 1 if any page fails. The test suite runs the same check on its fixture database.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from chromium import capture  # noqa: E402

PAGES = {
    "overview": "",
    "runs": "runs",
    "run_detail": "run",
    "checkpoints": "checkpoints",
    "breakdowns": "breakdowns",
    "method": "method",
}
# Parts below the fold worth a look of their own: {page: out dir -> {selector: png}}.
ALSO = {
    "checkpoints": lambda out: {'[data-testid="stGraphVizChart"]': out / "checkpoints-lineage.png"},
    "run_detail": lambda out: {'[data-testid="stVegaLiteChart"]': out / "run_detail-timeline.png"},
    "overview": lambda out: {'[data-testid="stDataFrame"]': out / "overview-top.png"},
}
BAD = re.compile(r"\d[eE][+-]0|\bNone\b|…")


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    """Wait for Streamlit's health endpoint (raises if the server dies or never answers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ecotrain dashboard exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("the dashboard did not become healthy")


def problems(page: dict) -> list[str]:
    """What a reader would trip over on one captured page."""
    out = []
    texts = [page.get("text") or ""] + list(page.get("grids") or [])
    for text in texts:
        for m in BAD.finditer(text):
            out.append(f"{m.group(0)!r} in …{text[max(0, m.start() - 40) : m.end() + 40]!r}")
    out += [f"metric cut: {v!r}" for v in page.get("cut") or []]
    if not page.get("found"):
        out.append("the page never finished drawing")
    return out


def screens(
    db: str, out: Path, size: tuple[int, int], ecotrain: str, params: str = ""
) -> dict[str, list[str]]:
    """Screenshot every page into ``out``; {page: problems}."""
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    home = tempfile.mkdtemp(prefix="ecotrain-screens-")
    proc = subprocess.Popen(
        [ecotrain, "dashboard", "--db", db, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "HOME": home},
    )
    found: dict[str, list[str]] = {}
    try:
        wait_healthy(port, proc)
        for name, path in PAGES.items():
            page = capture(
                f"http://127.0.0.1:{port}/{path}{params}",
                out / f"{name}.png",
                Path(home) / f"chromium-{name}",
                wait_for='[data-testid="stMainBlockContainer"] h1',
                port=free_port(),
                size=size,
                also=ALSO.get(name, lambda o: {})(out),
            )
            (out / f"{name}.json").write_text(json.dumps(page, indent=1))
            found[name] = problems(page)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return found


def main() -> int:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db")
    ap.add_argument("--out", type=Path, default=Path("bench/results/screens"))
    ap.add_argument("--size", default="1280x800")
    ap.add_argument("--params", default="", help="query string, e.g. ?period=all")
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    ecotrain = str(Path(sys.executable).parent / "ecotrain")
    found = screens(args.db, args.out, (w, h), ecotrain, args.params)
    for name, issues in found.items():
        print(f"{name:<12} {'ok' if not issues else '; '.join(issues)}")
    return 1 if any(found.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
