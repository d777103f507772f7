"""MLflow: a run's figures as metrics of an MLflow run, its ecotrain id as a tag.

Imported only when MLflow is in use (the ``[mlflow]`` extra provides ``mlflow-skinny``; a full
``mlflow`` install works too). Metric names ``ecotrain/energy_kwh`` ... and the tag
``ecotrain.run_id`` (see :mod:`ecotrain.integrations`).
"""

from __future__ import annotations

import time

from ecotrain.integrations import RUN_ID_TAG


class MlflowSink:
    """Logs to one MLflow run through a client, so no ``active_run`` state is needed."""

    name = "mlflow"

    def __init__(self, run_id: str, tracking_uri: str | None = None, owned: bool = False) -> None:
        from mlflow.tracking import MlflowClient

        self.run_id = run_id
        self.owned = owned  # created by `ecotrain run --mlflow`: ended by it too
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri)

    def log(self, metrics: dict[str, float], step: int | None) -> None:
        """Per-step figures (step 0 when progress is unknown, as ``mlflow.log_metric``)."""
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        batch = [Metric(key, value, ts, step or 0) for key, value in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def final(self, metrics: dict[str, float], run_id: str, step: int | None, status: str) -> None:
        """Final figures (at the last step logged) and the ``ecotrain.run_id`` tag; a run
        this sink created is ended with the command's status."""
        self.client.set_tag(self.run_id, RUN_ID_TAG, run_id)
        self.log(metrics, step)
        if self.owned:
            mlflow_status = {"finished": "FINISHED", "killed": "KILLED"}.get(status, "FAILED")
            self.client.set_terminated(self.run_id, status=mlflow_status)


def active_sink() -> MlflowSink | None:
    """A sink for ``mlflow.active_run()`` in this process, if there is one."""
    import mlflow

    run = mlflow.active_run()
    if run is None:
        return None
    return MlflowSink(run.info.run_id, mlflow.get_tracking_uri())


def active_run_ref() -> dict[str, str] | None:
    """``{"run_id", "tracking_uri"}`` of this process's active MLflow run (for the wrapper)."""
    import mlflow

    run = mlflow.active_run()
    if run is None:
        return None
    return {"run_id": run.info.run_id, "tracking_uri": mlflow.get_tracking_uri()}


def start_for_wrapper(project: str, env: dict[str, str]) -> MlflowSink:
    """The MLflow run `ecotrain run --mlflow` logs to: ``MLFLOW_RUN_ID`` if set (``mlflow run``
    sets it), else a new run in ``MLFLOW_EXPERIMENT_ID`` / ``MLFLOW_EXPERIMENT_NAME`` (default
    experiment otherwise), named after the project. ``env`` gets ``MLFLOW_RUN_ID``, so the
    child's own ``mlflow.start_run()`` resumes the same run instead of making a second one.
    """
    from mlflow.tracking import MlflowClient

    uri = env.get("MLFLOW_TRACKING_URI")
    run_id = env.get("MLFLOW_RUN_ID")
    if not run_id:
        client = MlflowClient(tracking_uri=uri)
        experiment_id = env.get("MLFLOW_EXPERIMENT_ID")
        name = env.get("MLFLOW_EXPERIMENT_NAME")
        if not experiment_id and name:
            found = client.get_experiment_by_name(name)
            experiment_id = found.experiment_id if found else client.create_experiment(name)
        run = client.create_run(experiment_id or "0", run_name=project)
        env["MLFLOW_RUN_ID"] = run.info.run_id
        return MlflowSink(run.info.run_id, uri, owned=True)
    return MlflowSink(run_id, uri)
