"""Grid carbon intensity from the shipped codecarbon data files, against the files and by hand."""

from __future__ import annotations

import json
import sys

import pytest

from ecotrain import grid
from ecotrain.errors import UserError
from ecotrain.grid import (
    LBS_PER_MWH_TO_G_PER_KWH,
    Intensity,
    UnknownRegion,
    data_dir,
    data_version,
    guess_region,
    list_regions,
    resolve_intensity,
    world_average,
)


def raw(relative: str) -> dict:
    return json.loads((data_dir() / "private_infra" / relative).read_text())


def test_country_intensity_is_the_files_value() -> None:
    fra = resolve_intensity("FRA")
    entry = raw("global_energy_mix.json")["FRA"]
    assert fra.g_per_kwh == entry["carbon_intensity"]
    assert fra.g_per_kwh == pytest.approx(56, abs=5)  # nuclear-heavy grid
    assert fra.region == "FRA" and fra.year == entry["year"]
    assert "global_energy_mix" in fra.source
    assert fra.data_version == data_version() and data_version().startswith("codecarbon 3.3.2")
    assert fra.boundary == "lifecycle" and "lifecycle" in fra.source
    # Any case, or the country's name as the file spells it.
    assert resolve_intensity("fra") == fra
    assert resolve_intensity(" France ") == fra
    assert resolve_intensity("USA").region == "USA"
    assert resolve_intensity("United States").region == "USA"


def test_us_state_converts_lbs_per_mwh() -> None:
    ca = resolve_intensity("USA/CA")
    lbs = raw("2023/usa_emissions.json")["california"]["emissions"]
    # 1 lb/MWh = 453.59237 g / 1000 kWh = 0.45359237 g/kWh
    assert LBS_PER_MWH_TO_G_PER_KWH == 0.45359237
    assert ca.g_per_kwh == pytest.approx(lbs * 0.45359237, rel=1e-12)
    assert ca.g_per_kwh == pytest.approx(394.769 * 0.453592, rel=1e-5)  # the 2023 figure
    assert ca.region == "USA/CA" and "eGRID" in ca.source and ca.year == 2023
    # eGRID output rates count combustion at the plant only: a direct figure, said so.
    assert ca.boundary == "direct" and "direct" in ca.source
    for spelling in ("USA-CA", "usa/ca", "US/California", "US-CA", "United States/California"):
        assert resolve_intensity(spelling) == ca, spelling


def test_canadian_province_from_mix_and_factors() -> None:
    qc = resolve_intensity("CAN/QC")
    mix = raw("2023/canada_energy_mix.json")["quebec"]
    assert mix["hydro"] == 92.1 and mix["wind"] == 6.7  # the shares the hand sum uses
    # Quebec 2023 shares (%) x lifecycle g/kWh: gas 0.2 x 743, petroleum 0.3 x 816,
    # biomass 0.7 x 230, solar 0.01 x 48, wind 6.7 x 26, hydro 92.1 x 26; shares sum 100.01.
    by_hand = (0.2 * 743 + 0.3 * 816 + 0.7 * 230 + 0.01 * 48 + 6.7 * 26 + 92.1 * 26) / 100.01
    assert by_hand == pytest.approx(31.23, abs=0.01)
    assert qc.g_per_kwh == pytest.approx(by_hand, rel=1e-12)
    assert qc.region == "CAN/QC" and qc.year == 2023
    # Lifecycle factors, like the national (Ember) figure; the fossil share alone (direct)
    # would be ~4 g/kWh: the boundary is what separates the two, so it is stored.
    assert qc.boundary == "lifecycle" and "lifecycle" in qc.source
    assert resolve_intensity("Canada/Quebec") == qc
    assert resolve_intensity("can-qc") == qc
    # Ontario's nuclear share makes it several times Quebec's, well under Alberta's gas grid.
    assert (
        qc.g_per_kwh < resolve_intensity("CAN/ON").g_per_kwh < resolve_intensity("CAN/AB").g_per_kwh
    )


def test_world_average_is_computed_from_the_country_file() -> None:
    countries = raw("global_energy_mix.json")
    total = sum(v["total_TWh"] for v in countries.values())
    weighted = sum(v["carbon_intensity"] * v["total_TWh"] for v in countries.values()) / total
    world = world_average()
    assert world.g_per_kwh == pytest.approx(weighted)
    assert world.g_per_kwh == pytest.approx(481, abs=15)
    assert world.region == "WORLD" and "no region is configured" in world.source
    # The rows are each country's latest year (2009 to 2023): no single year is claimed.
    years = sorted({v["year"] for v in countries.values()})
    assert (years[0], years[-1]) == (2009, 2023)
    assert world.year is None and "data years 2009-2023" in world.source
    assert world.boundary == "lifecycle"
    assert resolve_intensity(None) == world == resolve_intensity("")
    given = resolve_intensity("world")  # asked for by name: the same figure, not a fallback
    assert given.g_per_kwh == world.g_per_kwh and given.boundary == world.boundary
    assert "region WORLD as given" in given.source and "no region" not in given.source


def test_unknown_region_message_is_one_line_with_suggestions() -> None:
    with pytest.raises(UnknownRegion) as e:
        resolve_intensity("FRX")
    message = str(e.value)
    assert "\n" not in message
    assert "'FRX'" in message and "did you mean" in message and "FRA" in message
    assert "--region" in message and "ECOTRAIN_REGION" in message and ".ecotrain.toml" in message
    assert isinstance(e.value, ValueError) and isinstance(e.value, UserError)
    with pytest.raises(UnknownRegion, match="USA/CA"):
        resolve_intensity("USA/Califrnia")  # close match on the state's name
    with pytest.raises(UnknownRegion, match="QC"):
        resolve_intensity("CAN/XX")
    with pytest.raises(UnknownRegion, match="ambiguous"):
        resolve_intensity("CA")  # California or Canada: refuse to guess
    with pytest.raises(UnknownRegion, match="no sub-national data for FRA"):
        resolve_intensity("FRA/IDF")
    with pytest.raises(UnknownRegion, match="--region"):
        resolve_intensity("Atlantis")


def test_custom_intensity_is_labelled() -> None:
    custom = Intensity.custom(20)
    assert custom.g_per_kwh == 20.0 and custom.source == "user-supplied"
    assert custom.boundary is None  # ecotrain cannot know a user figure's boundary
    assert Intensity.custom(20, region="USA/CA").region == "USA/CA"
    assert Intensity.custom(35, "PPA 2025").source == "PPA 2025"
    with pytest.raises(ValueError):
        Intensity.custom(-1)
    with pytest.raises(ValueError):
        Intensity.custom(float("nan"))


def test_cloud_region_from_the_cloud_table() -> None:
    paris = resolve_intensity("gcp:europe-west9")
    assert paris.region == "gcp:europe-west9" and paris.g_per_kwh == 34.0  # impact.csv row
    assert "cloud.google.com/sustainability/region-carbon" in paris.source
    assert "Paris" in paris.source and paris.boundary == "direct"
    assert resolve_intensity("GCP/us-central1").g_per_kwh == 430.0
    assert resolve_intensity("google:northamerica-northeast1").g_per_kwh == 2.0
    with pytest.raises(UnknownRegion, match="gcp:europe-west"):
        resolve_intensity("gcp:europe-west99")  # close matches offered
    with pytest.raises(UnknownRegion, match="Google Cloud regions only"):
        resolve_intensity("aws:us-east-1")


def test_data_files_ship_with_ecotrain_and_need_no_codecarbon() -> None:
    import subprocess

    from ecotrain.sensors.cpu_model import cpu_power_csv

    root = data_dir()
    assert root.parts[-2:] == ("data", "codecarbon") and (root / "LICENSE").is_file()
    assert "MIT License" in (root / "LICENSE").read_text()
    for relative in (
        "private_infra/global_energy_mix.json",
        "private_infra/2023/usa_emissions.json",
        "private_infra/2023/canada_energy_mix.json",
        "private_infra/carbon_intensity_per_source.json",
        "cloud/impact.csv",
        "hardware/cpu_power.csv",
    ):
        assert (root / relative).is_file(), relative
        assert relative in (root / "README.md").read_text()  # attribution names each file
    assert cpu_power_csv() == root / "hardware" / "cpu_power.csv"
    # With codecarbon made unimportable, every lookup still works.
    code = (
        "import sys; sys.modules['codecarbon'] = None\n"
        "from ecotrain.grid import resolve_intensity\n"
        "from ecotrain.sensors.cpu_model import load_cpu_table\n"
        "print(resolve_intensity('FRA').g_per_kwh, resolve_intensity('gcp:europe-west9')"
        ".g_per_kwh, len(load_cpu_table()) > 4000)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["56.039", "34.0", "True"], out.stderr


def test_list_regions() -> None:
    regions = list_regions()
    assert {"FRA", "USA", "USA/CA", "USA/TX", "CAN/QC", "CAN/ON"} <= set(regions)
    assert "gcp:europe-west9" in regions
    assert len(regions) == len(set(regions))
    for region in ("FRA", "USA/NY", "CAN/BC"):
        assert resolve_intensity(region).region == region


def test_guess_region_from_the_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Paris")
    assert guess_region() == "FRA"
    monkeypatch.setenv("TZ", ":America/Los_Angeles")
    assert guess_region() == "USA/CA"
    monkeypatch.setenv("TZ", "/usr/share/zoneinfo/America/Montreal")
    assert guess_region() == "CAN/QC"
    monkeypatch.setenv("TZ", "America/Chicago")  # a zone spanning many states: the nation
    assert guess_region() == "USA"
    monkeypatch.setenv("TZ", "Etc/UTC")
    assert guess_region() is None
    monkeypatch.setenv("TZ", "Pacific/Nowhere")
    assert guess_region() is None
    for region in set(grid.TIMEZONE_REGIONS.values()):  # every guess resolves
        assert resolve_intensity(region).region == region


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX time zone files")
def test_guess_region_reads_timezone_files(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("TZ", raising=False)
    timezone = tmp_path / "timezone"
    timezone.write_text("Asia/Tokyo\n")
    monkeypatch.setattr(grid, "TIMEZONE_FILE", str(timezone))
    assert guess_region() == "JPN"
    # No /etc/timezone: the /etc/localtime link's own target names the zone.
    monkeypatch.setattr(grid, "TIMEZONE_FILE", str(tmp_path / "missing"))
    link = tmp_path / "localtime"
    link.symlink_to("/usr/share/zoneinfo/Europe/Berlin")
    monkeypatch.setattr(grid, "LOCALTIME", str(link))
    assert guess_region() == "DEU"
    monkeypatch.setattr(grid, "LOCALTIME", str(tmp_path / "missing"))
    assert guess_region() is None
