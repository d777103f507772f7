"""Effective settings: defaults < user config < project .ecotrain.toml < env vars < CLI options.

Every setting remembers where its value came from, so ``ecotrain config show`` can say it.
Kept to the stdlib (tomllib): this module is on the run path.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ecotrain.errors import UserError

APP_NAME = "ecotrain"
T = TypeVar("T")
PROJECT_FILE = ".ecotrain.toml"


@dataclass(frozen=True)
class Key:
    """One setting: its TOML name, env var, type and default."""

    name: str
    env: str
    type: type
    default: Any
    help: str


KEYS: dict[str, Key] = {
    k.name: k
    for k in [
        Key("project", "ECOTRAIN_PROJECT", str, "default", "project the run belongs to"),
        Key("region", "ECOTRAIN_REGION", str, None, "grid region: ISO-3 (FRA) or USA/CA, CAN/QC"),
        Key("pue", "ECOTRAIN_PUE", float, None, "power usage effectiveness of the site"),
        Key("intensity", "ECOTRAIN_INTENSITY", float, None, "override grid intensity, g/kWh"),
        Key("cost_method", "ECOTRAIN_COST_METHOD", str, "electricity", "electricity | gpu_hour"),
        Key("price_per_kwh", "ECOTRAIN_PRICE_PER_KWH", float, None, "electricity price, USD/kWh"),
        Key(
            "price_per_gpu_hour",
            "ECOTRAIN_PRICE_PER_GPU_HOUR",
            float,
            None,
            "cloud price, USD per GPU-hour",
        ),
        Key("prices_file", "ECOTRAIN_PRICES_FILE", str, None, "TOML price table over the built-in"),
        Key("database.url", "ECOTRAIN_DB", str, None, "SQLite path or database URL"),
        Key("sample_interval_s", "ECOTRAIN_SAMPLE_INTERVAL_S", float, 1.0, "seconds per sample"),
        Key("heartbeat_s", "ECOTRAIN_HEARTBEAT_S", float, 30.0, "seconds between heartbeats"),
        Key("user", "ECOTRAIN_USER", str, None, "user name recorded (default: login name)"),
        Key(
            "co2_basis",
            "ECOTRAIN_CO2_BASIS",
            str,
            "annual",
            "headline CO2e: annual | time-resolved (where a grid series covers the run)",
        ),
        Key("embodied", "ECOTRAIN_EMBODIED", str, "off", "embodied emissions beside: off | on"),
        Key(
            "embodied_kg_per_gpu_hour",
            "ECOTRAIN_EMBODIED_KG_PER_GPU_HOUR",
            float,
            None,
            "embodied kg CO2e per GPU-hour (default: BLOOM's amortisation, 0.0103)",
        ),
        Key(
            "predict_warmup_s",
            "ECOTRAIN_PREDICT_WARMUP_S",
            float,
            60.0,
            "seconds of run before totals at completion are predicted",
        ),
        Key(
            "log_every_s",
            "ECOTRAIN_LOG_EVERY_S",
            float,
            10.0,
            "seconds between per-step figures sent to MLflow / W&B",
        ),
    ]
}


@dataclass
class Settings:
    """Resolved settings with the origin of each value."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    # Config problems skipped under `ecotrain run` (see load_settings_for_run): kept as notes.
    warnings: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Any:
        return self.values.get(name)

    def get(self, name: str, default: Any = None) -> Any:
        """The value of ``name``, or ``default`` when unset."""
        value = self.values.get(name)
        return default if value is None else value

    def flat(self) -> dict[str, Any]:
        """Plain dict of the values (for accounting.site_from_settings)."""
        return dict(self.values)


def user_config_path() -> Path:
    """The user's config file (ECOTRAIN_CONFIG overrides the platform default)."""
    if os.environ.get("ECOTRAIN_CONFIG"):
        return Path(os.environ["ECOTRAIN_CONFIG"])
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME)) / "config.toml"


def user_data_dir() -> Path:
    """Where the default SQLite store and the spool live (ECOTRAIN_DATA_DIR overrides)."""
    if os.environ.get("ECOTRAIN_DATA_DIR"):
        path = Path(os.environ["ECOTRAIN_DATA_DIR"])
    else:
        from platformdirs import user_data_dir as _dir

        path = Path(_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def find_project_file(start: Path) -> Path | None:
    """The nearest .ecotrain.toml in ``start`` or a parent directory."""
    for directory in [start, *start.parents]:
        candidate = directory / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _convert(key: Key, value: Any, origin: str) -> Any:
    if value is None or value == "":
        return None
    try:
        if key.type is float and isinstance(value, bool):
            raise ValueError
        return key.type(value)
    except (TypeError, ValueError):
        raise UserError(
            f"{origin}: {key.name} must be a {key.type.__name__}, got {value!r}"
        ) from None


def read_toml(path: Path) -> dict[str, Any]:
    """Read a config file; malformed TOML or unknown keys are a one-line UserError."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"malformed TOML in {path}: {e}") from None
    except UnicodeDecodeError as e:
        raise UserError(
            f"{path} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}): "
            "save it as UTF-8"
        ) from None
    except OSError as e:
        raise UserError(f"cannot read config {path}: {e.strerror}") from None
    flat = _flatten(data)
    # Sections that belong to other features (budgets, sites) are allowed through untouched.
    unknown = [k for k in flat if k not in KEYS and not k.startswith(("budget.", "site."))]
    if unknown:
        known = ", ".join(sorted(KEYS))
        raise UserError(f"{path}: unknown setting {unknown[0]!r} (known: {known})")
    return flat


def load_settings(
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    on_error: Callable[[str], None] | None = None,
    files: bool = True,
    environment: bool = True,
) -> Settings:
    """Resolve every setting from its layers; the last layer that sets a value wins.

    A config file or environment value that cannot be used raises a one-line UserError; with
    ``on_error`` it is passed there instead and skipped (the file, or the one value), so a
    broken config cannot stop what must go on (`ecotrain run`). ``files=False`` reads no
    config file, ``environment=False`` no ECOTRAIN_* variable.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    settings = Settings()
    for key in KEYS.values():
        settings.values[key.name] = key.default
        settings.origins[key.name] = "default"

    def attempt(fn: Callable[[], Any]) -> Any:
        if on_error is None:
            return fn()
        try:
            return fn()
        except UserError as e:
            on_error(str(e))
            settings.warnings.append(str(e))
            return None

    layers: list[tuple[str, Mapping[str, Any]]] = []
    if files:
        for path in (user_config_path(), find_project_file(cwd)):
            if path is not None and path.is_file():
                layer = attempt(lambda path=path: read_toml(path))
                if layer is not None:
                    layers.append((str(path), layer))
    if environment:
        layers.append(("env", {k.name: env[k.env] for k in KEYS.values() if env.get(k.env)}))
    layers.append(("command line", {k: v for k, v in (cli or {}).items() if v is not None}))

    for origin, layer in layers:
        for name, value in layer.items():
            if name not in KEYS:
                settings.values[name] = value
                settings.origins[name] = origin
                continue
            key = KEYS[name]
            where = f"${key.env}" if origin == "env" else origin
            if origin == "command line":
                converted = _convert(key, value, where)
            else:
                converted = attempt(
                    lambda key=key, value=value, where=where: _convert(key, value, where)
                )
            if converted is not None:
                settings.values[name] = converted
                settings.origins[name] = where
    return settings


def load_settings_for_run(
    cli: Mapping[str, Any], validate: Callable[[Settings], T], warn: Callable[[str], None]
) -> tuple[Settings, T]:
    """Settings for `ecotrain run`, where a config error must never keep the training from
    starting: unreadable files and bad values are warned about and skipped; if the settings
    still do not validate (``validate``, e.g. an unknown region in a config file), the run
    uses the defaults and its command line, with a warning. Only a mistake on the command
    line itself (``--region XYZ``) is an error. Returns (settings, validate(settings))."""
    settings = load_settings(cli=cli, on_error=warn)
    try:
        return settings, validate(settings)
    except (UserError, ValueError) as e:
        problem = e
    # Without the config files, then without the environment too. The database stays the
    # one configured (it is not what failed): the record must go where the user expects it.
    keep = {"database.url": settings["database.url"], **{k: v for k, v in cli.items() if v}}
    for environment, what in ((True, "the environment"), (False, None)):
        fallback = load_settings(cli=keep, files=False, environment=environment, on_error=warn)
        try:
            result = validate(fallback)
        except (UserError, ValueError):
            if environment:
                continue
            raise  # defaults and the command line alone fail: the command line is wrong
        sources = (
            f"the defaults, {what} and the command line"
            if what
            else ("the defaults and the command line")
        )
        message = f"{problem}; this run uses {sources}"
        warn(message)
        fallback.warnings = [*settings.warnings, message]
        return fallback, result
    raise AssertionError("unreachable")
