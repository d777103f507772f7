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
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ecotrain import __version__
from ecotrain.store.records import parse_datetime, utcnow

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


# What one codecarbon row can plausibly hold. A value outside is a corrupt row, not a run:
# imported as is it would overflow dates (a 1e300 s duration), or turn every total that
# includes it into "inf" or a number no lab has ever spent. The bounds are far beyond any
# real training run (1e9 kWh is a thousand times GPT-4's published estimate).
LIMITS: dict[str, float] = {
    "duration": 100 * 365.25 * 86400,  # seconds: a century
    "emissions": 1e9,  # kg CO2e
    "energy_consumed": 1e9,  # kWh
    "cpu_energy": 1e9,
    "gpu_energy": 1e9,
    "ram_energy": 1e9,
    "pue": 10.0,
    "cpu_count": 1e7,
    "gpu_count": 1e7,
}
# Timestamps before this are a clock or a file gone wrong (codecarbon dates from 2020).
EARLIEST = datetime(1990, 1, 1)


def _float(row: dict[str, str], key: str, required: bool = False) -> float | None:
    text = (row.get(key) or "").strip()
    if not text:
        if required:
            raise ValueError(f"{key} is empty")
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{key} is not a number: {text[:40]!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{key} is not a finite number: {text[:40]!r}")
    if key in LIMITS and abs(value) > LIMITS[key]:
        raise ValueError(f"{key} is out of range: {text[:40]!r} (at most {LIMITS[key]:g})")
    return value


def _int(row: dict[str, str], key: str) -> int | None:
    value = _float(row, key)
    return None if value is None else int(value)


def _timestamp(row: dict[str, str]) -> datetime:
    text = (row.get("timestamp") or "").strip()
    try:
        ended = parse_datetime(text)
    except (ValueError, OverflowError):
        raise ValueError(f"timestamp is not ISO-8601: {text[:40]!r}") from None
    if not isinstance(ended, datetime):
        raise ValueError(f"timestamp is not ISO-8601: {text[:40]!r}")
    if ended < EARLIEST or ended > utcnow() + timedelta(days=366):
        raise ValueError(f"timestamp is out of range: {text[:40]!r}")
    return ended


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
    ended = _timestamp(row)
    duration = _float(row, "duration", required=True)
    emissions = _float(row, "emissions", required=True)
    facility = _float(row, "energy_consumed", required=True)
    if duration < 0 or emissions < 0 or facility < 0:
        raise ValueError("negative duration, emissions or energy")
    pue = _float(row, "pue") or 1.0
    if pue <= 0:
        raise ValueError(f"pue must be positive, got {pue}")
    try:
        started = ended - timedelta(seconds=duration)
    except OverflowError:
        raise ValueError("timestamp minus duration is before year 1") from None
    version = _text(row, "codecarbon_version") or "?"
    iso, region = _text(row, "country_iso_code"), _text(row, "region")
    run: dict[str, Any] = {
        "run_id": uuid.uuid5(_NAMESPACE, f"codecarbon:{external}").hex,
        "external_id": external,
        "source": SOURCE,
        "status": "imported",
        "project": project or _text(row, "project_name") or "codecarbon",
        "started_at": started,
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
                    record = codecarbon_row_to_record(row, project, f"{path}:{line}")
                except (ValueError, OverflowError) as e:
                    errors.append((line, str(e)))
                    continue
                record["line"] = line
                records.append(record)
        except (csv.Error, UnicodeDecodeError) as e:
            errors.append((reader.line_num, f"unreadable: {e}"))
    return records, errors


def import_codecarbon(store: Any, path: Path, project: str | None = None) -> ImportResult:
    """Import a codecarbon CSV into ``store``; idempotent on codecarbon's run_id."""
    from sqlalchemy import select
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    from ecotrain.store.schema import runs

    records, errors = read_codecarbon_csv(path, project)
    result = ImportResult(errors=errors)
    with store.engine.connect() as conn:
        known = {
            r[0] for r in conn.execute(select(runs.c.external_id).where(runs.c.source == SOURCE))
        }
    for record in records:
        line = record.pop("line", 0)
        external = record["run"]["external_id"]
        if external in known:
            result.already.append(external)
            continue
        try:
            store.write_record(record)
        except DBAPIError as e:
            if isinstance(e, OperationalError | InterfaceError):
                raise  # the database went away: nothing else would import either
            # The database refused this row for good (a value it cannot hold): the others go on.
            detail = str(getattr(e, "orig", e)).strip().splitlines()
            result.errors.append((line, f"rejected by the database: {detail[0] if detail else e}"))
            continue
        known.add(external)
        result.imported.append(record["run"]["run_id"])
    result.errors.sort()
    return result
