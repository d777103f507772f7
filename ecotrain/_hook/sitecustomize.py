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

    def emit(path, role):
        """Append one event for ``path`` (once per path and role); never raises."""
        try:
            path = os.path.abspath(os.fsdecode(os.fspath(path)))
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
            emit(path, "produced" if writing else "consumed")
        except Exception:  # noqa: BLE001 - never break the training script
            return

    sys.addaudithook(hook)
    sys.meta_path.insert(0, _SafetensorsFinder(emit))


class _SafetensorsFinder:
    """safetensors opens, reads and writes files in Rust, past Python's ``open()`` and so past
    the audit hook: when the ``safetensors`` package is imported, wrap its two file entry
    points (``safe_open``, used by ``load_file`` and transformers, and ``serialize_file``,
    used by ``save_file``) so they report their file too. Its submodules bind these names
    from the package after it is executed, so they get the wrapped ones."""

    def __init__(self, emit):
        self.emit = emit

    def find_spec(self, name, path=None, target=None):
        if name != "safetensors":
            return None
        sys.meta_path.remove(self)  # once; the real finders locate the package
        from importlib.util import find_spec

        spec = find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module, emit = spec.loader.exec_module, self.emit

        def exec_and_wrap(module):
            exec_module(module)
            try:
                _wrap_safetensors(module, emit)
            except Exception:  # noqa: BLE001 - an unknown safetensors version: unwrapped
                pass

        spec.loader.exec_module = exec_and_wrap
        return spec


def _wrap_safetensors(module, emit):
    safe_open, serialize_file = module.safe_open, module.serialize_file

    def wrapped_open(filename, *args, **kwargs):
        emit(filename, "consumed")
        return safe_open(filename, *args, **kwargs)

    def wrapped_serialize(tensors, filename, *args, **kwargs):
        out = serialize_file(tensors, filename, *args, **kwargs)
        emit(filename, "produced")
        return out

    module.safe_open, module.serialize_file = wrapped_open, wrapped_serialize


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
