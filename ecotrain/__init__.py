"""ecotrain: measure what training costs (energy, CO2e, dollars) and what reuse saves.

``import ecotrain`` stays cheap: ``ecotrain.track`` and ``ecotrain.Run`` are loaded on first
use (module ``__getattr__``), so the CLI's start-up and the run path pay nothing for them.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Run", "__version__", "track"]

_LAZY = {"track": "ecotrain.api", "Run": "ecotrain.api"}


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext ecotrain``: the ``%ecotrain`` / ``%%ecotrain`` magics."""
    from ecotrain.integrations.notebook import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext ecotrain``."""
    from ecotrain.integrations.notebook import unload_ipython_extension as unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ecotrain' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
