#!/usr/bin/env bash
# Create or update the project's virtual environment in <repo>/.venv.
#
# Idempotent: the installed state is recorded in .venv/.ivnext-env-stamp as a hash of
# requirements/*.txt and setup.cfg; when it matches, nothing is reinstalled.
# Environment:
#   PYTHON            interpreter used to create the venv (default: python3)
#   IVNEXT_VENV       venv location (default: <repo>/.venv)
#   IVNEXT_FORCE_ENV  set to 1 to reinstall even if the stamp matches
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${IVNEXT_VENV:-${REPO_ROOT}/.venv}"
PYTHON="${PYTHON:-python3}"
STAMP="${VENV}/.ivnext-env-stamp"
# torch is installed first and on its own: no later step may resolve a different (CUDA) torch.
TORCH_PIN="torch==2.13.0"

cd "${REPO_ROOT}"
HASH="$(cat requirements/*.txt setup.cfg | sha256sum | cut -d' ' -f1)"

if [[ "${IVNEXT_FORCE_ENV:-0}" != "1" && -f "${STAMP}" && "$(cat "${STAMP}")" == "${HASH}" \
      && -x "${VENV}/bin/python" ]]; then
    echo "setup_env: ${VENV} is up to date"
    exit 0
fi

if [[ ! -x "${VENV}/bin/python" ]]; then
    echo "setup_env: creating ${VENV}"
    "${PYTHON}" -m venv "${VENV}"
fi
PIP=("${VENV}/bin/python" -m pip install --disable-pip-version-check)

echo "setup_env: installing ${TORCH_PIN}"
"${PIP[@]}" "${TORCH_PIN}"
echo "setup_env: installing requirements/runtime.txt and requirements/tests.txt"
"${PIP[@]}" -r requirements/runtime.txt -r requirements/tests.txt
echo "setup_env: installing requirements/runtime_nodeps.txt without dependencies"
"${PIP[@]}" --no-deps -r requirements/runtime_nodeps.txt
echo "setup_env: installing ivnext (editable)"
"${PIP[@]}" --no-deps -e .

INSTALLED_TORCH="$("${VENV}/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])')"
if [[ "${INSTALLED_TORCH}" != "${TORCH_PIN#torch==}" ]]; then
    echo "setup_env: expected ${TORCH_PIN}, found torch ${INSTALLED_TORCH}; fix the requirement that pulled it." >&2
    exit 1
fi
"${VENV}/bin/python" -c 'import ivnext, mmaction.models; print("setup_env: ivnext", ivnext.__version__, "imports")'
echo "${HASH}" > "${STAMP}"
