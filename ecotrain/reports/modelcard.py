"""The Hugging Face model-card ``co2_eq_emissions`` front-matter block."""

from __future__ import annotations

from ecotrain.reports.model import Report


def card_data(report: Report) -> dict:
    """The ``co2_eq_emissions`` mapping (emissions in grams, as the HF docs specify)."""
    regions = ", ".join(sorted({str(i["region"]) for i in report.intensity if i["region"]}))
    hardware = ", ".join(
        f"{h['gpu_count']} x {h['gpu_model']}" if h["gpu_model"] else (h["cpu_model"] or "CPU")
        for h in report.hardware
    )
    return {
        "co2_eq_emissions": {
            "emissions": float(f"{report.totals['co2_kg'] * 1000:.6g}"),
            "source": f"ecotrain {report.ecotrain_version} ({report.n_runs} recorded runs)",
            "training_type": "fine-tuning" if report.consumed_checkpoints else "pre-training",
            "geographical_location": regions or "unknown",
            "hardware_used": hardware or "unknown",
        }
    }


def render(report: Report) -> str:
    """The block, ready to paste into a model card's YAML front matter."""
    import yaml

    return (
        "---\n" + yaml.safe_dump(card_data(report), sort_keys=False, allow_unicode=True) + "---\n"
    )
