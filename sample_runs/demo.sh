#!/usr/bin/env bash
# The ecotrain story in five small CPU runs, each wrapped by `ecotrain run`:
#   pretrain -> fine-tune (legal) -> fine-tune (finance) -> adapter (medical) -> merge
# The pretraining belongs to project `foundation` (the lab's shared base model); the four
# runs that reuse it belong to project `demo`. Then the savings table (what reusing the base
# avoided project `demo`), a Markdown report of `demo`, and how to open the dashboard.
#
# Usage: bash sample_runs/demo.sh [--quick] [--dir DIR] [--use-my-store] [--published-base]
#   --quick          fewer training steps (about 5x faster; what the tests use)
#   --published-base the base is not pretrained under ecotrain but stands in for a published
#                    model: it is registered with BERT-base's published pre-training
#                    footprint (Strubell et al. 2019: 64 V100 x 79 h, 1,500 kWh, 650 kg
#                    CO2e), labelled as a stand-in. What the bundled example database uses,
#                    so its first screen shows what reuse saves at a realistic scale.
#   --dir DIR        where checkpoints, the demo database and the report go (default:
#                    <ecotrain data dir>/demo, e.g. ~/.local/share/ecotrain/demo, else a
#                    temporary directory; also $ECOTRAIN_DEMO_DIR). Never the repository.
#   --use-my-store   record into your own ecotrain database ($ECOTRAIN_DB / config) instead
#                    of DIR/ecotrain.db. Without it the demo never touches your store, and
#                    it starts DIR/ecotrain.db afresh on every run.
# Environment: ECOTRAIN (the ecotrain command, default `ecotrain` on PATH), PYTHON (the
# interpreter for the training scripts; default: the one ecotrain is installed in).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEMO_DIR=${ECOTRAIN_DEMO_DIR:-}
QUICK=0
OWN_STORE=0
PUBLISHED=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --dir) DEMO_DIR=$2; shift ;;
    --use-my-store) OWN_STORE=1 ;;
    --published-base) PUBLISHED=1 ;;
    -h|--help) sed -n '2,/^set -e/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

ECOTRAIN=${ECOTRAIN:-ecotrain}
if ! command -v "$ECOTRAIN" >/dev/null 2>&1; then
  echo "demo.sh: '$ECOTRAIN' not found: pip install \".[dashboard]\" (from the repository root) first" >&2
  exit 2
fi
# The training scripts need NumPy, which ecotrain's own environment has: use its interpreter
# (read from the console script's #! line) unless PYTHON says otherwise.
if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  script=$(command -v "$ECOTRAIN")
  interp=$(head -n1 "$script" 2>/dev/null | sed -n 's/^#!\([^ ]*\).*/\1/p')
  case "$interp" in
    */sh) # pip's form for long paths: #!/bin/sh, then '''exec' "/path/to/python" "$0" "$@"
      interp=$(sed -n "2s/^'''exec' \"\([^\"]*\)\".*/\1/p" "$script" 2>/dev/null) ;;
  esac
  case "$interp" in
    */python*) if [ -x "$interp" ]; then PYTHON=$interp; fi ;;
  esac
fi

if [ -z "$DEMO_DIR" ]; then
  # ecotrain's own data dir (ECOTRAIN_DATA_DIR or the platform's), not the current directory
  DEMO_DIR=$("$PYTHON" -c 'from ecotrain.config import user_data_dir; print(user_data_dir() / "demo")' \
    2>/dev/null || true)
  if [ -z "$DEMO_DIR" ] || ! mkdir -p "$DEMO_DIR" 2>/dev/null; then
    DEMO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ecotrain-demo.XXXXXX")
  fi
fi
mkdir -p "$DEMO_DIR"
DEMO_DIR=$(cd "$DEMO_DIR" && pwd)
printf 'ecotrain demo: checkpoints, database and report go to %s\n' "$DEMO_DIR"
if [ "$OWN_STORE" = 0 ]; then
  export ECOTRAIN_DB="$DEMO_DIR/ecotrain.db"
  rm -f "$ECOTRAIN_DB" "$ECOTRAIN_DB-wal" "$ECOTRAIN_DB-shm"
fi
# Short runs: sample four times a second so the dashboard's power timeline has some points.
export ECOTRAIN_SAMPLE_INTERVAL_S=${ECOTRAIN_SAMPLE_INTERVAL_S:-0.25}

if [ "$QUICK" = 1 ]; then
  PRE=1500 FT=400
else
  PRE=6000 FT=2000
fi
cd "$DEMO_DIR"
rm -rf ckpt
EXT=$("$PYTHON" "$HERE/tinynet.py" --ext)
BASE=ckpt/base$EXT LEGAL=ckpt/legal$EXT FINANCE=ckpt/finance$EXT
ADAPTER=ckpt/medical-adapter$EXT MERGED=ckpt/legal-finance-merged$EXT

step() {
  printf '\n== %s\n' "$1"
  local project=$2
  shift 2
  "$ECOTRAIN" run --project "$project" --region FRA "$@"
}

# The base model is trained once by a "foundation" team; the fine-tuning project reuses it.
# Reuse inside the project that paid for a checkpoint avoids nothing (see ecotrain.savings),
# so the base belongs to its own project, as a lab's shared model does.
if [ "$PUBLISHED" = 1 ]; then
  # The lab starts from a published base model. No network here: the tiny base is trained
  # outside ecotrain and registered, honestly labelled, with BERT-base's published footprint.
  printf '\n== 1/5 the published base model (a stand-in for BERT-base, not recorded here)\n'
  "$PYTHON" "$HERE/pretrain.py" --out "$BASE" --steps "$PRE"
  "$ECOTRAIN" checkpoint register "$BASE" --gpu V100 --gpu-hours 5056 \
    --energy-kwh 1500 --co2-kg 650 --region USA --pue 1.58 \
    --source "stand-in for BERT-base: its published pre-training footprint (Strubell, Ganesh, McCallum 2019, Table 3: 64 V100 x 79 h); the demo's base itself is a tiny CPU model"
else
  step "1/5 pretrain the shared base model (project foundation)" foundation \
    --tag stage=pretrain --produces "$BASE" \
    -- "$PYTHON" "$HERE/pretrain.py" --out "$BASE" --steps "$PRE"
fi
step "2/5 fine-tune the pretrained model on 'legal'" demo \
  --tag stage=finetune --uses "$BASE" --produces "$LEGAL" \
  -- "$PYTHON" "$HERE/finetune.py" --init "$BASE" --task legal --out "$LEGAL" --steps "$FT"
step "3/5 fine-tune the pretrained model on 'finance'" demo \
  --tag stage=finetune --uses "$BASE" --produces "$FINANCE" \
  -- "$PYTHON" "$HERE/finetune.py" --init "$BASE" --task finance --out "$FINANCE" --steps "$FT"
step "4/5 train a rank-4 adapter on 'medical' (the base stays frozen)" demo \
  --tag stage=adapter --uses "$BASE" --produces "$ADAPTER" \
  -- "$PYTHON" "$HERE/finetune_adapter.py" --base "$BASE" --task medical --out "$ADAPTER" \
  --steps "$FT"
step "5/5 merge the two fine-tunes by weight averaging" demo \
  --tag stage=merge --uses "$LEGAL" --uses "$FINANCE" --produces "$MERGED" \
  -- "$PYTHON" "$HERE/merge.py" "$LEGAL" "$FINANCE" -o "$MERGED"

if "$ECOTRAIN" savings --help >/dev/null 2>&1; then
  printf '\n== what reusing checkpoints saved (project demo)\n'
  "$ECOTRAIN" savings --project demo
else
  printf '\n== the runs recorded (this ecotrain has no `savings` command yet)\n'
  "$ECOTRAIN" runs --project demo
fi

REPORT="$DEMO_DIR/ecotrain-report.md"
if "$ECOTRAIN" report --help >/dev/null 2>&1; then
  "$ECOTRAIN" report --project demo --format md -o "$REPORT"
  printf '\nReport written to %s\n' "$REPORT"
else
  printf '\n(this ecotrain has no `report` command yet: no report written)\n'
fi

if [ "$OWN_STORE" = 0 ]; then
  printf '\nThe demo runs are in %s. Open the dashboard on them with:\n  %s dashboard --db %s\n' \
    "$ECOTRAIN_DB" "$ECOTRAIN" "$ECOTRAIN_DB"
else
  printf '\nThe demo runs are in your own store. Open the dashboard with:\n  %s dashboard\n' \
    "$ECOTRAIN"
fi
