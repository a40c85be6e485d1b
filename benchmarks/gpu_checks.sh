#!/usr/bin/env bash
# Every GPU figure of docs/results.md (RMC speed, the learner on a GPU, the N-th farthest task)
# in one pass of about eight minutes on one GPU.
#
#   OUT=results_dir bash benchmarks/gpu_checks.sh
#
# 1. speed, the GPU alone: benchmarks/rmc_speed.py (RMC against nn.LSTM, float32 and TF32)
#    and benchmarks/train_throughput.py (acting, training and learner-only steps/s) for the
#    Box-World and easy Box-World RMC presets (and the first with --compile-core), the learner
#    on the GPU, the actors on the CPUs;
# 2. the N-th farthest task, four runs side by side on the GPU for NTH_MINUTES each: the
#    paper's 8 x 16 setting for the RMC and the LSTM, and the reduced 4 x 4 task (both
#    questions) at the paper's batch of 1600.
#
# Writes speed.txt, one log per N-th farthest run and nth.tgz (curves as JSON and PNG) under
# $OUT. Nothing here fails the script: each part has its own time limit, and a part that
# breaks is reported in its log while the rest runs. Environment: PYTHON (default python3),
# DEVICE (default cuda), NTH_MINUTES (default 3.5), SKIP_SPEED=1 to run part 2 alone.
set -u
out=${OUT:-runs/gpu_checks}
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
minutes=${NTH_MINUTES:-3.5}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
stamp() { echo "== $(date -u +%T) $*"; }

if [ "${SKIP_SPEED:-0}" != 1 ]; then
    {
        stamp machine
        nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
        echo "CPU cores: $(nproc)"
        $py -c "import torch, gymnasium; print('torch', torch.__version__, 'gymnasium', gymnasium.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())"
        stamp "rmc_speed, float32"
        timeout 150 $py benchmarks/rmc_speed.py --device "$device" --repeats 3 --warmup 2
        stamp "rmc_speed, TF32"
        timeout 150 $py benchmarks/rmc_speed.py --device "$device" --repeats 3 --warmup 2 --tf32
        for preset in boxworld-rmc boxworld-easy-rmc; do
            stamp "train_throughput $preset"
            timeout 150 $py benchmarks/train_throughput.py --device "$device" --preset $preset --seconds 8 --warmup-seconds 4
        done
        stamp "train_throughput boxworld-rmc, compiled RMC step"
        timeout 200 $py benchmarks/train_throughput.py --device "$device" --preset boxworld-rmc --seconds 8 \
            --warmup-seconds 4 --compile-core
        stamp "speed done"
    } 2>&1 | tee "$out/speed.txt"
fi

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
