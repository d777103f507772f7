"""Prometheus: the store's totals and the runs in progress, in the text exposition format.

`ecotrain exporter --port 9464` serves ``/metrics`` (scraped by Prometheus); ``--textfile DIR``
writes ``DIR/ecotrain.prom`` for node-exporter's textfile collector instead (clusters whose
nodes already run node-exporter). Each scrape reads the database afresh, read-only.

Names follow Prometheus conventions, with the units the rest of ecotrain uses (kWh, kg, USD):
counters end in ``_total`` (totals only grow while runs run; a finished run keeps its
figures), gauges hold what is true now.

    ecotrain_energy_kwh_total{project,user,gpu}     facility energy (IT x PUE)
    ecotrain_it_energy_kwh_total{project,user,gpu}  IT energy (GPU + CPU + RAM)
    ecotrain_co2_kg_total{project,user,gpu}         CO2e
    ecotrain_cost_usd_total{project,user,gpu}       cost
    ecotrain_gpu_hours_total{project,user,gpu}      GPU-hours
    ecotrain_runs_total{project,user,gpu}           runs recorded
    ecotrain_runs_running{project,user,gpu}         runs in progress
    ecotrain_run_power_watts{run_id,project,user,gpu,host}   a running run's IT power now
    ecotrain_run_energy_kwh{run_id,project,user,gpu,host}    its facility energy so far
    ecotrain_up                                      1 when the database could be read
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

GROUP = ("project", "user", "gpu_model")
LABELS = ["project", "user", "gpu"]
RUN_LABELS = ["run_id", "project", "user", "gpu", "host"]
COUNTERS = {
    # name (without _total) -> (summed column, help)
    "ecotrain_energy_kwh": ("energy_kwh", "Facility energy of recorded runs (IT x PUE), kWh."),
    "ecotrain_it_energy_kwh": ("it_energy_kwh", "IT energy (GPU + CPU + RAM), kWh."),
    "ecotrain_co2_kg": ("co2_kg", "CO2e of recorded runs, kg."),
    "ecotrain_cost_usd": ("cost_usd", "Cost of recorded runs, US dollars."),
    "ecotrain_gpu_hours": ("gpu_hours", "GPU-hours of recorded runs."),
    "ecotrain_runs": ("runs", "Runs recorded."),
}
TEXTFILE_NAME = "ecotrain.prom"


class StoreCollector:
    """A prometheus-client collector reading an ecotrain store at every scrape."""

    def __init__(self, url: str, project: str | None = None) -> None:
        self.url = url
        self.project = project
        self._engine: Any = None

    def _engine_now(self) -> Any:
        if self._engine is None:
            from ecotrain.store.aggregates import readonly_engine

            self._engine = readonly_engine(self.url)
        return self._engine

    def collect(self) -> Iterator[Any]:
        """The metric families (see the module docstring)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from ecotrain.store.aggregates import grouped_totals, running_runs_power
        from ecotrain.store.queries import RunFilter

        up = GaugeMetricFamily("ecotrain_up", "1 if the ecotrain database could be read.")
        try:
            engine = self._engine_now()
            flt = RunFilter(project=self.project)
            groups = grouped_totals(engine, flt, GROUP)
            running = running_runs_power(engine, flt)
        except Exception:  # noqa: BLE001 - a scrape reports the outage, it does not crash
            self._engine = None
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, (column, help_text) in COUNTERS.items():
            family = CounterMetricFamily(name, help_text, labels=LABELS)
            for row in groups:
                family.add_metric(_labels(row), float(row[column] or 0.0))
            yield family
        gauge = GaugeMetricFamily("ecotrain_runs_running", "Runs in progress.", labels=LABELS)
        for row in groups:
            gauge.add_metric(_labels(row), float(row["running"] or 0))
        yield gauge
        power = GaugeMetricFamily(
            "ecotrain_run_power_watts",
            "IT power of a run in progress, last sample.",
            labels=RUN_LABELS,
        )
        energy = GaugeMetricFamily(
            "ecotrain_run_energy_kwh",
            "Facility energy of a run in progress so far.",
            labels=RUN_LABELS,
        )
        for row in running:
            labels = [row["run_id"], *_labels(row), row.get("host") or ""]
            if row["power_w"] is not None:
                power.add_metric(labels, row["power_w"])
            energy.add_metric(labels, float(row["facility_energy_kwh"] or 0.0))
        yield power
        yield energy


def _labels(row: dict[str, Any]) -> list[str]:
    return [str(row.get(key) or "") for key in GROUP]


def registry_for(url: str, project: str | None = None) -> Any:
    """A fresh registry holding only ecotrain's collector (no process/python metrics)."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(url, project))
    return registry


def serve(url: str, host: str, port: int, project: str | None = None) -> Any:
    """Serve ``/metrics`` on ``host:port`` in a background thread; returns the server."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=registry_for(url, project))
    return server


def write_textfile(url: str, directory: Path, project: str | None = None) -> Path:
    """Write ``directory/ecotrain.prom`` atomically (a temp file, then rename)."""
    from prometheus_client import write_to_textfile

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / TEXTFILE_NAME
    write_to_textfile(str(path), registry_for(url, project))
    os.chmod(path, 0o644)  # node-exporter runs as another user
    return path


def textfile_loop(
    url: str, directory: Path, every_s: float, project: str | None = None, once: bool = False
) -> Path:
    """Rewrite the textfile every ``every_s`` seconds (once with ``once``)."""
    while True:
        path = write_textfile(url, directory, project)
        if once:
            return path
        time.sleep(every_s)
