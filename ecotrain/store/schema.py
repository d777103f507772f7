"""The one schema, in SQLAlchemy Core: the same tables on SQLite and PostgreSQL.

Changing a table means adding a step to ``ecotrain.store.migrations.MIGRATIONS`` and
bumping ``SCHEMA_VERSION``; an old database is brought up to date by ``ecotrain db upgrade``
(and automatically when ecotrain opens it for writing).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

SCHEMA_VERSION = 6

metadata = MetaData()

meta = Table(
    "ecotrain_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    # identity and context
    Column("project", String(200), nullable=False, default="default"),
    Column("user", String(200)),
    Column("host", String(255)),
    Column("pid", Integer),  # the wrapper's pid: with host, tells a live run from a lost one
    Column("job_id", String(200)),  # SLURM_JOB_ID, TORCHELASTIC_RUN_ID or --job
    Column("rank", Integer),
    Column("local_rank", Integer),
    Column("node", String(255)),
    Column("command", JSON),  # argv, redacted
    Column("cwd", Text),
    Column("git_commit", String(64)),
    Column("git_dirty", Boolean),
    Column("tags", JSON),  # {"lr": "3e-4"}
    Column("source", String(32), nullable=False, default="run"),  # run | api | import:codecarbon
    Column("external_id", String(200)),  # e.g. codecarbon's run_id for idempotent import
    # time (naive UTC datetimes)
    Column("started_at", DateTime, nullable=False),
    Column("ended_at", DateTime),
    Column("heartbeat_at", DateTime),
    Column("duration_s", Float),
    # outcome
    Column(
        "status", String(20), nullable=False
    ),  # running|finished|failed|killed|lost|failed_to_start|imported
    Column("exit_code", Integer),
    Column("end_reason", Text),
    # energy, by component, each with how it was obtained
    Column("gpu_energy_j", Float),
    Column("gpu_method", String(16)),
    Column("cpu_energy_j", Float),
    Column("cpu_method", String(16)),
    Column("ram_energy_j", Float),
    Column("ram_method", String(16)),
    Column("it_energy_kwh", Float),
    # accounting inputs and results (an old run keeps the numbers it was accounted with)
    Column("pue", Float),
    Column("pue_source", Text),
    Column("facility_energy_kwh", Float),
    Column("region", String(64)),
    Column("intensity_g_per_kwh", Float),
    Column("intensity_source", Text),
    Column("intensity_boundary", String(16)),  # lifecycle | direct; NULL: not stated (user)
    Column("co2_kg", Float),
    Column("cost_usd", Float),
    Column("cost_method", String(16)),  # electricity | gpu_hour
    Column("price", Float),  # $/kWh or $/GPU-hour, per cost_method
    Column("price_source", Text),
    # hardware
    Column("gpu_model", String(200)),
    Column("gpu_count", Integer),
    Column("gpu_hours", Float),
    Column("gpu_mean_power_w", Float),
    Column("gpu_max_power_w", Float),
    Column("gpu_util_pct", Float),
    Column("gpu_devices", JSON),  # [{"index":0,"uuid":"GPU-..","name":..,"method":..}]
    Column("cpu_model", String(200)),
    Column("cpu_count", Integer),
    Column("cpu_seconds", Float),
    Column("ram_gb_mean", Float),
    # provenance and faults
    Column("ecotrain_version", String(32)),
    Column("data_version", Text),
    Column("notes", JSON),  # ["nvml: GPU 1 vanished at 123 s; kept its last total", ...]
    # while running: progress reported from inside the run, and the forecast at completion
    Column("progress", JSON),  # {"kind": "step", "step": 120, "total": 1000, "fraction": 0.12}
    Column("prediction", JSON),  # {"method", "duration_s", "remaining_s", "co2_kg", ...}
    # time-resolved CO2e (v3): facility energy x the grid series weighted by the power
    # timeline, beside the annual figure (co2_kg), never replacing it (ecotrain.grid_series)
    Column("co2_series_kg", Float),
    Column("intensity_series_g_per_kwh", Float),  # energy-weighted mean over the run
    Column("co2_series_method", Text),
    Index("ix_runs_started_at", "started_at"),
    Index("ix_runs_project_started", "project", "started_at"),
    Index("ix_runs_user", "user"),
    Index("ix_runs_status", "status"),
    Index("ix_runs_job", "job_id"),
    Index("ix_runs_external", "source", "external_id"),
)

# A bounded, downsampled power timeline: at most ~2,000 points a run.
samples = Table(
    "samples",
    metadata,
    Column("run_id", String(64), ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("t_s", Float, nullable=False),  # seconds since the run started
    Column("gpu_w", Float),
    Column("cpu_w", Float),
    Column("ram_w", Float),
    Index("ix_samples_run", "run_id", "t_s"),
)

# A checkpoint is its content: checkpoint_id = "sha256:<hex>". Before its hash is known it is
# "pending:<host>:<dev>:<inode>:<size>:<mtime_ns>" and resolved later (see ecotrain.lineage).
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("checkpoint_id", String(200), primary_key=True),
    Column("name", Text),  # a human name: HF repo id, file name
    Column("size_bytes", BigInteger),  # 64-bit: checkpoints of 2 GiB and more (v3)
    Column("hf_repo", String(300)),
    Column("hf_revision", String(100)),
    Column("first_seen_at", DateTime),
    # a footprint stated by a user (`ecotrain checkpoint register`), a model card or the catalogue
    Column("footprint_source", String(32)),  # registered | model_card | catalogue
    Column("footprint_citation", Text),
    Column("fp_gpu_model", String(200)),
    Column("fp_gpu_hours", Float),
    Column("fp_energy_kwh", Float),
    Column("fp_co2_kg", Float),
    Column("fp_cost_usd", Float),
    Column("fp_pue", Float),
    Column("fp_intensity_g_per_kwh", Float),
    Column("training_type", String(32)),
    Index("ix_checkpoints_hf", "hf_repo"),
)

checkpoint_paths = Table(
    "checkpoint_paths",
    metadata,
    Column("checkpoint_id", String(200), nullable=False),
    Column("host", String(255), nullable=False),
    Column("path", Text, nullable=False),
    Column("seen_at", DateTime),
    Index("ix_checkpoint_paths_ckpt", "checkpoint_id"),
)

# The lineage DAG: a run consumed and produced checkpoints.
run_checkpoints = Table(
    "run_checkpoints",
    metadata,
    Column("run_id", String(64), nullable=False),
    Column("checkpoint_id", String(200), nullable=False),
    Column("role", String(16), nullable=False),  # consumed | produced
    Column("path", Text),
    Column("detected_by", String(32)),  # explicit | api | audit | fd | mmap | mtime
    # produced: seconds after the run's start the weights were last written, and the share
    # of the run's energy spent by then (its footprint is that share, not the whole run)
    Column("written_s", Float),
    Column("energy_share", Float),
    Index("ix_run_checkpoints_run", "run_id"),
    Index("ix_run_checkpoints_ckpt", "checkpoint_id", "role"),
)


# Grid intensity series (v3): one row per (zone, signal) with its provenance, and its points.
# signal: "average" (location-based) or "marginal"; region: the ecotrain region whose runs
# it applies to (e.g. zone "FR" -> "FRA"), None when the zone names no region we know.
grid_series = Table(
    "grid_series",
    metadata,
    Column("zone", String(100), primary_key=True),
    Column("signal", String(16), primary_key=True),
    Column("region", String(64)),
    Column("source", Text, nullable=False),
    Column("licence", Text),
    Column("imported_at", DateTime),
    Index("ix_grid_series_region", "region", "signal"),
)

# One value per (zone, signal, period start): re-importing the same hours updates, never
# duplicates. ts is naive UTC, the start of the period the value holds for.
grid_points = Table(
    "grid_points",
    metadata,
    Column("zone", String(100), primary_key=True),
    Column("signal", String(16), primary_key=True),
    Column("ts", DateTime, primary_key=True),
    Column("g_per_kwh", Float, nullable=False),
)
