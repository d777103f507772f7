"""Injected by `ecotrain run` into Python children (PYTHONPATH): report model files opened.

An audit hook (PEP 578) sees every ``open()``/``os.open()``, including files opened and
closed within a millisecond and files that are then memory-mapped (numpy memmap). Matching
model files are appended, once per (path, mode), as JSON lines to the run's events file
named by ``ECOTRAIN_EVENTS``.

Some libraries open weights in native code, which raises no audit event: safetensors
(Rust: ``safe_open``, ``serialize_file``, hence ``load_file``/``save_file`` for every
framework) and ``torch.save`` to a path (C++). For those, a meta-path finder wraps the
entry points right after their module is imported, and the wrappers raise the same
``open`` audit event before calling through; nothing else about them changes.

Stdlib only, and it never raises into the training script. Any sitecustomize that was
already on the path is still run afterwards.
"""

import os
import sys

# module -> (attribute, index of the path argument, keyword name, mode)
_NATIVE = {
    "safetensors._safetensors_rust": (
        ("safe_open", 0, "filename", "rb"),
        ("serialize_file", 1, "filename", "wb"),
    ),
    "torch.serialization": (("save", 1, "f", "wb"),),
}


def _install() -> None:
    events = os.environ.get("ECOTRAIN_EVENTS")
    if not events:
        return
    suffixes = tuple(s for s in os.environ.get("ECOTRAIN_MODEL_SUFFIXES", "").split(",") if s)
    if not suffixes:
        return
    seen = set()
    import json
    import time

    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def hook(event, args):
        if event != "open" or not args:
            return
        try:
            path = args[0]
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            if not isinstance(path, str) or not path.lower().endswith(suffixes):
                return
            mode = args[1] if len(args) > 1 else None
            flags = args[2] if len(args) > 2 else 0
            if isinstance(mode, str):
                writing = any(c in mode for c in "wax+")
            else:
                writing = bool((flags or 0) & write_flags)
            role = "produced" if writing else "consumed"
            path = os.path.abspath(path)
            if (path, role) in seen:
                return
            seen.add((path, role))
            line = (
                json.dumps(
                    {
                        "type": "checkpoint",
                        "t": time.time(),
                        "path": path,
                        "role": role,
                        "pid": os.getpid(),
                        "detected_by": "audit",
                    }
                )
                + "\n"
            )
            fd = os.open(events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except Exception:  # noqa: BLE001 - never break the training script
            return

    sys.addaudithook(hook)
    sys.meta_path.insert(0, _NativeOpens())


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


class _NativeOpens:
    """Meta-path finder: wraps native-code openers (``_NATIVE``) once their module loads."""

    def find_spec(self, name, path=None, target=None):
        if name not in _NATIVE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader, _NATIVE[name])
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
        for attr, index, keyword, mode in self._patches:
            try:
                func = getattr(module, attr, None)
                if func is not None and not hasattr(func, "__wrapped__"):
                    setattr(module, attr, _audited(func, index, keyword, mode))
            except Exception:  # noqa: BLE001 - never break the training script
                pass

    def __getattr__(self, name):
        return getattr(self._loader, name)


def _chain() -> None:
    """Run the sitecustomize this one shadows, if any."""
    here = os.path.dirname(os.path.abspath(__file__))
    from importlib.machinery import PathFinder

    spec = PathFinder.find_spec(
        "sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != here]
    )
    if spec is not None and spec.loader is not None:
        from importlib.util import module_from_spec

        module = module_from_spec(spec)
        spec.loader.exec_module(module)


try:
    _install()
    _chain()
except Exception:  # noqa: BLE001
    pass
