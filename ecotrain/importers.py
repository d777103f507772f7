"""Bring other tools' measurements in as ecotrain runs: codecarbon's ``emissions.csv``.

Each CSV row becomes a run with ``source = "import:codecarbon"``, ``status = "imported"``,
method tags ``imported`` and ``external_id`` = codecarbon's ``run_id``, so importing the same
file twice adds nothing. codecarbon's own figures are kept, not re-accounted: its emissions
(kg CO2e), its PUE and the intensity they imply. codecarbon 3.x multiplies every energy by its
PUE, so ``energy_consumed`` is facility energy; IT energy is ``energy_consumed / pue``. Cost is
left unknown (codecarbon does not record one). A row that does not parse is reported with its
line number and the other rows still import.
"""

from __future__ import annotations

import csv
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ecotrain import __version__
from ecotrain.store.records import parse_datetime

SOURCE = "import:codecarbon"
REQUIRED = ("timestamp", "run_id", "duration", "emissions", "energy_consumed")
_NAMESPACE = uuid.UUID("6f1c7a52-3d1b-4f43-9a55-3b0c1f2a9e11")


class NotCodecarbonCSV(ValueError):
    """The file cannot be read or lacks codecarbon's columns (exit code 2)."""


@dataclass
class ImportResult:
    """What an import did."""

    imported: list[str] = field(default_factory=list)  # ecotrain run ids written
    already: list[str] = field(default_factory=list)  # codecarbon run ids already present
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)


def _float(row: dict[str, str], key: str, required: bool = False) -> float | None:
    text = (row.get(key) or "").strip()
    if not text:
        if required:
            raise ValueError(f"{key} is empty")
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{key} is not a number: {text[:40]!r}") from None


def _int(row: dict[str, str], key: str) -> int | None:
    value = _float(row, key)
    return None if value is None else int(value)


def _text(row: dict[str, str], key: str) -> str | None:
    text = (row.get(key) or "").strip()
    return text or None


def codecarbon_row_to_record(
    row: dict[str, str], project: str | None, where: str
) -> dict[str, Any]:
    """One codecarbon CSV row as an ecotrain record; raises ValueError saying what is wrong."""
    external = _text(row, "run_id")
    if external is None:
        raise ValueError("run_id is empty")
    try:
        ended = parse_datetime((row.get("timestamp") or "").strip())
    except ValueError:
        raise ValueError(f"timestamp is not ISO-8601: {row.get('timestamp')!r}") from None
    duration = _float(row, "duration", required=True)
    emissions = _float(row, "emissions", required=True)
    facility = _float(row, "energy_consumed", required=True)
    if duration < 0 or emissions < 0 or facility < 0:
        raise ValueError("negative duration, emissions or energy")
    pue = _float(row, "pue") or 1.0
    if pue <= 0:
        raise ValueError(f"pue must be positive, got {pue}")
    version = _text(row, "codecarbon_version") or "?"
    iso, region = _text(row, "country_iso_code"), _text(row, "region")
    run: dict[str, Any] = {
        "run_id": uuid.uuid5(_NAMESPACE, f"codecarbon:{external}").hex,
        "external_id": external,
        "source": SOURCE,
        "status": "imported",
        "project": project or _text(row, "project_name") or "codecarbon",
        "started_at": ended - timedelta(seconds=duration),
        "ended_at": ended,
        "heartbeat_at": ended,
        "duration_s": duration,
        "tags": {
            k: v
            for k, v in {
                "codecarbon_experiment_id": _text(row, "experiment_id"),
                "tracking_mode": _text(row, "tracking_mode"),
            }.items()
            if v
        },
        "it_energy_kwh": facility / pue,
        "pue": pue,
        "pue_source": f"codecarbon {version} (as recorded)",
        "facility_energy_kwh": facility,
        "region": f"{iso}/{region}" if iso and region else iso or region,
        "intensity_g_per_kwh": emissions * 1000 / facility if facility > 0 else None,
        "intensity_source": f"codecarbon {version} (implied by its emissions / energy)",
        "co2_kg": emissions,
        "cost_usd": None,
        "cpu_model": _text(row, "cpu_model"),
        "cpu_count": _int(row, "cpu_count"),
        "gpu_model": _text(row, "gpu_model"),
        "gpu_count": _int(row, "gpu_count"),
        "ecotrain_version": __version__,
        "data_version": f"codecarbon {version}",
        "notes": [
            f"imported from {where}",
            "codecarbon energies include its PUE; IT energy = energy_consumed / pue",
            "no cost: codecarbon records none",
        ],
    }
    for component in ("cpu", "gpu", "ram"):
        kwh = _float(row, f"{component}_energy")
        if kwh is not None:
            run[f"{component}_energy_j"] = kwh / pue * 3.6e6
            run[f"{component}_method"] = "imported"
    if row.get("on_cloud", "").strip() == "Y":
        provider = _text(row, "cloud_provider")
        cloud_region = _text(row, "cloud_region")
        run["notes"].append(f"cloud: {provider or '?'} {cloud_region or ''}".strip())
    return {"run": run, "samples": None}


def read_codecarbon_csv(
    path: Path, project: str | None = None
) -> tuple[list[dict], list[tuple[int, str]]]:
    """Records from a codecarbon CSV, and (line number, reason) for rows that do not parse."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as e:
        raise NotCodecarbonCSV(f"cannot read {path}: {e.strerror}") from None
    records, errors = [], []
    with handle:
        try:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
        except (csv.Error, UnicodeDecodeError) as e:
            raise NotCodecarbonCSV(f"{path} is not a CSV file: {e}") from None
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise NotCodecarbonCSV(
                f"{path} is not a codecarbon emissions CSV (missing columns: {', '.join(missing)})"
            )
        try:
            for row in reader:
                line = reader.line_num
                if None in row or any(v is None for v in row.values()):
                    errors.append((line, f"expected {len(header)} columns"))
                    continue
                try:
                    records.append(codecarbon_row_to_record(row, project, f"{path}:{line}"))
                except ValueError as e:
                    errors.append((line, str(e)))
        except (csv.Error, UnicodeDecodeError) as e:
            errors.append((reader.line_num, f"unreadable: {e}"))
    return records, errors


def import_codecarbon(store: Any, path: Path, project: str | None = None) -> ImportResult:
    """Import a codecarbon CSV into ``store``; idempotent on codecarbon's run_id."""
    from sqlalchemy import select

    from ecotrain.store.schema import runs

    records, errors = read_codecarbon_csv(path, project)
    result = ImportResult(errors=errors)
    with store.engine.connect() as conn:
        known = {
            r[0] for r in conn.execute(select(runs.c.external_id).where(runs.c.source == SOURCE))
        }
    for record in records:
        external = record["run"]["external_id"]
        if external in known:
            result.already.append(external)
            continue
        store.write_record(record)
        known.add(external)
        result.imported.append(record["run"]["run_id"])
    return result
