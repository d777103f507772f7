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
  checkpoint. A run that writes out weights it read (a copy) consumed them; it did not
  produce them.
- ``--uses`` / ``--produces`` and the Python API (``run.log_checkpoint``) name them
  explicitly. A Hugging Face id (``org/name``) that is not a local path is recorded as such.

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
HF_CACHE = re.compile(r"models--(?P<repo>[^/]+)/snapshots/(?P<rev>[^/]+)/")
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


def child_env(env: dict[str, str], run_id: str) -> dict[str, str]:
    """The child's environment with the audit hook on its PYTHONPATH."""
    from ecotrain.events import events_path

    hook_dir = str(Path(__file__).parent / "_hook")
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = hook_dir + (os.pathsep + path if path else "")
    events = events_path(run_id)
    events.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    env["ECOTRAIN_EVENTS"] = str(events)
    env["ECOTRAIN_MODEL_SUFFIXES"] = ",".join(MODEL_SUFFIXES)
    return env


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
        if path is None:
            from ecotrain.config import user_data_dir

            path = user_data_dir() / "hashcache.json"
        self.path = path
        self._lock = threading.Lock()
        try:
            self.data: dict[str, str] = json.loads(path.read_text())
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
    co2 = meta.get("co2_eq_emissions") if isinstance(meta, dict) else None
    if isinstance(co2, int | float):
        co2 = {"emissions": co2}
    if not isinstance(co2, dict) or not isinstance(co2.get("emissions"), int | float):
        return None
    return {
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
            self._hf_ids.append((item, role))
        else:
            self.notes.append(f"--uses {item}: no such file, and not a Hugging Face id")

    def log_checkpoint(self, path: str, role: str = "produced", detected_by: str = "api") -> None:
        """Note that the run read (consumed) or wrote (produced) the model file ``path``."""
        path = os.path.abspath(path)
        with self._lock:
            if role == "consumed" and (path, "produced") in self._seen:
                return  # reading back what the run itself wrote is not reuse
            seen = self._seen.setdefault((path, role), _Seen(path, role, detected_by))
            if _rank(detected_by) < _rank(seen.detected_by):
                seen.detected_by = detected_by  # keep the most direct evidence
        if role == "consumed" and (path.endswith(".index.json") or SHARD.match(path)):
            members = shard_set(path)
            with self._lock:
                for shard in members[1] if members else []:
                    self._seen.setdefault((shard, role), _Seen(shard, role, detected_by))

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
        with self._lock:
            paths = [s.path for s in self._seen.values()]
        for path in paths:
            if self._stop.is_set():
                return
            if self.cache.get(path) is None:
                try:
                    self.cache.compute(path)
                except OSError:
                    continue  # still being written, or gone: retried, or left pending

    def stop(self) -> None:
        """Stop polling and hashing (does not wait for a hash in progress)."""
        self._stop.set()

    # -- the record ---------------------------------------------------------------------------

    def record_parts(self, final: bool = False) -> dict[str, list[dict]]:
        """Rows for the checkpoints, run_checkpoints and checkpoint_paths tables."""
        if final:
            self.stop()
            try:  # a last look for files written in the run's final second
                self._scan_mtime(time.monotonic() + FINAL_SCAN_S)
            except Exception as e:  # noqa: BLE001 - lineage must never disturb the run
                self.notes.append(f"lineage: {type(e).__name__}: {e}")
        now = utcnow()
        with self._lock:
            seen = list(self._seen.values())
        groups: dict[tuple[str, str], list[_Seen]] = {}
        set_members: dict[str, list[str]] = {}
        for s in seen:
            members = shard_set(s.path)
            if members is not None:
                key, shards = members
                set_members[key] = shards
            elif s.path.lower().endswith(".index.json"):
                continue  # an index without its shards holds no weights
            else:
                key = s.path
            groups.setdefault((key, s.role), []).append(s)
        rows: dict[str, dict] = {}
        by_role: dict[str, list[tuple[str, str, str]]] = {"consumed": [], "produced": []}
        for (group_path, role), members in groups.items():
            row = self._identify(group_path, set_members.get(group_path), now)
            if row is None:
                continue
            rows.setdefault(row["checkpoint_id"], row)
            by_role[role].append((row["checkpoint_id"], group_path, members[0].detected_by))
        consumed_ids = {c for c, _, _ in by_role["consumed"]}
        links, paths, linked = [], [], set()
        for role in ("consumed", "produced"):
            for ckpt_id, group_path, detected_by in by_role[role]:
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
                links.append(
                    {
                        "checkpoint_id": ckpt_id,
                        "role": role,
                        "path": group_path,
                        "detected_by": detected_by,
                    }
                )
        checkpoints = list(rows.values())
        for repo, role in self._hf_ids:
            ckpt_id = f"hf:{repo}"
            checkpoints.append(
                {"checkpoint_id": ckpt_id, "name": repo, "hf_repo": repo, "first_seen_at": now}
            )
            links.append(
                {"checkpoint_id": ckpt_id, "role": role, "path": None, "detected_by": "explicit"}
            )
        return {"checkpoints": checkpoints, "links": links, "paths": paths}

    def _identify(self, group_path: str, shards: list[str] | None, now: Any) -> dict | None:
        """The checkpoints row of one file, or of a sharded set (``shards`` on disk)."""
        files = shards if shards is not None else [group_path]
        hashes: list[tuple[str, str]] = []
        pending = None
        size = 0
        for path in files:
            try:
                st = os.stat(path)
            except OSError:
                note = f"checkpoint {path} vanished before it could be identified"
                if note not in self.notes:
                    self.notes.append(note)
                return None
            if not stat.S_ISREG(st.st_mode):
                note = f"{path}: not a regular file, not a checkpoint"
                if note not in self.notes:
                    self.notes.append(note)
                return None
            size += st.st_size
            sha = self.cache.get(path)
            if sha is None:
                pending = pending or pending_id(path, st)
            hashes.append((os.path.basename(path), sha or ""))
        if shards is None:
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
            "name": repo or os.path.basename(group_path),
            "size_bytes": size,
            "hf_repo": repo,
            "hf_revision": rev,
            "first_seen_at": now,
        }
        card = read_model_card(files[0])
        if card:
            if "card_error" in card:
                note = card.pop("card_error")
                if note not in self.notes:
                    self.notes.append(note)
            row.update(card)
        return row

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
    if ":set:" in old_id:
        directory, group = os.path.split(path)
        m = SET_NAME.match(group)
        if not m or not os.path.isdir(directory):
            return None
        members = []
        for name in sorted(os.listdir(directory)):
            shard = SHARD.match(name)
            if shard and (shard["prefix"], shard["n"], shard["ext"]) == (
                m["prefix"],
                m["n"],
                m["ext"],
            ):
                members.append(os.path.join(directory, name))
        try:
            hashes = [(os.path.basename(p), cache.compute(p)) for p in members]
        except OSError:
            return None
        return combined_id(hashes) if hashes else None
    try:
        st = os.stat(path)
    except OSError:
        return None
    if old_id.split(":", 2)[2] != _stat_key(st):
        return None  # the file changed since the run: its content then is unknown
    try:
        return f"sha256:{cache.compute(path)}"
    except OSError:
        return None


def identify(item: str, cache: HashCache | None = None) -> dict[str, Any]:
    """A checkpoints-table row for a path (file, sharded set's index, directory) or a
    Hugging Face id, hashing now (for commands, not the run path)."""
    path = Path(item).expanduser()
    cache = cache or HashCache()
    if path.is_dir():
        # The same identity a run records: one sharded set, or one model file.
        files = sorted(p for p in path.iterdir() if p.is_file() and is_model_file(p.name))
        sets = {m[0]: m[1] for p in files if (m := shard_set(str(p))) is not None}
        singles = [p for p in files if shard_set(str(p)) is None and not p.name.endswith(".json")]
        if len(sets) + len(singles) != 1:
            what = "no model files" if not files else "several checkpoints; name one"
            raise FileNotFoundError(f"{item}: {what} in this directory")
        if singles:
            path = singles[0]
        else:
            ((key, shards),) = sets.items()
            members = [(os.path.basename(p), cache.compute(p)) for p in shards]
            repo, rev = hf_info(key)
            return {
                "checkpoint_id": combined_id(members),
                "name": repo or os.path.basename(key),
                "size_bytes": sum(os.stat(p).st_size for p in shards),
                "hf_repo": repo,
                "hf_revision": rev,
                "first_seen_at": utcnow(),
            }
    if path.is_file() and shard_set(str(path)) is not None:
        return identify(str(path.parent), cache)
    if path.is_file():
        repo, rev = hf_info(os.path.abspath(path))
        return {
            "checkpoint_id": f"sha256:{cache.compute(str(path))}",
            "name": repo or path.name,
            "size_bytes": path.stat().st_size,
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
