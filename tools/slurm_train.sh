#!/usr/bin/env bash
# Training on a Slurm cluster, one task per GPU.
#   [GPUS=16] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#     bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py options...]
# The interpreter: PYTHON, else the repository's .venv, else the active virtual environment
# (tools/select_python.sh).
set -euo pipefail
if [[ $# -lt 3 ]]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG [train.py options...]" >&2
    exit 2
fi

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
TOOLS_DIR="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tools/select_python.sh
source "${TOOLS_DIR}/select_python.sh"
# MMEngine's slurm launcher reads MASTER_PORT; a random one lets several jobs share a node.
export MASTER_PORT=${MASTER_PORT:-$((12000 + RANDOM % 20000))}

set -x
# shellcheck disable=SC2086
PYTHONPATH="${TOOLS_DIR}/..${PYTHONPATH:+:${PYTHONPATH}}" \
srun -p "${PARTITION}" \
    --job-name="${JOB_NAME}" \
    --gres=gpu:"${GPUS_PER_NODE}" \
    --ntasks="${GPUS}" \
    --ntasks-per-node="${GPUS_PER_NODE}" \
    --cpus-per-task="${CPUS_PER_TASK}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "${PYTHON}" -u "${TOOLS_DIR}/train.py" "${CONFIG}" --launcher slurm "${@:4}"
