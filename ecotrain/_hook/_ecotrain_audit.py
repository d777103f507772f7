"""The audit hook that reports the model files a Python process reads and writes.

Used two ways, with the same code: injected into every Python child of `ecotrain run`
(``sitecustomize.py`` beside this file, events go to the run's events file), and installed
in the current process by ``ecotrain.track()`` (events go straight to the run's tracker).

An audit hook (PEP 578) sees every ``open()``/``os.open()``, including files opened and
closed within a millisecond and files that are then memory-mapped (numpy memmap). Each
candidate file (by suffix: cheap here; the tracker classifies by content) is reported once
per (path, role). A read carries the file's stat key at that moment, so the tracker
identifies *the content that was read*, not what the path holds later.

Resume in place: a run that reads ``out/ckpt.pt`` and later overwrites it (or removes it,
renames onto it, or deletes its folder) destroys the content it read. The hook fires
*before* the destructive call runs, so at that moment it makes sure the content read is
identified: from ecotrain's hash cache if the tracker already hashed it, else by hashing
it right there (once per file; only in this case does the training process pay for a hash).

Some libraries open weights in native code, which raises no audit event: safetensors
(Rust: ``safe_open``, ``serialize_file``) and ``torch.save`` to a path (C++). Their entry
points are wrapped so that they raise the same ``open`` event first: after their module is
imported (a meta-path finder) and, in-process, where they are already imported.

Stdlib only, and it never raises into the training script.
"""

import hashlib
import json
import os
import stat
import sys
import threading
import time

# module -> (attribute, index of the path argument, keyword name, mode)
NATIVE = {
    "safetensors._safetensors_rust": (
        ("safe_open", 0, "filename", "rb"),
        ("serialize_file", 1, "filename", "wb"),
    ),
    "torch.serialization": (("save", 1, "f", "wb"),),
}
# Modules that re-export the native entry points under their own names.
REEXPORTS = (
    "safetensors", "safetensors.torch", "safetensors.numpy", "safetensors.flax",
    "safetensors.tensorflow", "safetensors.paddle", "safetensors.mlx", "torch",
)  # fmt: skip
WATCHED = frozenset({"open", "os.remove", "os.rename", "shutil.rmtree", "os.truncate"})
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
CHUNK = 4 * 1024 * 1024

_state = {"sink": None, "suffixes": (), "hashcache": None, "installed": False}
_seen = set()  # (path, role) already reported
_reads = {}  # path -> stat key when read, for paths not yet guarded
_lock = threading.Lock()
_local = threading.local()


def stat_key(st):
    """The key ecotrain's hash cache uses: (device, inode, size, mtime)."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def install(sink, suffixes, hashcache=None):
    """Report model-file reads and writes to ``sink(event_dict)`` from now on.

    ``suffixes``: candidate file endings; ``hashcache``: path of ecotrain's hash cache
    (consulted before hashing a file about to be overwritten). Installing again replaces
    the sink (an audit hook cannot be removed; :func:`uninstall` silences it)."""
    with _lock:
        _state["sink"] = sink
        _state["suffixes"] = tuple(s.lower() for s in suffixes if s)
        _state["hashcache"] = hashcache
        _seen.clear()
        _reads.clear()
        first = not _state["installed"]
        _state["installed"] = True
    if first:
        sys.addaudithook(_hook)
        sys.meta_path.insert(0, _NativeOpens())
    for name, patches in NATIVE.items():
        module = sys.modules.get(name)
        if module is not None:
            _patch(module, patches)


def uninstall():
    """Stop reporting (the hook stays, silent)."""
    with _lock:
        _state["sink"] = None
        _reads.clear()


def _hook(event, args):
    if event not in WATCHED or _state["sink"] is None or not args:
        return
    raw = args[0]
    if event == "open" and isinstance(raw, str) and not raw.lower().endswith(_state["suffixes"]):
        return  # the common case (not a model file), before any other work
    if getattr(_local, "busy", False):
        return  # our own reads while guarding
    try:
        if threading.current_thread().name.startswith("ecotrain"):
            return  # ecotrain's own threads (hashing, classifying) in the same process
        _local.busy = True
        if event == "open":
            _on_open(args)
        elif event == "shutil.rmtree":
            _guard_under(_path(args[0]))
        elif event == "os.rename":
            _guard(_path(args[0]))
            _guard(_path(args[1]))
        else:  # os.remove, os.truncate
            _guard(_path(args[0]))
    except Exception:  # noqa: BLE001 - never break the training script
        return
    finally:
        _local.busy = False


def _path(arg):
    if isinstance(arg, bytes):
        arg = os.fsdecode(arg)
    if isinstance(arg, os.PathLike):
        arg = os.fspath(arg)
    return os.path.abspath(arg) if isinstance(arg, str) else None


def _on_open(args):
    path = _path(args[0])
    if path is None or not path.lower().endswith(_state["suffixes"]):
        return
    mode = args[1] if len(args) > 1 else None
    flags = args[2] if len(args) > 2 else 0
    if isinstance(mode, str):
        writing = any(c in mode for c in "wax+")
    else:
        writing = bool((flags or 0) & WRITE_FLAGS)
    if writing:
        _guard(path)  # before the write truncates what the run read
        _emit(path, "produced")
        return
    try:
        key = stat_key(os.stat(path))
    except OSError:
        return  # opening it will fail: nothing was read
    with _lock:
        first = (path, "consumed") not in _seen and (path, "produced") not in _seen
        if first:
            _reads[path] = key
    if first:
        _emit(path, "consumed", stat=key)


def _guard(path):
    """The content read at ``path`` is about to be destroyed: identify it now."""
    if path is None:
        return
    with _lock:
        key = _reads.pop(path, None)
    if key is None:
        return
    try:
        st = os.stat(path)
    except OSError:
        return
    if stat_key(st) != key:
        return  # already changed (by another process): the tracker says it could not tell
    if not stat.S_ISREG(st.st_mode):
        return  # never open a FIFO or device: it could block the training process
    sha = _cached(key) or _sha256(path, key)
    if sha:
        _emit(path, "consumed", stat=key, sha256=sha, kind=classify(path), force=True)


def _guard_under(folder):
    if folder is None:
        return
    prefix = folder.rstrip(os.sep) + os.sep
    with _lock:
        paths = [p for p in _reads if p.startswith(prefix)]
    for path in paths:
        _guard(path)


def classify(path):
    """What kind of model file ``path`` holds, by its content: safetensors, torch (zip or
    pickle), gguf, hdf5 (Keras), keras (zip), onnx, msgpack (flax), numpy; None for
    anything else (a token array, a CSV). ecotrain.lineage.classify is this function."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None  # a FIFO or device named like a checkpoint: opening it could block
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    header_len = int.from_bytes(head[:8], "little") if len(head) >= 9 else 0
    if head[8:9] == b"{" and 2 <= header_len <= _MAX_HEADER:
        return "safetensors"
    if head.startswith(b"GGUF"):
        return "gguf"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"  # Keras .h5 weights
    if head.startswith(b"\x93NUMPY"):
        return "numpy"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "torch"  # a pickle: torch's legacy format (or a pickled state dict)
    lower = path.lower()
    if lower.endswith(".onnx") and head[:1] == b"\x08":
        return "onnx"  # protobuf ModelProto, field 1 (ir_version) first
    if lower.endswith(".msgpack") and head and (0x80 <= head[0] <= 0x8F or head[0] in (0xDE, 0xDF)):
        return "msgpack"  # flax serialization: a msgpack map
    return None


def _zip_kind(path):
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    if any(n.endswith("data.pkl") for n in names):
        return "torch"  # torch.save's zip format
    if "model.weights.h5" in names or {"config.json", "metadata.json"} <= set(names):
        return "keras"
    if names and all(n.endswith(".npy") for n in names):
        return "numpy"  # np.savez
    return None


_MAX_HEADER = 100_000_000  # safetensors' own limit on its JSON header


def _cached(key):
    path = _state["hashcache"]
    if not path:
        return None
    try:
        with open(path) as f:
            return json.load(f).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def _sha256(path, key):
    real = os.path.realpath(path)
    name = os.path.basename(real)
    if os.path.basename(os.path.dirname(real)) == "blobs" and len(name) == 64:
        return name  # a Hugging Face cache blob is named by its sha256
    digest = hashlib.sha256()
    with open(real, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    try:
        if stat_key(os.stat(real)) != key:
            return None
    except OSError:
        return None
    return digest.hexdigest()


def _emit(path, role, stat=None, sha256=None, kind=None, force=False):
    with _lock:
        if (path, role) in _seen and not force:
            return
        _seen.add((path, role))
        sink = _state["sink"]
    if sink is None:
        return
    event = {
        "type": "checkpoint",
        "t": time.time(),
        "path": path,
        "role": role,
        "pid": os.getpid(),
        "detected_by": "audit",
    }
    if stat is not None:
        event["stat"] = stat
    if sha256 is not None:
        event["sha256"] = sha256
    if kind is not None:
        event["kind"] = kind
    sink(event)


def file_sink(events):
    """A sink appending each event as one JSON line (one ``write``) to ``events``."""

    def sink(event):
        fd = os.open(events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(event) + "\n").encode())
        finally:
            os.close(fd)

    return sink


def _audited(func, index, keyword, mode):
    """``func`` raising the ``open`` audit event for its path argument first."""

    def wrapper(*args, **kwargs):
        try:
            path = args[index] if len(args) > index else kwargs.get(keyword)
            if isinstance(path, (str, bytes, os.PathLike)):
                sys.audit("open", os.fspath(path), mode, 0)
        except Exception:  # noqa: BLE001 - never break the training script
            pass
        return func(*args, **kwargs)

    wrapper.__wrapped__ = func
    for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
        try:
            setattr(wrapper, attr, getattr(func, attr))
        except (AttributeError, TypeError):
            pass
    return wrapper


def _patch(module, patches):
    """Wrap ``module``'s native openers, and the names other loaded modules re-export."""
    for attr, index, keyword, mode in patches:
        try:
            func = getattr(module, attr, None)
            if func is None or hasattr(func, "__wrapped__"):
                continue
            wrapped = _audited(func, index, keyword, mode)
            setattr(module, attr, wrapped)
            for name in REEXPORTS:
                other = sys.modules.get(name)
                if other is not None and getattr(other, attr, None) is func:
                    setattr(other, attr, wrapped)
        except Exception:  # noqa: BLE001 - never break the training script
            pass


class _NativeOpens:
    """Meta-path finder: wraps native-code openers (``NATIVE``) once their module loads."""

    def find_spec(self, name, path=None, target=None):
        if name not in NATIVE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader, NATIVE[name])
                return spec
        return None


class _PatchingLoader:
    def __init__(self, loader, patches):
        self._loader = loader
        self._patches = patches

    def create_module(self, spec):
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module):
        self._loader.exec_module(module)
        _patch(module, self._patches)

    def __getattr__(self, name):
        return getattr(self._loader, name)
