"""Injected by `ecotrain run` into Python children (PYTHONPATH): report model files opened.

The hook itself is ``_ecotrain_audit.py`` beside this file (the in-process API installs the
same one); here it is pointed at the run's events file, named by ``ECOTRAIN_EVENTS``, one
JSON line per event. Any sitecustomize that was already on the path is still run afterwards.
Stdlib only, and it never raises into the training script.
"""

import os
import sys


def _install() -> None:
    events = os.environ.get("ECOTRAIN_EVENTS")
    suffixes = [s for s in os.environ.get("ECOTRAIN_MODEL_SUFFIXES", "").split(",") if s]
    if not events or not suffixes:
        return
    import _ecotrain_audit

    _ecotrain_audit.install(
        _ecotrain_audit.file_sink(events), suffixes, os.environ.get("ECOTRAIN_HASHCACHE")
    )


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
