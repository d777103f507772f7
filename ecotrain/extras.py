"""Optional extras: which command needs which, and the one-line message when one is missing.

`pip install ecotrain` is the light wrapper for compute nodes; the dashboard, Parquet export
and the integrations live in extras. A command checks its extra with :func:`require` before
importing anything from it, so a missing package is one line naming what to install (exit 2),
never an ImportError traceback.
"""

from __future__ import annotations

import importlib.util

from ecotrain.errors import UserError

# extra -> the top-level modules it provides (checked without importing them)
EXTRAS: dict[str, tuple[str, ...]] = {
    "dashboard": ("streamlit", "pandas"),
    "parquet": ("pyarrow",),
    "postgres": ("psycopg",),
    "mlflow": ("mlflow",),
    "wandb": ("wandb",),
    "prometheus": ("prometheus_client",),
    "notebook": ("IPython",),
}


class MissingExtra(UserError):
    """A command needs an optional extra that is not installed."""


def missing(extra: str, modules: tuple[str, ...] | None = None) -> list[str]:
    """The modules of ``extra`` (or ``modules``) that cannot be imported here."""
    names = modules if modules is not None else EXTRAS[extra]
    return [name for name in names if importlib.util.find_spec(name) is None]


def require(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """Raise :class:`MissingExtra` (one line, exit 2) when ``extra`` is not installed.

    ``what`` names the feature for the message: ``"ecotrain dashboard"``, ``"--mlflow"``.
    """
    absent = missing(extra, modules)
    if absent:
        raise MissingExtra(
            f"{what} needs the [{extra}] extra ({', '.join(absent)} not installed): "
            f"pip install 'ecotrain[{extra}]'"
        )
