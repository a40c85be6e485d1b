#!/usr/bin/env bash
# Every GPU figure of docs/results.md in one pass of about eight minutes on one GPU (each part
# has its own limit; together at most 9.5 minutes).
#
#   OUT=results_dir bash benchmarks/gpu_checks.sh
#
# 1. the learner and training: benchmarks/learner_update.py, the compiled update (CUDA graphs)
#    against the eager one on the Box-World RMC's GPU batch (256 unrolls of 40 steps), with
#    the compile's time and the operations dispatched per update; then
#    benchmarks/train_throughput.py, end to end, for the boxworld-rmc-gpu and
#    boxworld-easy-rmc-gpu presets (actors on the CPUs with compiled acting steps, the learner
#    compiled on the GPU; the first reuses the learner's compile from the cache);
# 2. with RMC_SPEED=1, benchmarks/rmc_speed.py (the RMC against nn.LSTM, float32 and TF32);
# 3. with NTH=1, the N-th farthest task, four runs side by side on the GPU for NTH_MINUTES
#    each (the paper's 8 x 16 setting for the RMC and the LSTM, and the reduced 4 x 4 task,
#    both questions, at the paper's batch of 1600); they take NTH_MINUTES + 1.5 minutes more.
#
# Writes speed.txt, learner_update.txt (and one log per N-th farthest run and nth.tgz) under
# $OUT; if the compiled learner's benchmark does not finish in its limit, the end-to-end runs
# use the eager learner. Nothing here fails the script: each part has its own time limit, and
# a part that breaks is reported in its log while the rest runs. Environment: PYTHON (default python3), DEVICE (default cuda),
# ACTORS (default: the cores minus one), NTH_MINUTES (default 3.5).
set -u
out=${OUT:-runs/gpu_checks}
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
minutes=${NTH_MINUTES:-3.5}
actors=${ACTORS:-$(($(nproc) - 1))}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
stamp() { echo "== $(date -u +%T) $*"; }

{
    stamp machine
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
    echo "CPU cores: $(nproc)"
    $py -c "import torch, gymnasium; print('torch', torch.__version__, 'gymnasium', gymnasium.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())"
    stamp "learner_update boxworld-rmc-gpu: compiled against eager"
    timeout 270 $py benchmarks/learner_update.py --device "$device" --preset boxworld-rmc-gpu --rounds 2 --seconds 4 \
        | tee "$out/learner_update.txt"
    # if the compiled learner did not finish in time, take the end-to-end figures with the eager one
    compile_update=auto
    grep -q '"compiled_steps_per_s"' "$out/learner_update.txt" || compile_update=off
    for preset in boxworld-rmc-gpu boxworld-easy-rmc-gpu; do
        stamp "train_throughput $preset, $actors actors, --compile-update $compile_update"
        timeout 150 $py benchmarks/train_throughput.py --device "$device" --preset $preset --num-actors "$actors" \
            --seconds 8 --warmup-seconds 3 --compile-update $compile_update
    done
    if [ "${RMC_SPEED:-0}" = 1 ]; then
        stamp "rmc_speed, float32"
        timeout 150 $py benchmarks/rmc_speed.py --device "$device" --repeats 3 --warmup 2
        stamp "rmc_speed, TF32"
        timeout 150 $py benchmarks/rmc_speed.py --device "$device" --repeats 3 --warmup 2 --tf32
    fi
    stamp "speed done"
} 2>&1 | tee "$out/speed.txt"

[ "${NTH:-0}" = 1 ] || exit 0
nth=$(mktemp -d)
common=(--device "$device" --max-minutes "$minutes" --batch-size 1600 --threads 2 --steps 1000000)
run_nth() {  # name, then the run's own arguments
    local name=$1
    shift
    timeout $(python3 -c "print(int($minutes * 60 + 90))") $py benchmarks/nth_farthest.py "${common[@]}" "$@" \
        --json "$nth/$name.json" --png "$nth/$name.png" >"$out/nth_$name.log" 2>&1
}
stamp "N-th farthest: four runs of $minutes min side by side"
run_nth rmc_8x16 --core rmc --num-vectors 8 --num-dims 16 --mem-slots 8 --head-size 256 --num-heads 8 \
    --lr 1e-4 --tf32 --eval-interval 50 &
run_nth lstm_8x16 --core lstm --num-vectors 8 --num-dims 16 --lstm-hidden-size 1024 --lr 1e-4 --tf32 --eval-interval 50 &
run_nth rmc_4x4 --core rmc --num-vectors 4 --num-dims 4 --mem-slots 4 --head-size 32 --num-heads 4 \
    --lr 1e-3 --eval-interval 500 &
run_nth rmc_4x4_rank --core rmc --num-vectors 4 --num-dims 4 --mem-slots 4 --head-size 32 --num-heads 4 \
    --lr 1e-3 --question rank --eval-interval 500 &
wait
$py benchmarks/nth_farthest.py --plot "$nth"/*_8x16.json --png "$nth/8x16.png" >/dev/null 2>&1
$py benchmarks/nth_farthest.py --plot "$nth"/rmc_4x4*.json --png "$nth/4x4.png" >/dev/null 2>&1
tar czf "$out/nth.tgz" -C "$nth" .
tail -n 2 "$out"/nth_*.log
stamp "all done"
