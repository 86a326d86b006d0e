#!/usr/bin/env bash
# Issue 21's GPU measurements, prepared for ONE call of a lent GPU machine (15 minutes of device time in all,
# its start included; no internet there, no SimpleITK: see /work/.library/device/README.md).
#
#   here, once:         bash scripts/gpu_issue21.sh wheels      # .whl/: nnU-Net's wheels (~20 MB) + a SimpleITK stand-in
#   on the GPU:         run(command="bash scripts/gpu_issue21.sh measure", carry=[".whl"], timeout_s=590)
#   then, AT ONCE if device time is left (the machine stays warm 30 s; part 2 needs part 1's models):
#                       run(command="G21_PART=2 bash scripts/gpu_issue21.sh measure", carry=[".whl"], timeout_s=480)
#   G21_PART=3 (training time per iteration, ~4 min; needs part 1's plans), the same way
#   G21_PART=4 (`nnunet-pruning benchmark --device cuda`, 3 folds of stock and STAMPLatency at the demo budget: test
#              Dice on the GPU; needs nothing of the other parts; G21_FOLDS="0" for one fold), the same way
#   on this CPU, to try the plumbing (tiny sizes, minutes):
#       G21_DEVICE=cpu G21_SIZE=32 G21_PATCH=32 G21_STAGES=3 G21_VOLUME=48 G21_PRUNED_BUDGET=smoke G21_COMPILE=eager \
#           PATH=.venv/bin:$PATH bash scripts/gpu_issue21.sh measure   # then G21_PART=2 ...
#
# What `measure` does (part 1: issue 21's two headline figures, so that one call can bring them back); every step's
# start and end go to $OUT/steps.txt, the whole output to $OUT/log.txt, the reports to $OUT/results.tgz:
#   1. a synthetic dataset written with nibabel (5 training cases of G21_SIZE^3, default 128), planned by nnU-Net,
#      the plans made a G21_STAGES-stage U-Net (default 6: 32-320) at a G21_PATCH^3 patch (default 128);
#      one G21_VOLUME^3 test volume (default 256) to predict;
#   2. nnUNetv2_train, fold 0, training not compiled (nnUNet_compile=f: this kit measures prediction; issue 21's
#      training time is part 3): nnUNetTrainerStock_smoke (time depends on the shapes only) and
#      nnUNetTrainerSTAMPLatency_keep50_demo (50% of the forward time MEASURED ON THIS GPU, graphed:
#      nnUNet_pruning_cuda_graphs=1); -device cuda;
#   3. `nnunet-pruning compare --time --tta` of the two on the test volume (nnU-Net's predictor, the default tile
#      step, mirroring on), eager with graphs on (nnUNetv2_predict's defaults for stock): "Done means" >= 2.0x;
#   4. the same `--compile compiled` (torch.compile as nnUNet_compile=1 nnUNetv2_predict; ~40 s of compiling per
#      model; the graphs stand aside under torch.compile, the voxel-parallel norm stays): ">= 1.5x". Each compare
#      interleaves its two models and is packed when it ends, so the first survives a timeout in the second.
#   Estimated (not measured: no GPU yet): ~8-9 minutes, most of it the latency table of STAMPLatency (hundreds of
#   module timings, each graphed) and compiling; if part 1 times out, run it again on the warm machine at once:
#   the datasets, plans and trained models it finished are kept and skipped.
# part 2 (G21_PART=2, on the same warm machine: part 1's models are still in $G21_WORK):
#   5. nnUNetTrainerSTAMP_demo (20% of the parameters) and nnUNetTrainerFlatUNet_smoke trained the same way;
#   6. the four models, mirroring on, eager, graphs on (one table, one run);
#   7. the four, mirroring off (--disable-tta);
#   8. stock and STAMPLatency, mirroring on, eager, graphs OFF (nnUNet_pruning_cuda_graphs=0): what the graphs and
#      the norm buy.
# part 3 (G21_PART=3, optional, on the same warm machine: part 1's plans; item 3, training time):
#   9. `python -m scripts scoring --compile` on the plans: nnU-Net's train_step (AMP, GradScaler) per iteration
#      with no scoring, targeted dropout only, STAMP's activation hooks, STAMP's parameter-gradient scores,
#      the hook-free ones also compiled (~35 s of compiling each): whether STAMP now trains compiled at stock's
#      speed while it scores. ~4 minutes.
# part 4 (G21_PART=4, optional, any machine state): 10. `nnunet-pruning benchmark --device cuda` on its synthetic
#   dataset (32^3, written here with nibabel), nnUNetTrainerStock_demo and nnUNetTrainerSTAMPLatency_keep50_demo
#   (its target measured on the GPU), folds 0 1 2: "STAMPLatency's test Dice within 2 points of stock" (3 runs
#   at the demo budget: the CPU's 15 runs say how wide that is), and the predictor's time per case on the GPU.
#   Not estimated on a GPU yet; on this CPU 1-1.5 min per run.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${G21_PYTHON:-python3}

wheels() {
    # run here (with internet): the wheels the GPU machine lacks, for its Python 3.12
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    mkdir -p .whl/standin/SimpleITK
    local platforms="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_24_x86_64
        --platform manylinux_2_31_x86_64 --platform manylinux_2_34_x86_64 --platform manylinux_2_35_x86_64"
    # shellcheck disable=SC2086
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $platforms \
        -d .whl nnunetv2==2.8.1 dynamic-network-architectures==0.4.4 batchgenerators==0.25.5 batchgeneratorsv2==0.3.6 \
        blosc2 ndindex numexpr connected-components-3d nibabel yacs graphviz pydantic pydantic-core \
        annotated-types typing-inspection 'typing-extensions>=4.16' || return 1
    "$PY" -m pip wheel --quiet --no-deps -w .whl acvl_utils==0.2.6 || return 1
    cat > .whl/standin/SimpleITK/__init__.py <<'EOF'
"""A stand-in that only satisfies imports (the GPU machine has no SimpleITK; the kit's data use NibabelIO)."""


def __getattr__(name):
    raise ImportError(f"SimpleITK is a stand-in here (scripts/gpu_issue21.sh): SimpleITK.{name} is not available")
EOF
    du -sh .whl && ls .whl
}

log_step() { echo "$(date -u +%H:%M:%S) +$((SECONDS))s $*" | tee -a "$OUT/steps.txt"; }

setup() {
    OUT=${OUT:-/tmp/g21_out}; mkdir -p "$OUT"
    W=${G21_WORK:-/tmp/g21}; mkdir -p "$W"
    DEVICE=${G21_DEVICE:-cuda}
    if ! "$PY" -c "import nnunetv2" 2>/dev/null; then  # the wheels, once per machine (a later part finds them)
        [ -d .whl ] || { echo "no nnunetv2 and no .whl/: run 'bash scripts/gpu_issue21.sh wheels' here first"; exit 2; }
        [ -f /tmp/site/.installed ] || { "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            --upgrade --target /tmp/site .whl/*.whl && touch /tmp/site/.installed; } || exit 2
        export PYTHONPATH=/tmp/site:$ROOT/.whl/standin PATH=/tmp/site/bin:$PATH
    fi
    export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
    export nnUNet_raw=$W/raw nnUNet_preprocessed=$W/preprocessed nnUNet_results=$W/results
    mkdir -p "$nnUNet_raw" "$nnUNet_preprocessed" "$nnUNet_results"
    export nnUNet_extTrainer=$ROOT/nnunet_pruning/trainers/ext nnUNet_pruning_cuda_graphs=${G21_GRAPHS:-1}
    NP="$PY -m nnunet_pruning.app.cli"
    R=$nnUNet_results/Dataset921_Gpu
    PRUNED=${G21_PRUNED_BUDGET:-demo}
    # trainer:label; part 1 trains and compares the first two (the issue's headline), part 2 the rest
    HEADLINE="nnUNetTrainerStock_smoke:stock nnUNetTrainerSTAMPLatency_keep50_${PRUNED}:STAMPLatency-50%-time"
    OTHERS="nnUNetTrainerSTAMP_${PRUNED}:STAMP-20%-params nnUNetTrainerFlatUNet_smoke:Flat-32"
}

train() {  # train "TRAINER:LABEL ...": fold 0 of each, not compiled
    local t
    for t in $1; do
        t=${t%%:*}
        if [ -f "$R/${t}__nnUNetPlans__3d_fullres/fold_0/checkpoint_final.pth" ]; then
            log_step "trained $t before: kept"; continue
        fi
        nnUNet_compile=f nnUNetv2_train 921 3d_fullres 0 -tr "$t" -device "$DEVICE" > "$W/train_$t.log" 2>&1
        log_step "trained $t (rc $?): $(grep -E 'latency:|pruning step|Mean Validation Dice' "$W/train_$t.log" | tail -3 | tr '\n' ' ')"
    done
    pack
}

compare() {  # compare NAME "TRAINER:LABEL ..." [extra flags]: the models on the test volume, its JSON and report kept
    local name=$1 models="" labels="" t; shift
    for t in $1; do models="$models $R/${t%%:*}__nnUNetPlans__3d_fullres"; labels="$labels ${t#*:}"; done; shift
    if [ -f "$W/compare_$name/results.json" ]; then  # a run before finished it
        cp "$W/compare_$name/results.json" "$OUT/compare_$name.json"; log_step "compare $name of a run before: kept"
        return
    fi
    log_step "compare $name: start ($*)"
    # shellcheck disable=SC2086
    $NP compare $models --labels $labels -f 0 --time "$nnUNet_raw/Dataset922_Vol/imagesTs" -device "$DEVICE" \
        --repeats 3 --warmup 1 -o "$W/compare_$name" "$@"
    local rc=$?
    cp "$W/compare_$name/results.json" "$OUT/compare_$name.json" 2>/dev/null
    log_step "compare $name: end (rc $rc)"
    pack
}

pack() { tar czf "$OUT/results.tgz" -C "$W" --exclude='*.pth' --exclude='*.npz' --exclude='*.b2nd' --exclude='*.pkl' \
    --exclude='raw' --exclude='preprocessed' --exclude='*.nii.gz' . 2>/dev/null; }

part1() {
    log_step "device: $(nvidia-smi -L 2>/dev/null | head -1 || echo none); $("$PY" -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")')"
    if [ -f "$W/planned" ]; then
        log_step "datasets and plans of a run before: kept"
    else
        $NP make-dataset --id 921 --name Gpu --train 5 --test 0 --size "${G21_SIZE:-128}" --image-io NibabelIO --overwrite || exit 1
        $NP make-dataset --id 922 --name Vol --train 1 --test 1 --size "${G21_VOLUME:-256}" --image-io NibabelIO --seed 1 \
            --overwrite || exit 1
        log_step "datasets written"
        nnUNetv2_plan_and_preprocess -d 921 -c 3d_fullres -np 8 -npfp 8 > "$W/plan.log" 2>&1 || { tail -20 "$W/plan.log"; exit 1; }
        local plans=$nnUNet_preprocessed/Dataset921_Gpu/nnUNetPlans.json
        "$PY" -c "import shutil, sys; from nnunet_pruning.app.reference_networks import override_plans as o; \
p = sys.argv[1]; shutil.copy(o(p, '3d_fullres', [int(sys.argv[2])] * 3, int(sys.argv[3]), sys.argv[4]), p)" \
            "$plans" "${G21_PATCH:-128}" "${G21_STAGES:-6}" "$W/plans" || exit 1
        log_step "planned: $("$PY" -c "import json, sys; c = json.load(open(sys.argv[1]))['configurations']['3d_fullres']; \
a = c['architecture']['arch_kwargs']; print('patch', c['patch_size'], 'batch', c['batch_size'], 'widths', a['features_per_stage'])" "$plans")"
        touch "$W/planned"
    fi
    train "$HEADLINE"
    compare headline_tta "$HEADLINE" --tta --compile eager  # kept even if the time runs out in the next
    compare headline_tta_compiled "$HEADLINE" --tta --compile "${G21_COMPILE:-compiled}"
}

part2() {
    train "$OTHERS"
    compare tta "$HEADLINE $OTHERS" --tta --compile eager
    compare notta "$HEADLINE $OTHERS" --disable-tta --compile eager
    nnUNet_pruning_cuda_graphs=0 compare tta_nographs "$HEADLINE" --tta --compile eager
}

part4() {  # "nnunet-pruning benchmark on the GPU (3 folds)": stock and STAMPLatency (50% of the time measured here)
    local B=$W/bench
    if [ ! -f "$B/nnUNet_raw/Dataset901_Benchmark/dataset.json" ]; then  # the benchmark's own dataset, with nibabel
        mkdir -p "$B/nnUNet_raw"
        nnUNet_raw=$B/nnUNet_raw $NP make-dataset --id 901 --name Benchmark --train 10 --test 4 --size 32 --seed 0 \
            --task shapes --image-io NibabelIO --overwrite > "$W/bench_dataset.log" 2>&1 || { tail -5 "$W/bench_dataset.log"; exit 1; }
    fi
    log_step "benchmark: start (folds ${G21_FOLDS:-0 1 2})"
    # shellcheck disable=SC2086
    $NP benchmark -o "$B" --device "$DEVICE" -f ${G21_FOLDS:-0 1 2} \
        --trainers nnUNetTrainerStock_demo "nnUNetTrainerSTAMPLatency_keep50_${PRUNED}" > "$W/benchmark.log" 2>&1
    log_step "benchmark: end (rc $?): $(grep -E 'test Dice|done|error' "$W/benchmark.log" | tail -8 | tr '\n' ' ')"
    cp "$B/results.json" "$OUT/benchmark.json" 2>/dev/null; cp "$B/report.md" "$OUT/benchmark_report.md" 2>/dev/null
    pack
}

part3() {
    local compiled=""
    [ "$DEVICE" = cuda ] && compiled=--compile
    log_step "scoring: start"
    "$PY" -m scripts scoring --plans "$nnUNet_preprocessed/Dataset921_Gpu/nnUNetPlans.json" --device "$DEVICE" \
        $compiled --rounds "${G21_ROUNDS:-3}" --iterations "${G21_ITERATIONS:-20}" --json "$OUT/scoring.json" \
        > "$W/scoring.log" 2>&1
    log_step "scoring: end (rc $?): $(tail -7 "$W/scoring.log" | tr '\n' ' ')"
    pack
}

case "${1:-}" in
    wheels) wheels ;;
    measure)
        setup
        exec > >(tee -a "$OUT/log.txt") 2>&1
        case "${G21_PART:-1}" in 2) part2 ;; 3) part3 ;; 4) part4 ;; *) part1 ;; esac
        log_step "done"
        ;;
    *) echo "usage: bash scripts/gpu_issue21.sh wheels | measure   (see the head of this file)" >&2; exit 2 ;;
esac
