"""Weights & Biases: a run's figures in the active ``wandb`` run (history and summary).

Per-step figures carry their own x-axis, ``ecotrain/step`` (declared with ``define_metric``),
so they never fight the user's ``wandb.log`` step counter; the final figures go to the run's
summary with the ``ecotrain.run_id``.
"""

from __future__ import annotations

from typing import Any

from ecotrain.integrations import PREFIX, RUN_ID_TAG


class WandbSink:
    """Logs to one wandb run object."""

    name = "wandb"

    def __init__(self, run: Any) -> None:
        self.run = run
        run.define_metric(PREFIX + "step")
        run.define_metric(PREFIX + "*", step_metric=PREFIX + "step")

    def log(self, metrics: dict[str, float], step: int | None) -> None:
        """Per-step figures against ``ecotrain/step``."""
        row = dict(metrics)
        if step is not None:
            row[PREFIX + "step"] = step
        self.run.log(row, commit=True)

    def final(self, metrics: dict[str, float], run_id: str, step: int | None, status: str) -> None:
        """Final figures into the summary, with the ecotrain run id."""
        self.run.summary.update({**metrics, RUN_ID_TAG: run_id})


def active_sink() -> WandbSink | None:
    """A sink for ``wandb.run`` in this process, if a run is active."""
    import wandb

    run = wandb.run
    return None if run is None else WandbSink(run)
