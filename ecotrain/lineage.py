"""Which checkpoints a run read and wrote, and what each checkpoint *is* (its content).

Detection, with no change to the training script:

- Python children get an audit hook (``ecotrain/_hook/sitecustomize.py``, put first on their
  PYTHONPATH) that reports every model file opened for reading or writing, even one opened
  and closed within a millisecond, through the run's events file. Native openers that raise
  no audit event (safetensors' ``safe_open``/``serialize_file``, ``torch.save`` to a path)
  are wrapped on import so that they do.
- Any child (also non-Python) is polled about once a second: ``/proc/<pid>/fd`` (with the
  access mode from ``fdinfo``) and ``/proc/<pid>/maps`` (memory-mapped weights) of its tree.
- Produced files that no hook saw (a non-Python tool, native code): model files under the
  working directory and the ``--produces`` folders whose mtime is after the run's start,
  scanned every few seconds and once more at the end (bounded: 20,000 entries, depth 4,
  30 ms at the end). A concurrent process writing there is attributed to the run too.
  A non-Python child that reads a file for less than a poll interval is not seen.
- A sharded set (``model-00001-of-00004.safetensors`` …, with its ``*.index.json``) is one
  checkpoint, and so is a Hugging Face-style folder (a ``config.json`` next to weights, or
  a Trainer ``checkpoint-N``): its weights are its identity, its optimizer/scheduler/RNG
  state part of it. A run that writes out weights it read (a copy) consumed them; it did
  not produce them.
- What is a model is judged by content, not suffix (:func:`classify`): safetensors header,
  torch zip or pickle, GGUF, HDF5 (Keras), ONNX, flax msgpack. Suffixes only pick the
  candidates cheaply. Token arrays (nanoGPT's ``train.bin``) and other data are not
  checkpoints (the record notes them as such); numpy ``.npy``/``.npz`` files are
  checkpoints only when named by ``--uses``/``--produces`` or the API, which is taken at
  its word for any file.
- ``--uses`` / ``--produces`` and the Python API (``run.log_checkpoint``) name them
  explicitly. A Hugging Face id (``org/name``) that is not a local path is recorded as such.

What was read is the content *at the moment of reading*: the hook sends the file's stat
key (device, inode, size, mtime) with each read, ``--uses`` files are stat'ed before the
child starts, and before the run overwrites, removes or renames a file it read (resume in
place) the hook makes sure that content is hashed (see ``_hook/_ecotrain_audit.py``). A
file read and then changed before anything could hash it is left out with a note, never
recorded under the id of its new bytes. A produced checkpoint keeps when it was last written
(``written_s``) and the share of the run's energy spent by then (``energy_share``).

Identity: a checkpoint is its content, ``sha256:<hex>``. A Hugging Face cache blob is
already named by its sha256 (``models--org--name/blobs/<sha256>``), so it is never read. A
sharded set's id is the sha256 of its shards' names and hashes (the index JSON is derived
from the shards and left out). Hashing never delays the end of a run:
files are hashed by a background thread while the run goes on, with a cache keyed by
(device, inode, size, mtime) in the data dir; a file not hashed by the end (typically the
final checkpoint, written in the last second) is recorded with the provisional id
``pending:<host>:<dev>:<inode>:<size>:<mtime_ns>`` and resolved by ``ecotrain sync`` — which
the run starts detached — on the same host (:func:`resolve_pending`). If the file changed
or vanished before it could be hashed, the pending id stays and says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import stat
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from ecotrain.store.records import utcnow, write_atomic

MODEL_SUFFIXES = (
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".h5", ".keras",
    ".msgpack", ".npz", ".npy", ".index.json",
)  # fmt: skip
SHARD = re.compile(r"^(?P<prefix>.+)-(?P<i>\d{3,6})-of-(?P<n>\d{3,6})(?P<ext>\.[\w.]+)$")
SET_NAME = re.compile(r"^(?P<prefix>.+)-of-(?P<n>\d{3,6})(?P<ext>\.[\w.]+)$")
# models--org--name (or models--name for repos without an org, e.g. gpt2)
HF_CACHE = re.compile(r"models--(?P<repo>[^/]+)/snapshots/(?P<rev>[^/]+)(?:/|$)")
HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
POLL_S = 1.0
SCAN_EVERY_S = 3.0  # mtime scan of the run's directories during the run
FINAL_SCAN_S = 0.03  # at most this long at the end of the run
SCAN_MAX_ENTRIES = 20_000
SCAN_DEPTH = 4
SCAN_SKIP = frozenset(
    {"__pycache__", "node_modules", "site-packages", "venv", "wandb", "mlruns", "lightning_logs"}
)
CHUNK = 4 * 1024 * 1024


def is_model_file(path: str) -> bool:
    """Whether ``path`` looks like model weights (or a sharded set's index)."""
    lower = path.lower()
    if lower.endswith(".json"):
        return lower.endswith(".index.json")
    return lower.endswith(MODEL_SUFFIXES)


def shard_set(path: str) -> tuple[str, list[str]] | None:
    """(set key, shard paths on disk) if ``path`` is a shard of a sharded checkpoint or the
    index JSON of one, else None. The set key names the whole set
    (``dir/model-of-00004.safetensors``); the index JSON is metadata derived from the shards,
    so it belongs to the set but not to its identity."""
    directory, name = os.path.split(os.path.abspath(path))
    m = SHARD.match(name)
    if m:
        prefix, n, ext = m["prefix"], m["n"], m["ext"]
    elif name.lower().endswith(".index.json"):
        prefix, ext = os.path.splitext(name[: -len(".index.json")])
        n = None
    elif (key := SET_NAME.match(name)) and not os.path.exists(path):
        prefix, n, ext = key["prefix"], key["n"], key["ext"]  # the set's own key
    else:
        return None
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        names = []
    shards = []
    for other in names:
        sm = SHARD.match(other)
        if sm and (sm["prefix"], sm["ext"]) == (prefix, ext) and n in (None, sm["n"]):
            n = sm["n"]
            shards.append(os.path.join(directory, other))
    if n is None:
        return None  # an index whose shards are not there: no weights to identify
    return f"{directory}/{prefix}-of-{n}{ext}", shards


# Weights that define an HF-style checkpoint folder's identity, most preferred first.
WEIGHT_FILES = (
    "model.safetensors", "adapter_model.safetensors", "diffusion_pytorch_model.safetensors",
    "pytorch_model.bin", "adapter_model.bin", "tf_model.h5", "flax_model.msgpack",
)  # fmt: skip
FOLDER_MARKERS = frozenset({"config.json", "adapter_config.json", "trainer_state.json"})
CHECKPOINT_DIR = re.compile(r"^(checkpoint|ckpt|step|epoch)[-_]?\d+$")
NEEDS_HINT = frozenset({"numpy"})  # a checkpoint only when named by --uses/--produces/the API


def classify(path: str) -> str | None:
    """What kind of model file ``path`` holds, judged by its content, else None (a data
    file: a token array, a CSV, ...). ``numpy`` arrays are returned as such: they are
    checkpoints only when the user says so (``NEEDS_HINT``). The audit hook uses the same
    function (it classifies a file it read before the run destroys it)."""
    from ecotrain._hook._ecotrain_audit import classify as by_content

    return by_content(path)


def checkpoint_folder(directory: str) -> list[str] | None:
    """The weight files of a Hugging Face-style checkpoint folder (a config next to
    weights, or a ``checkpoint-N`` folder), else None. The folder is one checkpoint; these
    files are its identity, and everything else in it (optimizer, scheduler, RNG state,
    training args) is part of it."""
    try:
        names = set(os.listdir(directory))
    except OSError:
        return None
    if not (names & FOLDER_MARKERS or CHECKPOINT_DIR.match(os.path.basename(directory))):
        return None
    for name in WEIGHT_FILES:
        if name in names:
            return [os.path.join(directory, name)]
    for name in sorted(names):
        if SHARD.match(name) and (name.startswith(("model-", "pytorch_model-"))):
            found = shard_set(os.path.join(directory, name))
            if found:
                return found[1]
    return None


def display_name(path: str) -> str:
    """A short name that tells checkpoints apart: the file or folder with its parent
    (``out-a/ckpt.pt``, ``run1/checkpoint-30``)."""
    parent, name = os.path.split(path.rstrip(os.sep))
    return f"{os.path.basename(parent)}/{name}" if os.path.basename(parent) else name


def share_until(timeline: list[list[float]] | None, t_s: float, duration_s: float) -> float:
    """The fraction of a run's energy spent by ``t_s`` seconds after its start, from its
    power timeline ([t_s, gpu_w, cpu_w, ram_w] points, trapezoids); by elapsed time when
    the timeline holds no power. Between 0 and 1."""
    if duration_s <= 0 or t_s >= duration_s:
        return 1.0
    t_s = max(0.0, t_s)
    points = [(p[0], sum(w or 0.0 for w in p[1:4])) for p in timeline or [] if p]
    # The timeline starts at the first tick and ends at the last: the power before and after
    # them is taken as that of the nearest point (the run drew power then too).
    if points and points[0][0] > 0:
        points.insert(0, (0.0, points[0][1]))
    if points and points[-1][0] < duration_s:
        points.append((duration_s, points[-1][1]))
    total = part = 0.0
    for (t0, w0), (t1, w1) in zip(points, points[1:], strict=False):
        area = (w0 + w1) / 2 * (t1 - t0)
        total += area
        if t1 <= t_s:
            part += area
        elif t0 < t_s:
            w_t = w0 + (w1 - w0) * (t_s - t0) / (t1 - t0)
            part += (w0 + w_t) / 2 * (t_s - t0)
    if total <= 0:
        return t_s / duration_s
    return min(1.0, part / total)


# run id -> {path: stat key} of its --uses files, taken just before the child starts: the
# tracker starts after the child, by when a resume-in-place run may have overwritten them.
_USES_BEFORE: dict[str, dict[str, str]] = {}


def child_env(env: dict[str, str], run_id: str, uses: list[str] | None = None) -> dict[str, str]:
    """The child's environment with the audit hook on its PYTHONPATH (and, taken now, the
    state of the ``uses`` files before the child can change them)."""
    before = {}
    for item in uses or []:
        path = os.path.abspath(os.path.expanduser(item))
        try:
            before[path] = _stat_key(os.stat(path))
        except OSError:
            continue
    _USES_BEFORE[run_id] = before
    from ecotrain.events import events_path

    hook_dir = str(Path(__file__).parent / "_hook")
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = hook_dir + (os.pathsep + path if path else "")
    events = events_path(run_id)
    events.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    env["ECOTRAIN_EVENTS"] = str(events)
    env["ECOTRAIN_MODEL_SUFFIXES"] = ",".join(MODEL_SUFFIXES)
    env["ECOTRAIN_HASHCACHE"] = str(hashcache_path())
    return env


def hashcache_path() -> Path:
    """Where :class:`HashCache` keeps its hashes (the audit hook reads it too)."""
    from ecotrain.config import user_data_dir

    return user_data_dir() / "hashcache.json"


def _known_model(name: str) -> bool:
    """A Hugging Face id without an org (``bert-base-uncased``) that the catalogue knows."""
    from ecotrain.catalogue import lookup

    return lookup(name) is not None


def hf_info(path: str) -> tuple[str | None, str | None]:
    """(repo id, revision) of a file in a Hugging Face cache snapshot, else (None, None)."""
    m = HF_CACHE.search(path)
    if not m:
        return None, None
    return m["repo"].replace("--", "/"), m["rev"]


def _stat_key(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def pending_id(path: str, st: os.stat_result | None = None) -> str:
    """The provisional id of a file not hashed yet."""
    st = st or os.stat(path)
    return f"pending:{socket.gethostname()}:{_stat_key(st)}"


class HashCache:
    """sha256 of files by (device, inode, size, mtime), kept in the data dir."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or hashcache_path()
        self._lock = threading.Lock()
        try:
            self.data: dict[str, str] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}

    def get(self, path: str) -> str | None:
        """The cached sha256 of ``path`` as it is now, or None."""
        try:
            target = os.path.realpath(path)
            blob = Path(target)
            if blob.parent.name == "blobs" and SHA256_HEX.match(blob.name):
                return blob.name  # a Hugging Face LFS blob is named by its sha256
            return self.data.get(_stat_key(os.stat(target)))
        except OSError:
            return None

    def by_key(self, key: str) -> str | None:
        """The sha256 of the content a file had when its stat key was ``key``."""
        return self.data.get(key)

    def put(self, key: str, sha256: str) -> None:
        """Remember a hash taken elsewhere (the audit hook, before an overwrite)."""
        with self._lock:
            if self.data.get(key) == sha256:
                return
            self.data[key] = sha256
            try:
                write_atomic(self.path, json.dumps(self.data))
            except OSError:
                pass

    def compute(self, path: str) -> str:
        """Hash ``path`` (or take its blob name); raises OSError if unreadable."""
        cached = self.get(path)
        if cached:
            return cached
        target = os.path.realpath(path)
        # Only a regular file is read: a FIFO named like a checkpoint would block open()
        # (and the sync behind it) forever; O_NONBLOCK opens it at once, fstat tells.
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        with open(fd, "rb") as f:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise OSError(f"{path} is not a regular file")
            digest = hashlib.sha256()
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        after = os.stat(target)
        if _stat_key(before) != _stat_key(after):
            raise OSError(f"{path} changed while it was hashed")
        with self._lock:
            self.data[_stat_key(after)] = digest.hexdigest()
            try:
                write_atomic(self.path, json.dumps(self.data))
            except OSError:
                pass
        return digest.hexdigest()


def combined_id(members: list[tuple[str, str]]) -> str:
    """The id of a set of files (a sharded checkpoint, a directory): name + hash of each."""
    digest = hashlib.sha256()
    for name, sha in sorted(members):
        digest.update(f"{name}\0{sha}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def read_model_card(weights: str) -> dict[str, Any] | None:
    """The ``co2_eq_emissions`` of a README.md front matter next to the weights, if any.

    Returns footprint columns for the checkpoints table, or None. A malformed card is
    ignored with a note in the result (``card_error``).
    """
    card = Path(weights).parent / "README.md"
    try:
        text = card.read_text(errors="replace")
    except OSError:
        return None
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end < 0:
        return {"card_error": f"{card}: front matter not closed"}
    try:
        import yaml

        meta = yaml.safe_load(text[3:end]) or {}
    except Exception as e:  # noqa: BLE001 - a bad card is a note, not a failure
        return {"card_error": f"{card}: malformed YAML ({type(e).__name__})"}
    if not isinstance(meta, dict):
        return None
    # The repo the card describes (never base_model: that is the parent), so a footprint
    # registered for it is found for weights downloaded outside the Hugging Face cache.
    index = meta.get("model-index")
    named = meta.get("model_id") or (
        index[0].get("name")
        if isinstance(index, list) and index and isinstance(index[0], dict)
        else None
    )
    repo = {"card_repo": named} if isinstance(named, str) and HF_ID.match(named) else {}
    co2 = meta.get("co2_eq_emissions")
    if isinstance(co2, int | float):
        co2 = {"emissions": co2}
    if not isinstance(co2, dict) or not isinstance(co2.get("emissions"), int | float):
        return repo or None
    return {
        **repo,
        "footprint_source": "model_card",
        "footprint_citation": f"model card {card}"
        + (f" ({co2['source']})" if co2.get("source") else ""),
        "fp_co2_kg": float(co2["emissions"]) / 1000.0,  # the card states grams
        "fp_gpu_model": co2.get("hardware_used"),
        "training_type": co2.get("training_type"),
    }


@dataclass
class _Seen:
    path: str
    role: str
    detected_by: str
    first_seen: Any = field(default_factory=utcnow)
    stat: str | None = None  # consumed: the file's stat key when it was read
    sha256: str | None = None  # consumed: its hash then, when the hook had to take it
    kind: str | None = None  # consumed: what classify() said when it was read
    from_hook: bool = False  # stat came from the reader (the audit hook)


class _Lost(Exception):
    """The content a run read can no longer be identified."""


class RunTracker:
    """Collects a run's checkpoints while it runs and turns them into record rows."""

    def __init__(
        self,
        run_id: str,
        child_pid: int | None,
        uses: list[str] | None = None,
        produces: list[str] | None = None,
        started_at: Any = None,
        cache: HashCache | None = None,
        poll: bool = True,
    ) -> None:
        self.run_id = run_id
        self.child_pid = child_pid
        self.started_at = started_at
        self.cache = cache or HashCache()
        self.host = socket.gethostname()
        self.notes: list[str] = []
        self._seen: dict[tuple[str, str], _Seen] = {}
        self._hf_ids: list[tuple[str, str]] = []  # (repo id, role) named explicitly
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started_ns = _epoch_ns(started_at)
        self._uses_before = _USES_BEFORE.pop(run_id, {})
        # The child starts in our working directory; it and the explicit outputs' folders
        # are where the mtime fallback looks for weights written without an audited open.
        self._scan_roots = [os.getcwd()] + sorted(
            {str(Path(p).expanduser().resolve().parent) for p in produces or []}
        )
        for item in uses or []:
            self._explicit(item, "consumed")
        for item in produces or []:
            self._explicit(item, "produced")
        self._thread = threading.Thread(target=self._loop, name="ecotrain-lineage", daemon=True)
        if poll:
            self._thread.start()

    # -- observing ---------------------------------------------------------------------------

    def _explicit(self, item: str, role: str) -> None:
        path = Path(item).expanduser()
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file() and is_model_file(child.name):
                    self.log_checkpoint(str(child), role, "explicit")
            return
        if path.exists() or role == "produced":
            self.log_checkpoint(str(path), role, "explicit")
        elif HF_ID.match(item) or _known_model(item):
            self.log_hf_id(item, role)
        else:
            self.notes.append(f"--uses {item}: no such file, and not a Hugging Face id")

    def log_hf_id(self, repo: str, role: str = "consumed") -> None:
        """Note a Hugging Face model id the run used (not a local path)."""
        with self._lock:
            if (repo, role) not in self._hf_ids:
                self._hf_ids.append((repo, role))

    def log_checkpoint(
        self,
        path: str,
        role: str = "produced",
        detected_by: str = "api",
        stat: str | None = None,
        sha256: str | None = None,
        kind: str | None = None,
    ) -> None:
        """Note that the run read (consumed) or wrote (produced) the model file ``path``.

        For a read, ``stat`` is the file's stat key when it was read (the audit hook sends
        it; taken now otherwise) and ``sha256`` its hash then, if the hook had to take it
        before the run overwrote the file: the record names the content that was read."""
        path = os.path.abspath(path)
        from_hook = stat is not None  # taken by the reader itself, at the moment of reading
        if role == "consumed" and stat is None:
            stat = self._uses_before.get(path)
            try:
                stat = stat or _stat_key(os.stat(path))
            except OSError:
                stat = None
        with self._lock:
            if role == "consumed" and (path, "produced") in self._seen:
                return  # reading back what the run itself wrote is not reuse
            seen = self._seen.get((path, role))
            new = seen is None
            if new:
                seen = self._seen[(path, role)] = _Seen(
                    path, role, detected_by, stat=stat, from_hook=from_hook
                )
            if _rank(detected_by) < _rank(seen.detected_by):
                seen.detected_by = detected_by  # keep the most direct evidence
            if role == "consumed" and from_hook and not seen.from_hook:
                # the reader's own stat beats one ecotrain took later (or earlier)
                seen.stat, seen.sha256, seen.from_hook = stat, None, True
            if sha256 and role == "consumed" and seen.stat in (None, stat):
                seen.stat, seen.sha256 = stat, sha256
        if sha256 and stat:
            # the content under this stat key, for anyone whose pending id names it (the
            # run that wrote these bytes and ended before hashing them, say)
            self.cache.put(stat, sha256)
        if role == "consumed" and kind and seen.kind is None:
            seen.kind = kind  # classified by the hook before the run destroyed the file
        elif role == "consumed" and new and os.path.isfile(path):
            seen.kind = classify(path)  # what was read, before the run can change it
        if role == "consumed" and (path.endswith(".index.json") or SHARD.match(path)):
            members = shard_set(path)
            for shard in members[1] if members else []:
                if (shard, role) not in self._seen:
                    self.log_checkpoint(shard, role, detected_by)

    def _loop(self) -> None:
        next_scan = time.monotonic() + SCAN_EVERY_S
        while not self._stop.wait(POLL_S):
            try:
                self._poll_proc()
                if time.monotonic() >= next_scan:
                    self._scan_mtime(time.monotonic() + 0.5)
                    next_scan = time.monotonic() + SCAN_EVERY_S
                self._hash_some()
            except Exception as e:  # noqa: BLE001 - lineage must never disturb the run
                note = f"lineage: {type(e).__name__}: {e}"
                if note not in self.notes:
                    self.notes.append(note)

    def _poll_proc(self) -> None:
        """Open files and mappings of the child's tree (for children without the hook)."""
        if not self.child_pid or not os.path.isdir("/proc"):
            return
        for pid in _tree(self.child_pid):
            fd_dir = f"/proc/{pid}/fd"
            try:
                fds = os.listdir(fd_dir)
            except OSError:
                continue
            for fd in fds:
                try:
                    target = os.readlink(f"{fd_dir}/{fd}")
                except OSError:
                    continue
                if target.startswith("/") and is_model_file(target):
                    self.log_checkpoint(target, _fd_role(pid, fd), "fd")
            try:
                with open(f"/proc/{pid}/maps") as maps:
                    for line in maps:
                        parts = line.split(None, 5)
                        if len(parts) == 6 and is_model_file(parts[5].strip()):
                            self.log_checkpoint(parts[5].strip(), "consumed", "mmap")
            except OSError:
                continue

    def _hash_some(self) -> None:
        """Hash what the run read (while it is unchanged) and wrote, in the background."""
        with self._lock:
            seen = list(self._seen.values())
        todo: dict[str, str | None] = {}  # path -> stat key its content must still have
        for s in seen:
            group = _group(s.path)
            for path in group[1] if group else [s.path]:
                mine = self._seen.get((path, s.role))
                if s.role == "consumed":
                    todo.setdefault(path, mine.stat if mine else None)
                else:
                    todo.setdefault(path, None)
        for path, key in todo.items():
            if self._stop.is_set():
                return
            if key is not None and self.cache.by_key(key):
                continue
            try:
                if key is not None and _stat_key(os.stat(path)) != key:
                    continue  # changed since it was read: hashing it now would name new bytes
                if self.cache.get(path) is None:
                    self.cache.compute(path)
            except OSError:
                continue  # still being written, or gone: retried, or left pending

    def stop(self) -> None:
        """Stop polling and hashing (does not wait for a hash in progress)."""
        self._stop.set()

    def _note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)

    # -- the record ---------------------------------------------------------------------------

    def record_parts(
        self,
        final: bool = False,
        timeline: list[list[float]] | None = None,
        duration_s: float | None = None,
    ) -> dict[str, list[dict]]:
        """Rows for the checkpoints, run_checkpoints and checkpoint_paths tables.

        ``timeline`` (the run's power points) and ``duration_s`` give each produced
        checkpoint the share of the run's energy spent by the time it was written."""
        if final:
            self.stop()
            try:  # a last look for files written in the run's final second
                self._scan_mtime(time.monotonic() + FINAL_SCAN_S)
            except Exception as e:  # noqa: BLE001 - lineage must never disturb the run
                self._note(f"lineage: {type(e).__name__}: {e}")
        now = utcnow()
        with self._lock:
            seen = list(self._seen.values())
        groups: dict[tuple[str, str], tuple[list[str], str, list[_Seen]]] = {}
        for s in seen:
            group = _group(s.path)
            if group is None:
                continue  # an index without its shards holds no weights
            key, weights, kind = group
            entry = groups.setdefault((key, s.role), (weights, kind, []))
            entry[2].append(s)
        rows: dict[str, dict] = {}
        by_role: dict[str, list[tuple[str, str, str, float | None]]] = {
            "consumed": [],
            "produced": [],
        }
        data_inputs: list[str] = []
        for (group_path, role), (weights, kind, members) in groups.items():
            # A file the user named (--uses/--produces, the API) is a checkpoint whatever
            # its format; one found by detection must hold a model by its content.
            named = any(m.detected_by in ("explicit", "api") for m in members)
            if kind == "file" and not named and (role == "consumed" or os.path.exists(group_path)):
                kind = members[0].kind if role == "consumed" else classify(group_path)
                if kind is None or kind in NEEDS_HINT:
                    if kind is not None or os.path.exists(group_path):
                        data_inputs.append(os.path.basename(group_path))
                    continue  # not a model (a token array, a data file): not a checkpoint
            try:
                row, written_ns = self._identify(group_path, weights, role, now)
            except _Lost as e:
                self._note(str(e))
                continue
            rows.setdefault(row["checkpoint_id"], row)
            written_s = None
            if role == "produced" and written_ns is not None and self._started_ns is not None:
                if kind == "folder":  # complete once its last file (optimizer, state) is
                    written_ns = max(written_ns, _latest_mtime_ns(group_path))
                # Last written before the run started (named by --produces, not rewritten):
                # when is unknown, so the whole run is charged (no share), never nothing.
                if written_ns >= self._started_ns - 1_000_000_000:
                    written_s = max(0.0, (written_ns - self._started_ns) / 1e9)
            best = min(members, key=lambda m: _rank(m.detected_by))
            by_role[role].append((row["checkpoint_id"], group_path, best.detected_by, written_s))
        if data_inputs and final:
            shown = ", ".join(sorted(set(data_inputs))[:5])
            self._note(f"not checkpoints (data, or numpy arrays nobody named one): {shown}")
        consumed_ids = {c for c, _, _, _ in by_role["consumed"]}
        links, paths, linked = [], [], set()
        for role in ("consumed", "produced"):
            for ckpt_id, group_path, detected_by, written_s in by_role[role]:
                paths.append(
                    {
                        "checkpoint_id": ckpt_id,
                        "host": self.host,
                        "path": group_path,
                        "seen_at": now,
                    }
                )
                # Writing out weights the run itself read (a copy) produces nothing new, and
                # must not make this run the checkpoint's producer.
                if (role == "produced" and ckpt_id in consumed_ids) or (ckpt_id, role) in linked:
                    continue
                linked.add((ckpt_id, role))
                link = {
                    "checkpoint_id": ckpt_id,
                    "role": role,
                    "path": group_path,
                    "detected_by": detected_by,
                }
                if written_s is not None:
                    link["written_s"] = round(written_s, 3)
                    if duration_s is not None:
                        share = share_until(timeline, written_s, duration_s)
                        link["energy_share"] = round(share, 6)
                links.append(link)
        checkpoints = list(rows.values())
        for repo, role in list(self._hf_ids):
            ckpt_id = f"hf:{repo}"
            checkpoints.append(
                {"checkpoint_id": ckpt_id, "name": repo, "hf_repo": repo, "first_seen_at": now}
            )
            links.append(
                {"checkpoint_id": ckpt_id, "role": role, "path": None, "detected_by": "explicit"}
            )
        return {"checkpoints": checkpoints, "links": links, "paths": paths}

    def _identify(
        self, group_path: str, weights: list[str], role: str, now: Any
    ) -> tuple[dict, int | None]:
        """The checkpoints row of one checkpoint (a file, a sharded set, a folder whose
        ``weights`` define it) and, for a produced one, when its weights were last written.

        A read checkpoint is identified by the content it had when it was read: by the hash
        taken then, or the hash cache's entry for its stat key then; if neither exists and
        the file has changed since, it cannot be identified (:class:`_Lost`)."""
        hashes: list[tuple[str, str]] = []
        pending = None
        size, written_ns = 0, None
        for path in weights:
            seen = self._seen.get((path, role)) if role == "consumed" else None
            try:
                st = os.stat(path)
                key_now: str | None = _stat_key(st)
            except OSError:
                st, key_now = None, None
            if st is not None and not stat.S_ISREG(st.st_mode):
                # a FIFO or device named like a checkpoint: never opened (it could block)
                raise _Lost(f"{path}: not a regular file, not a checkpoint")
            key = (seen.stat if seen else None) or key_now
            sha = (seen.sha256 if seen else None) or (key and self.cache.by_key(key))
            if not sha and st is not None and key == key_now:
                sha = self.cache.get(path)  # a Hugging Face blob is named by its hash
            if not sha:
                if key is None:
                    raise _Lost(f"checkpoint {path} vanished before it could be identified")
                if key != key_now:
                    raise _Lost(
                        f"checkpoint {path} was read, then changed (or removed) before it "
                        "could be identified: its link is left out, not guessed"
                    )
                pending = pending or f"pending:{self.host}:{key}"
            size += int(key.split(":")[2])
            if st is not None and role == "produced":
                written_ns = max(written_ns or 0, st.st_mtime_ns)
            hashes.append((os.path.basename(path), sha or ""))
        if len(weights) == 1:
            ckpt_id = pending or f"sha256:{hashes[0][1]}"
        elif pending is not None:
            # the path is in the link row; the id only needs to be unique and short
            digest = hashlib.sha256(group_path.encode()).hexdigest()[:32]
            ckpt_id = f"pending:{self.host}:set:{digest}"
        else:
            ckpt_id = combined_id(hashes)
        repo, rev = hf_info(group_path)
        row = {
            "checkpoint_id": ckpt_id,
            "name": repo or display_name(group_path),
            "size_bytes": size,
            "hf_repo": repo,
            "hf_revision": rev,
            "first_seen_at": now,
        }
        card = read_model_card(weights[0])
        if card:
            if "card_error" in card:
                self._note(card.pop("card_error"))
            named = card.pop("card_repo", None)
            if named and not row["hf_repo"]:
                row["hf_repo"] = named  # the card says which repo these weights are
            row.update(card)
        return row, written_ns

    # -- files written without an audited open -------------------------------------------------

    def _scan_mtime(self, deadline: float) -> None:
        """Model files under the run's directories modified since the run started: what a
        non-Python child (or native code) wrote. Bounded in entries, depth and time."""
        if self._started_ns is None:
            return
        budget = SCAN_MAX_ENTRIES
        todo = [(root, 0) for root in self._scan_roots]
        visited: set[str] = set()
        while todo and budget > 0 and time.monotonic() < deadline:
            directory, depth = todo.pop(0)
            if directory in visited:
                continue
            visited.add(directory)
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for entry in entries:
                budget -= 1
                try:
                    if entry.is_dir(follow_symlinks=False):
                        hidden = entry.name.startswith(".") or entry.name in SCAN_SKIP
                        if depth < SCAN_DEPTH and not hidden:
                            todo.append((entry.path, depth + 1))
                    elif is_model_file(entry.name) and entry.stat().st_mtime_ns >= self._started_ns:
                        self.log_checkpoint(entry.path, "produced", "mtime")
                except OSError:
                    continue


DETECTORS = ("explicit", "api", "audit", "fd", "mmap", "mtime")  # most direct first


def _latest_mtime_ns(folder: str) -> int:
    """The newest mtime of the files directly in ``folder`` (0 if none can be read)."""
    latest = 0
    try:
        for entry in os.scandir(folder):
            if entry.is_file():
                latest = max(latest, entry.stat().st_mtime_ns)
    except OSError:
        pass
    return latest


def _rank(detected_by: str) -> int:
    return DETECTORS.index(detected_by) if detected_by in DETECTORS else len(DETECTORS)


def _epoch_ns(moment: Any) -> int | None:
    """Nanoseconds since the epoch of a datetime (or a float of seconds), else None."""
    if moment is None:
        return None
    if hasattr(moment, "timestamp"):
        if moment.tzinfo is None:  # the store's datetimes are naive UTC
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
    else:
        seconds = float(moment)
    return int(seconds * 1e9)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc/<pid>/task/*/children."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def _fd_role(pid: int, fd: str) -> str:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("flags:"):
                    flags = int(line.split()[1], 8)
                    return "produced" if flags & (os.O_WRONLY | os.O_RDWR) else "consumed"
    except (OSError, ValueError):
        pass
    return "consumed"


def _group(path: str) -> tuple[str, list[str], str] | None:
    """(key, weight files, kind) of the checkpoint a model file belongs to: its
    Hugging Face-style folder (``folder``), its sharded set (``set``) or itself (``file``);
    None for a set's index whose shards are not there."""
    if os.path.isdir(path):
        weights = checkpoint_folder(path)
        return (path, weights, "folder") if weights else None
    directory = os.path.dirname(path)
    weights = checkpoint_folder(directory)
    if weights:
        return directory, weights, "folder"
    if (
        not os.path.isdir(directory)
        and CHECKPOINT_DIR.match(os.path.basename(directory))
        and os.path.basename(path) in WEIGHT_FILES
    ):
        return directory, [path], "folder"  # a Trainer folder rotated away after the read
    members = shard_set(path)
    if members is not None:
        return members[0], members[1], "set"
    if path.lower().endswith(".index.json"):
        return None
    return path, [path], "file"


def resolve_pending(engine: Any) -> int:
    """Replace this host's ``pending:`` checkpoint ids by content ids where the file is
    unchanged; returns how many were resolved. Called by ``ecotrain sync``."""
    from sqlalchemy import delete, select, update

    from ecotrain.store.schema import checkpoint_paths, checkpoints, run_checkpoints

    host = socket.gethostname()
    prefix = f"pending:{host}:"
    with engine.connect() as conn:
        rows = conn.execute(
            select(run_checkpoints.c.checkpoint_id, run_checkpoints.c.path)
            .where(run_checkpoints.c.checkpoint_id.startswith(prefix))
            .distinct()
        ).all()
    cache = HashCache()
    resolved = 0
    for old_id, path in rows:
        new_id = _resolve_one(old_id, path, cache)
        if new_id is None:
            continue
        with engine.begin() as conn:
            exists = conn.execute(
                select(checkpoints.c.checkpoint_id).where(checkpoints.c.checkpoint_id == new_id)
            ).first()
            if exists:
                conn.execute(delete(checkpoints).where(checkpoints.c.checkpoint_id == old_id))
            else:
                conn.execute(
                    update(checkpoints)
                    .where(checkpoints.c.checkpoint_id == old_id)
                    .values(checkpoint_id=new_id)
                )
            for table in (run_checkpoints, checkpoint_paths):
                conn.execute(
                    update(table)
                    .where(table.c.checkpoint_id == old_id)
                    .values(checkpoint_id=new_id)
                )
            # A run that wrote out weights it had read (a copy) did not produce them.
            copied = (
                select(run_checkpoints.c.run_id)
                .where(
                    run_checkpoints.c.checkpoint_id == new_id,
                    run_checkpoints.c.role == "consumed",
                )
                .scalar_subquery()
            )
            conn.execute(
                delete(run_checkpoints).where(
                    run_checkpoints.c.checkpoint_id == new_id,
                    run_checkpoints.c.role == "produced",
                    run_checkpoints.c.run_id.in_(copied),
                )
            )
        resolved += 1
    with engine.begin() as conn:
        # Provisional ids a heartbeat stored that the final record no longer links to.
        linked = select(run_checkpoints.c.checkpoint_id).where(
            run_checkpoints.c.checkpoint_id.startswith(prefix)
        )
        conn.execute(
            delete(checkpoints).where(
                checkpoints.c.checkpoint_id.startswith(prefix),
                checkpoints.c.checkpoint_id.not_in(linked),
            )
        )
    return resolved


def _resolve_one(old_id: str, path: str | None, cache: HashCache) -> str | None:
    if not path:
        return None
    group = _group(path)
    if group is None:
        return None
    weights = group[1]
    if ":set:" in old_id or len(weights) > 1:
        try:
            hashes = [(os.path.basename(p), cache.compute(p)) for p in weights]
        except OSError:
            return None
        return combined_id(hashes) if hashes else None
    known = cache.by_key(old_id.split(":", 2)[2])
    if known:
        return f"sha256:{known}"  # hashed while it still had that content
    try:
        st = os.stat(weights[0])
    except OSError:
        return None
    if old_id.split(":", 2)[2] != _stat_key(st):
        return None  # the file changed since the run: its content then is unknown
    try:
        return f"sha256:{cache.compute(weights[0])}"
    except OSError:
        return None


def identify(item: str, cache: HashCache | None = None) -> dict[str, Any]:
    """A checkpoints-table row for a path (file, sharded set's index, checkpoint folder or
    a directory holding one checkpoint) or a Hugging Face id, hashing now (for commands,
    not the run path). The identity is the one a run records for the same weights."""
    path = Path(item).expanduser()
    cache = cache or HashCache()
    # abspath, not resolve: a Hugging Face snapshot's symlink names the repo, its blob not
    group = _group(os.path.abspath(path)) if path.exists() else None
    if path.is_dir() and group is None:
        files = sorted(p for p in path.iterdir() if p.is_file() and is_model_file(p.name))
        groups = {g[0]: g for p in files if (g := _group(os.path.abspath(p))) is not None}
        if len(groups) != 1:
            what = "no model files" if not groups else "several checkpoints; name one"
            raise FileNotFoundError(f"{item}: {what} in this directory")
        (group,) = groups.values()
    if group is not None:
        key, weights, _ = group
        hashes = [(os.path.basename(p), cache.compute(p)) for p in weights]
        repo, rev = hf_info(key)
        return {
            "checkpoint_id": f"sha256:{hashes[0][1]}" if len(hashes) == 1 else combined_id(hashes),
            "name": repo or display_name(key),
            "size_bytes": sum(os.stat(p).st_size for p in weights),
            "hf_repo": repo,
            "hf_revision": rev,
            "first_seen_at": utcnow(),
        }
    if HF_ID.match(item):
        return {
            "checkpoint_id": f"hf:{item}",
            "name": item,
            "hf_repo": item,
            "first_seen_at": utcnow(),
        }
    raise FileNotFoundError(f"{item}: no such file, and not a Hugging Face id (org/name)")
