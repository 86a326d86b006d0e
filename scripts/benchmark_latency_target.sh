#!/usr/bin/env bash
# Latency-targeted models end to end on the CPU, with the stock commands, and their measured speed.
#
#   scripts/benchmark_latency_target.sh WORKDIR [THREADS]
#
# 1. the demo's synthetic dataset (id 901, 32^3 volumes), planned by nnU-Net (4 stages 32-256, patch 32^3);
# 2. nnUNetv2_train, one after the other, fold 0, the demo budget (5 epochs x 20 iterations): stock, STAMP
#    (keep 20% params), STAMPLatency and RandomLargestLatency (keep 50% of the forward time measured on this
#    CPU); the wall time of each training goes to WORKDIR/training_times.json;
# 3. scripts/benchmark_inference.py on those plans: the trained models plus stock/Flat/random-largest
#    through nnU-Net's predictor, eager and compiled, 64^3 volumes -> docs/benchmarks/inference_latency_demo_plans.json;
# 4. the same script on a 4-stage plan with a 64^3 patch (96^3 volumes), random-largest pruned in-process
#    to 50% of the measured forward time -> docs/benchmarks/inference_latency_4stage_64.json;
# 5. training times from the logs -> docs/benchmarks/training_latency_demo_plans.json.
# Run it on an otherwise idle machine: every figure is a time.
set -euo pipefail
WORK=${1:?usage: scripts/benchmark_latency_target.sh WORKDIR [THREADS]}
THREADS=${2:-2}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$HERE/.venv/bin/python}
BIN=$(dirname "$PY")
export PATH="$BIN:$PATH"
mkdir -p "$WORK"
eval "$(nnunet-pruning env --base "$WORK")"
export nnUNet_def_n_proc=$THREADS nnUNet_n_proc_DA=$THREADS OMP_NUM_THREADS=$THREADS
PRE="$WORK/nnUNet_preprocessed/Dataset901_Benchmark"
if [ ! -f "$PRE/nnUNetPlans.json" ]; then
  nnunet-pruning make-dataset --id 901 --name Benchmark --train 10 --test 4 --size 32 --seed 0
  nnUNetv2_plan_and_preprocess -d 901 -c 3d_fullres -np 2 -npfp 2 --verify_dataset_integrity
fi
TRAINERS="nnUNetTrainerStock_demo nnUNetTrainerSTAMP_demo nnUNetTrainerSTAMPLatency_5epochs_20iters nnUNetTrainerRandomLargestLatency_5epochs_20iters"
echo "{" > "$WORK/training_times.json"
first=1
for T in $TRAINERS; do
  start=$(date +%s.%N)
  nnUNetv2_train 901 3d_fullres 0 -tr "$T" -device cpu > "$WORK/train_$T.log" 2>&1
  end=$(date +%s.%N)
  seconds=$(python3 -c "print(round($end - $start, 1))")
  echo "[latency benchmark] $T trained in $seconds s"
  [ $first = 1 ] || echo "," >> "$WORK/training_times.json"
  first=0
  echo "\"$T\": $seconds" >> "$WORK/training_times.json"
done
echo "}" >> "$WORK/training_times.json"
R="$WORK/nnUNet_results/Dataset901_Benchmark"
cd "$HERE"
"$PY" scripts/benchmark_inference.py --plans "$PRE/nnUNetPlans.json" --shape 64 64 64 --volumes 2 --warmup 1 \
  --repeats 5 --device cpu --threads "$THREADS" --latency-keep 0.5 --compile both \
  --models "$R/nnUNetTrainerSTAMP_demo__nnUNetPlans__3d_fullres" \
           "$R/nnUNetTrainerSTAMPLatency_5epochs_20iters__nnUNetPlans__3d_fullres" \
           "$R/nnUNetTrainerRandomLargestLatency_5epochs_20iters__nnUNetPlans__3d_fullres" \
  --json docs/benchmarks/inference_latency_demo_plans.json
"$PY" scripts/benchmark_inference.py --plans "$PRE/nnUNetPlans.json" --patch 64 64 64 --stages 4 \
  --shape 96 96 96 --volumes 1 --warmup 1 --repeats 5 --device cpu --threads "$THREADS" --latency-keep 0.5 \
  --json docs/benchmarks/inference_latency_4stage_64.json
"$PY" scripts/collect_training_times.py "$WORK/training_times.json" "$R" --json docs/benchmarks/training_latency_demo_plans.json
