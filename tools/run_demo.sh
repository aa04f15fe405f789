#!/usr/bin/env bash
# The whole InternVideo-Next method in miniature on a CPU (docs/demo.md):
# set-up, data build, teacher conversion, Stage 1, pixel-only baseline, Stage 2, the probe leaderboard, images.
# Artefacts go to demo_artifacts/ (or --work-dir DIR); rerunning reuses what is already built.
#   bash tools/run_demo.sh                 # full demo (measured times in docs/demo.md)
#   bash tools/run_demo.sh --smoke         # tiny sizes, a few minutes
#   bash tools/run_demo.sh --force         # rebuild everything
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${IVNEXT_VENV:-${REPO_ROOT}/.venv}"
cd "${REPO_ROOT}"
SETUP_START=$(date +%s.%N)
bash tools/setup_env.sh
export IVNEXT_DEMO_SETUP_SECONDS="$(echo "$(date +%s.%N) - ${SETUP_START}" | bc 2>/dev/null || echo 0)"
exec "${VENV}/bin/python" tools/demo/run_demo.py --work-dir demo_artifacts "$@"
