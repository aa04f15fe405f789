#!/usr/bin/env bash
# The GPU measurements of docs/performance.md (one GPU, bf16): ViT-B Stage 1 and Stage 2 at the paper's
# shapes, eager with a profiler breakdown and with regional compilation; Stage 1 also with the fp32 diffusion
# denoiser and with dense masked local attention in the predictor (the behaviour before those changes); the
# encoder's SDPA against flash-attn.
#   GPU=h100 OUT=work_dirs/gpu_benchmarks bash tools/analysis/run_gpu_benchmarks.sh [stage1|stage2|attn|all]
# GPU (a100 | h100 | h200) picks the bf16 peak used for MFU. Every run appends a row to $OUT/benchmark.md and
# writes its JSON (and *_profile.md for the profiled runs) there.
set -euo pipefail
WHAT=${1:-all}
GPU=${GPU:-h100}
OUT=${OUT:-work_dirs/gpu_benchmarks}
PYTHON=${PYTHON:-python}
STEPS=${STEPS:-5}
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BENCH=("${PYTHON}" "${ROOT}/tools/analysis/benchmark.py")
COMMON=(--device cuda --amp bf16 --gpu "${GPU}" --mode train --steps "${STEPS}" --warmup 2 --out-dir "${OUT}")
STAGE1="${ROOT}/configs/benchmark/bench_ivnext-stage1_vit-b-p14_siglip2-1b-random_16x224.py"
STAGE2="${ROOT}/configs/benchmark/bench_ivnext-stage2_vit-b-p14_32x224.py"
S1=(--batch-size 16 --num-frames 16 --img-size 224)
S2=(--batch-size 8 --num-frames 32 --img-size 224)
mkdir -p "${OUT}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "${OUT}/gpu.txt"

set -x
if [[ "${WHAT}" == stage1 || "${WHAT}" == all ]]; then
    "${BENCH[@]}" "${STAGE1}" "${S1[@]}" "${COMMON[@]}" --name stage1_eager --profile 3
    "${BENCH[@]}" "${STAGE1}" "${S1[@]}" "${COMMON[@]}" --name stage1_compile-blocks --compile blocks --no-flops
    "${BENCH[@]}" "${STAGE1}" "${S1[@]}" "${COMMON[@]}" --name stage1_before --no-flops \
        --cfg-options model.head.denoiser_precision=float32 model.neck.local_attention_impl=dense
fi
if [[ "${WHAT}" == stage2 || "${WHAT}" == all ]]; then
    "${BENCH[@]}" "${STAGE2}" "${S2[@]}" "${COMMON[@]}" --name stage2_eager --profile 3
    "${BENCH[@]}" "${STAGE2}" "${S2[@]}" "${COMMON[@]}" --name stage2_compile-blocks --compile blocks --no-flops
fi
if [[ "${WHAT}" == attn || "${WHAT}" == all ]]; then
    "${BENCH[@]}" "${STAGE2}" --component backbone --batch-size 8 --num-frames 16 --img-size 224 --device cuda \
        --amp bf16 --gpu "${GPU}" --compare-attn --steps "${STEPS}" --warmup 2 --out-dir "${OUT}"
fi
