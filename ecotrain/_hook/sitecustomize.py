"""Injected by `ecotrain run` into Python children (PYTHONPATH): report model files opened.

An audit hook (PEP 578) sees every ``open()``, including files opened and closed within a
millisecond and files that are then memory-mapped (safetensors, numpy memmap). Matching
model files are appended, once per (path, mode), as JSON lines to the run's events file
named by ``ECOTRAIN_EVENTS``. Stdlib only, and it never raises into the training script.
Any sitecustomize that was already on the path is still run afterwards.
"""

import os
import sys


def _install() -> None:
    events = os.environ.get("ECOTRAIN_EVENTS")
    if not events:
        return
    suffixes = tuple(os.environ.get("ECOTRAIN_MODEL_SUFFIXES", "").split(",")) or ()
    if not suffixes or suffixes == ("",):
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
    _watch_native_readers(hook)


# safetensors reads and writes files from Rust (no Python open(), so no audit event):
# wrap its entry points when, and only if, the script imports it.
_NATIVE = {
    "safetensors": {"safe_open": 0},
    "safetensors.numpy": {"load_file": 0, "save_file": 1},
    "safetensors.torch": {"load_file": 0, "save_file": 1, "save_model": 1, "load_model": 1},
}


def _watch_native_readers(hook) -> None:
    import functools
    from importlib.abc import MetaPathFinder

    def wrap(module, name, arg_index, writing):
        original = getattr(module, name, None)
        if original is None or getattr(original, "__ecotrain__", False):
            return

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            path = args[arg_index] if len(args) > arg_index else kwargs.get("filename")
            if isinstance(path, str | bytes | os.PathLike):
                hook("open", (os.fspath(path), "wb" if writing else "rb", 0))
            return original(*args, **kwargs)

        wrapper.__ecotrain__ = True
        try:
            setattr(module, name, wrapper)
        except (AttributeError, TypeError):
            pass

    class Finder(MetaPathFinder):
        def find_spec(self, fullname, path=None, target=None):
            if fullname not in _NATIVE:
                return None
            for finder in sys.meta_path:
                if finder is self:
                    continue
                spec = getattr(finder, "find_spec", lambda *a: None)(fullname, path, target)
                if spec is not None and spec.loader is not None:
                    loader = spec.loader
                    exec_module = loader.exec_module

                    def patched(module, _exec=exec_module, _name=fullname):
                        _exec(module)
                        for func, index in _NATIVE[_name].items():
                            wrap(module, func, index, func.startswith("save"))

                    try:
                        loader.exec_module = patched
                    except (AttributeError, TypeError):
                        return spec
                    return spec
            return None

    sys.meta_path.insert(0, Finder())


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
