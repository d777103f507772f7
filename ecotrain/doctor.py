"""`ecotrain doctor`: what this machine can measure, how, and with which accounting inputs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ecotrain.config import Settings

_TRUE = ("1", "true", "yes", "on")


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
        "gpus": gpu_inventory(os.environ),
        "container": container_report(),
        "accounting": accounting,
        "database": mask_url(resolve_url(settings["database.url"])),
    }


def gpu_inventory(env: Mapping[str, str], nvml: Any = None, smi: Any = None) -> list[dict]:
    """Each GPU on the machine (NVIDIA, AMD) with what ecotrain can and cannot read on it.

    A vendor with no driver adds nothing here (`unavailable` already says why);
    ECOTRAIN_NO_GPU and ECOTRAIN_REPLAY skip the probing as they do for runs.
    """
    if env.get("ECOTRAIN_REPLAY") or env.get("ECOTRAIN_NO_GPU", "").lower() in _TRUE:
        return []
    from ecotrain.sensors import SensorError, amd, nvidia

    out: list[dict] = []
    for module, handle in ((nvidia, nvml), (amd, smi)):
        try:
            out.extend(module.inventory(env, handle))
        except SensorError:
            continue
        except Exception as e:  # noqa: BLE001 - doctor reports a broken driver, never dies
            out.append({"vendor": module.__name__.rsplit(".", 1)[-1], "error": str(e)})
    return out


def container_report(root: Path = Path("/"), env: Mapping[str, str] | None = None) -> dict:
    """Whether this runs in a container, and what that changes for the measurements."""
    from ecotrain.sensors.cgroups import cpu_quota, in_container, usable_cpus

    env = os.environ if env is None else env
    why = in_container(root, env)
    quota = cpu_quota(root)
    n, source = usable_cpus(root)
    host = os.cpu_count() or 1
    changes = []
    if n < host:
        changes.append(
            f"CPU model counts utilisation against {n} CPU(s) ({source}), not the host's "
            f"{host}; energy per CPU-second stays TDP / {host} (the TDP is the host socket's)"
        )
        if why:
            changes.append(
                "RAPL is not used: it counts the whole host socket, shared with whatever "
                "else runs on the host; the run's process tree is modelled instead"
            )
    if why:
        changes.append(
            "GPU split by process: NVML lists host PIDs; when none is visible in this "
            "container, a shared GPU is charged whole and the record says so"
        )
    return {
        "in container": why or "no",
        "cpu quota": f"{quota.cpus:g} CPUs ({quota.source})" if quota else "none",
        "usable cpus": f"{n} ({source})",
        "what changes": changes or ["nothing"],
    }
