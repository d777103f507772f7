"""`ecotrain doctor`: what this machine can measure, how, and with which accounting inputs."""

from __future__ import annotations

import os
from typing import Any

from ecotrain.config import Settings


def diagnose(settings: Settings) -> dict[str, Any]:
    """Probe the sensors (as `ecotrain run` would for this process) and resolve the site."""
    from ecotrain.accounting import site_from_settings
    from ecotrain.sensors import discover

    sensors, unavailable = discover(os.getpid(), os.environ, settings)
    found = []
    for sensor in sensors:
        hw = sensor.hardware()
        detail = ", ".join(f"{k}={v}" for k, v in hw.items() if not isinstance(v, list | dict))
        found.append(
            {
                "component": sensor.component,
                "name": sensor.name,
                "method": sensor.method,
                "detail": detail,
            }
        )
        sensor.close()
    site = site_from_settings(settings.flat())
    accounting = {
        "region": f"{site.intensity.region} (from {settings.origins.get('region')})",
        "grid intensity": f"{site.intensity.g_per_kwh:.4g} g/kWh ({site.intensity.source})",
        "PUE": f"{site.pue} ({site.pue_source})",
        "cost method": site.cost_method,
        "price": f"{site.price} ({site.price_source})",
    }
    from ecotrain.store.engine import mask_url, resolve_url

    return {
        "sensors": found,
        "unavailable": unavailable,
        "accounting": accounting,
        "database": mask_url(resolve_url(settings["database.url"])),
    }
