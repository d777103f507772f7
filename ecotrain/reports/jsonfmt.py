"""JSON: the report model as data, with a versioned schema (ecotrain/data/report.schema.json)."""

from __future__ import annotations

import json
from pathlib import Path

from ecotrain.reports.model import Report

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "data" / "report.schema.json"


def render(report: Report) -> str:
    """The report as JSON."""
    return json.dumps(report.to_dict(), indent=2, default=str) + "\n"


def schema() -> dict:
    """The JSON schema the output follows."""
    return json.loads(SCHEMA_FILE.read_text())
