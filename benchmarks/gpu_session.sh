#!/usr/bin/env bash
# Every GPU-side benchmark of the project in one fixed-length session (a 16-core machine with one GPU was lent for
# 10 minutes): the data, then all trainings side by side on the one GPU, then their evaluations.
#
#   bash benchmarks/gpu_session.sh [OUT_DIR] [TOTAL_S]        # defaults: experiments/gpu_session 540
#
# What runs (each on the embedded data, written here first with preprocess.py; budgets below are wall seconds):
#   occupancy  the cross-category AIR-Net (configs/occupancy/multicat_airnet300.yaml, reduced width, from the shipped
#              weights) and the full-size AIR-Net (configs/occupancy/airnet300.yaml, from scratch) on the same 12
#              categories; exported to OUT_DIR/*.pt for benchmarks/occupancy_heldout.py (run that where data/synth_all
#              holds every category).
#   neural_parts  benchmarks/neural_parts_table.py, one process per row (2/5/8/10 primitives and the 5 ablations),
#              plus the 5-primitive model shipped in pretrained_models/ (its own longer run; exported fp16).
#   svr        benchmarks/svr_table.py, one process per decoder and per n_points of the sweep.
#   genren     benchmarks/genren_eval.py with configs/genren/small_long.yaml and its single-view baseline.
# Every process runs with OMP_NUM_THREADS=1; the GPU is shared by all of them (so each figure is a lower bound of
# what one run alone would get; Neural Parts validates one frame at a time to keep ten processes' memory in
# bounds). Logs: OUT_DIR/logs/; the tables: OUT_DIR/logs/*_table.log.
set -u
OUT=${1:-experiments/gpu_session}
TOTAL=${2:-540}
PY=${PYTHON:-python3}
OCC_PER_CAT=${OCC_PER_CAT:-40}
NP_PER_CAT=${NP_PER_CAT:-200}
SVR_PER_CAT=${SVR_PER_CAT:-240}
GENREN_PER_CAT=${GENREN_PER_CAT:-30}
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
T0=$(date +%s)
LOG=$OUT/logs
mkdir -p "$LOG"
elapsed() { echo $(( $(date +%s) - T0 )); }
# training seconds left for a job that must end by TOTAL - $1 (its evaluation and the packing after it)
budget() { local b=$(( TOTAL - $1 - $(elapsed) - 25 )); (( b < 20 )) && b=20; echo $b; }
say() { echo "[$(elapsed) s] $*" | tee -a "$LOG/session.log"; }

say "start: $(nproc --all) cores; $($PY -c 'import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$LOG/session.log" 2>&1
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 15 > "$LOG/gpu_use.csv" 2>&1 & SMI=$!

# ---------------------------------------------------------------- data (CPU)
OCC_CATS=airplane,cap,car,chair,guitar,knife,lamp,motorbike,mug,pistol,skateboard,table
$PY preprocess.py synth --out data/synth_all --formats ifnet --views 0 --categories $OCC_CATS \
    --per-category $OCC_PER_CAT -j 6 > "$LOG/data_occ.log" 2>&1 & D_OCC=$!
$PY preprocess.py synth --out data/synth_np --categories human --per-category $NP_PER_CAT --formats humans \
    -j 4 > "$LOG/data_np.log" 2>&1 & D_NP=$!
$PY preprocess.py synth --out data/synth_svr_chairs --categories chair --per-category $SVR_PER_CAT --views 8 \
    --formats r2n2 -j 4 > "$LOG/data_svr.log" 2>&1 & D_SVR=$!
$PY preprocess.py synth --out data/synth_genren --categories chair,airplane,car --per-category $GENREN_PER_CAT \
    --formats genren,r2n2 --views 8 -j 2 > "$LOG/data_genren.log" 2>&1 & D_GENREN=$!

# ---------------------------------------------------------------- occupancy (train only; evaluated elsewhere)
(
  wait_for() { while kill -0 "$1" 2>/dev/null; do sleep 2; done; }
  wait_for $D_OCC; say "occupancy data done"
  B=$(budget 30)
  say "occupancy: $B s each"
  $PY train.py -cfg configs/occupancy/multicat_airnet300.yaml -exp_name multicat_airnet300 --exp_root "$OUT/exps" \
      training.batch_size=64 training.lr=5e-4 training.num_workers=3 training.val_every=500 training.ckpt_every=500 \
      training.progress=false training.time_budget_s=$B > "$LOG/occ_multicat.log" 2>&1 &
  $PY train.py -cfg configs/occupancy/airnet300.yaml -exp_name multicat_airnet300_full --exp_root "$OUT/exps" \
      data.root=data/synth_all/ifnet "data.categories=[${OCC_CATS}]" training.num_workers=3 training.val_every=500 \
      training.ckpt_every=500 training.progress=false training.time_budget_s=$B > "$LOG/occ_full.log" 2>&1 &
  wait
  for e in multicat_airnet300 multicat_airnet300_full; do
    $PY -c "from modules.engine.checkpoint import export_pretrained as x; import sys; x(sys.argv[1], sys.argv[2], data_root='data/synth_all/ifnet')" \
        "$OUT/exps/$e/checkpoints/best.pt" "$OUT/$e.pt" >> "$LOG/occ_multicat.log" 2>&1
  done
  say "occupancy done"
) & J1=$!

# ---------------------------------------------------------------- Neural Parts
(
  while kill -0 $D_NP 2>/dev/null; do sleep 2; done; say "humans data done"
  B=$(budget 90)
  say "neural parts rows: $B s each"
  for row in "M=2" "M=5" "M=8" "M=10" "M=5 without reconstruction" "M=5 without normal_consistency" \
             "M=5 without occupancy" "M=5 without coverage" "M=5 without overlap"; do
    $PY benchmarks/neural_parts_table.py --budget_s $B --out "$OUT/np_table" --rows "$row" --speed_steps 0 \
        training.lr=2e-4 training.val_batch_size=1 > "$LOG/np_row_${row// /_}.log" 2>&1 &
  done
  SB=$(budget 45)
  $PY train.py -cfg configs/neural_parts/humans.yaml -exp_name np_humans5_ship --exp_root "$OUT/exps" \
      model.hidden_size=128 training.lr=2e-4 training.val_batch_size=1 training.val_every=1000 training.progress=false \
      training.time_budget_s=$SB > "$LOG/np_ship.log" 2>&1
  $PY -c "from modules.engine.checkpoint import export_pretrained as x; import sys; x(sys.argv[1], sys.argv[2], data_root='data/synth_np/humans')" \
      "$OUT/exps/np_humans5_ship/checkpoints/best.pt" "$OUT/neural_parts_humans5.pt" >> "$LOG/np_ship.log" 2>&1
  wait
  $PY benchmarks/neural_parts_table.py --budget_s $B --out "$OUT/np_table" --only_table --speed_steps 0 \
      training.lr=2e-4 training.val_batch_size=1 > "$LOG/np_table.log" 2>&1
  say "neural parts done"
) & J2=$!

# ---------------------------------------------------------------- single-view table
(
  while kill -0 $D_SVR 2>/dev/null; do sleep 2; done; say "svr data done"
  B=$(budget 60)
  say "svr runs: $B s each"
  for t in point vox mesh implicit parametric; do
    $PY benchmarks/svr_table.py --out "$OUT/svr_table" --budget_s $B --types $t --sweep "" > "$LOG/svr_$t.log" 2>&1 &
  done
  for n in 500 1000 2500 5000; do
    $PY benchmarks/svr_table.py --out "$OUT/svr_table" --budget_s $B --types "" --sweep $n > "$LOG/svr_n$n.log" 2>&1 &
  done
  wait
  $PY benchmarks/svr_table.py --out "$OUT/svr_table" --budget_s $B --only_table > "$LOG/svr_table.log" 2>&1
  say "svr done"
) & J3=$!

# ---------------------------------------------------------------- genren
(
  while kill -0 $D_GENREN 2>/dev/null; do sleep 2; done; say "genren data done"
  B=$(budget 150)
  say "genren: $B s, svr baseline 60 s"
  $PY benchmarks/genren_eval.py --config small_long --steps 4200 --time_budget_s $B --svr_budget_s 60 \
      --out "$OUT/genren_eval" > "$LOG/genren_table.log" 2>&1
  say "genren done"
) & J4=$!

wait $J1 $J2 $J3 $J4
say "all done"
kill $SMI 2>/dev/null
