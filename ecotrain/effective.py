"""`ecotrain config show`'s view: every setting's value in force, unset ones filled in.

A setting left unset still has a value in force — PUE 1.56, the region guessed from the
host's time zone or the world average, the price table's price, the default database — and
``config show`` must agree with ``doctor`` and the records. The values come from the same
code the run uses (:func:`ecotrain.accounting.site_from_settings`), never a second copy.
"""

from __future__ import annotations

from typing import Any

from ecotrain.config import Settings


def effective_settings(settings: Settings) -> Settings:
    """A copy of ``settings`` where each unset value is the one in force, from "default (...)"."""
    from ecotrain.accounting import site_from_settings
    from ecotrain.context import current_user
    from ecotrain.store.engine import resolve_url

    values: dict[str, Any] = dict(settings.values)
    origins: dict[str, str] = dict(settings.origins)
    site = site_from_settings(settings.flat())

    def fill(name: str, value: Any, why: str) -> None:
        if values.get(name) is None and value is not None:
            values[name] = value
            origins[name] = f"default ({why})" if why else "default"

    fill("pue", site.pue, site.pue_source.removeprefix("default: "))
    region_why = "world average: no region set or guessed"
    if "guessed from the host's time zone" in site.intensity.source:
        region_why = "guessed from the host's time zone"
    fill("region", site.intensity.region, region_why)
    fill("intensity", round(site.intensity.g_per_kwh, 4), site.intensity.source)
    price_key = "price_per_kwh" if site.cost_method == "electricity" else "price_per_gpu_hour"
    fill(price_key, site.price, site.price_source)
    fill("database.url", resolve_url(settings["database.url"]), "the user data dir")
    fill("user", current_user(settings["user"]), "login name")
    return Settings(values=values, origins=origins)
