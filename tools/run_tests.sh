#!/usr/bin/env bash
# Set up (or reuse) the project's virtual environment, then run the test suite.
# Arguments are passed to pytest; without any, the whole suite under tests/ runs quietly.
#   bash tools/run_tests.sh                       # everything, pinned stack (.venv)
#   IVNEXT_STACK=latest bash tools/run_tests.sh   # everything, newest releases (.venv-latest)
#   bash tools/run_tests.sh -x tests/test_video_pipeline.py
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${IVNEXT_STACK:-pinned}" in
    latest) VENV="${IVNEXT_VENV:-${REPO_ROOT}/.venv-latest}" ;;
    *) VENV="${IVNEXT_VENV:-${REPO_ROOT}/.venv}" ;;
esac
bash "${REPO_ROOT}/tools/setup_env.sh"
cd "${REPO_ROOT}"
if [[ $# -eq 0 ]]; then
    set -- tests -q
fi
exec "${VENV}/bin/python" -m pytest "$@"
