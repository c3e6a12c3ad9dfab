#!/usr/bin/env bash
# The main job on the embedded default data, from a fresh clone:
#   1. set up (.venv, requirements, system libraries),
#   2. generate the quickstart subset of the synthetic dataset (3 categories x 40 shapes, all formats, 1 view),
#   3. train AIR-Net (300 input points, quickstart width) for a short budget: shows training works,
#   4. reconstruct the held-out shapes with the shipped pretrained AIR-Net (MISE) and evaluate them,
#   5. write experiments/quickstart/report.md (metrics table, loss curve, pictures).
# Usage: bash scripts/quickstart.sh [--device auto|cpu|cuda]   (TRAIN_BUDGET_S=300 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=auto
if [ "${1:-}" = "--device" ]; then DEVICE=${2:?--device needs a value}; fi
TRAIN_BUDGET_S=${TRAIN_BUDGET_S:-300}
MISE_RES=${MISE_RES:-32}
PY=.venv/bin/python
EXP=experiments/quickstart

bash scripts/setup.sh
echo "[quickstart] 1/4 synthetic data -> data/synth"
$PY preprocess.py synth --out data/synth --categories airplane,chair,table --per-category 40 --views 1 -j 2

echo "[quickstart] 2/4 training AIR-Net for ${TRAIN_BUDGET_S} s -> $EXP/train"
$PY train.py -cfg configs/occupancy/quickstart_airnet300.yaml -exp_name train --exp_root "$EXP" --device "$DEVICE" \
  data.root=data/synth/ifnet training.time_budget_s="$TRAIN_BUDGET_S" training.val_every=50

echo "[quickstart] 3/4 reconstructing held-out shapes with pretrained_models/airnet300_synth.pt"
$PY generate.py -ckpt_name pretrained_models/airnet300_synth.pt -exp_name pretrained --exp_root "$EXP" \
  -data_root data/synth/ifnet -split test -method mise -mise_res "$MISE_RES" -mise_steps 2 -device "$DEVICE"
EVAL_DIR="$EXP/pretrained/evaluation_airnet300_synth_@${MISE_RES}x2"

echo "[quickstart] 4/4 evaluating"
$PY evaluate.py -generation_path "$EVAL_DIR/generation" -j 2

$PY scripts/quickstart_report.py --train_exp "$EXP/train" --train_budget_s "$TRAIN_BUDGET_S" \
  --eval_dir "$EVAL_DIR" --out "$EXP/report.md" \
  --commands "bash scripts/quickstart.sh --device $DEVICE   # TRAIN_BUDGET_S=$TRAIN_BUDGET_S MISE_RES=$MISE_RES"
echo "[quickstart] done: $EXP/report.md"
