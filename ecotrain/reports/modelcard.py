"""The Hugging Face model-card ``co2_eq_emissions`` front-matter block."""

from __future__ import annotations

from ecotrain.reports.model import Report, clean, gpu_list


def region_name(region: str | None) -> str:
    """A region code as a reader names it: "FRA" -> "France", "USA/CA" -> "California, United
    States", "CAN/QC" -> "Quebec, Canada"; anything else (a cloud region name) as given."""
    if not region:
        return "unknown"
    try:
        from ecotrain import grid

        countries = grid._countries()
        code, _, sub = str(region).partition("/")

        def country(iso3: str) -> str:
            return countries.get(iso3, {}).get("country_name") or iso3

        if not sub:
            return country(code) if code in countries else str(region)
        if code == "USA":
            for name, entry in grid._usa_states().items():
                if entry.get("regionCode", "").upper() == sub.upper():
                    return f"{name.title()}, {country('USA')}"
        if code == "CAN" and sub.upper() in grid.CANADA_PROVINCES:
            return f"{grid.CANADA_PROVINCES[sub.upper()].title()}, {country('CAN')}"
        return f"{sub}, {country(code)}"
    except (OSError, ValueError, KeyError, AttributeError):
        return str(region)


def card_data(report: Report) -> dict:
    """The ``co2_eq_emissions`` mapping (emissions in grams, as the HF docs specify)."""
    regions = [i["region"] for i in sorted(report.intensity, key=lambda i: -i["runs"])]
    names = list(dict.fromkeys(region_name(r) for r in regions if r))
    gpus = [(h["gpu_model"], h["gpu_count"]) for h in report.hardware]
    hardware = gpu_list(gpus)
    if hardware == "CPU only":
        cpus = sorted({clean(h["cpu_model"]) for h in report.hardware if h["cpu_model"]})
        hardware = ", ".join(cpus) or "unknown"
    return {
        "co2_eq_emissions": {
            "emissions": float(f"{report.totals['co2_kg'] * 1000:.6g}"),
            "source": f"ecotrain {report.ecotrain_version} ({report.n_runs} recorded runs)",
            "training_type": "fine-tuning" if report.consumed_checkpoints else "pre-training",
            "geographical_location": clean("; ".join(names)) or "unknown",
            "hardware_used": clean(hardware),
        }
    }


def render(report: Report) -> str:
    """The block, ready to paste into a model card's YAML front matter."""
    import yaml

    return (
        "---\n" + yaml.safe_dump(card_data(report), sort_keys=False, allow_unicode=True) + "---\n"
    )
