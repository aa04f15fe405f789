#!/usr/bin/env bash
# Create or update one of the project's two virtual environments.
#
#   bash tools/setup_env.sh                  # pinned stack (requirements/runtime*.txt, tests.txt) in <repo>/.venv
#   IVNEXT_STACK=latest bash tools/setup_env.sh
#                                            # newest releases (requirements/latest*.txt) in <repo>/.venv-latest
#
# Idempotent: the installed state is recorded in <venv>/.ivnext-env-stamp as a hash of the stack's requirement
# files and setup.cfg; when it matches, nothing is reinstalled.
# Environment:
#   IVNEXT_STACK      pinned (default) or latest
#   PYTHON            interpreter used to create the venv (default: python3)
#   IVNEXT_VENV       venv location (default: <repo>/.venv, or <repo>/.venv-latest for the latest stack)
#   IVNEXT_FORCE_ENV  set to 1 to reinstall even if the stamp matches
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${IVNEXT_STACK:-pinned}"
case "${STACK}" in
    pinned)
        DEFAULT_VENV="${REPO_ROOT}/.venv"
        REQUIREMENTS=(requirements/runtime.txt requirements/tests.txt)
        NODEPS=requirements/runtime_nodeps.txt ;;
    latest)
        DEFAULT_VENV="${REPO_ROOT}/.venv-latest"
        REQUIREMENTS=(requirements/latest.txt)
        NODEPS=requirements/latest_nodeps.txt ;;
    *)
        echo "setup_env: IVNEXT_STACK must be 'pinned' or 'latest', got '${STACK}'" >&2
        exit 2 ;;
esac
VENV="${IVNEXT_VENV:-${DEFAULT_VENV}}"
PYTHON="${PYTHON:-python3}"
STAMP="${VENV}/.ivnext-env-stamp"
# torch is installed first and on its own: no later step may resolve a different (CUDA) torch.
TORCH_PIN="torch==2.13.0"

cd "${REPO_ROOT}"
HASH="$(cat "${REQUIREMENTS[@]}" "${NODEPS}" setup.cfg | sha256sum | cut -d' ' -f1)"

if [[ "${IVNEXT_FORCE_ENV:-0}" != "1" && -f "${STAMP}" && "$(cat "${STAMP}")" == "${HASH}" \
      && -x "${VENV}/bin/python" ]]; then
    echo "setup_env: ${VENV} (${STACK} stack) is up to date"
    exit 0
fi

if [[ ! -x "${VENV}/bin/python" ]]; then
    echo "setup_env: creating ${VENV} (${STACK} stack)"
    "${PYTHON}" -m venv "${VENV}"
fi
PIP=("${VENV}/bin/python" -m pip install --disable-pip-version-check)

echo "setup_env: installing ${TORCH_PIN}"
"${PIP[@]}" "${TORCH_PIN}"
echo "setup_env: installing ${REQUIREMENTS[*]}"
REQ_ARGS=()
for req in "${REQUIREMENTS[@]}"; do REQ_ARGS+=(-r "${req}"); done
"${PIP[@]}" "${REQ_ARGS[@]}"
echo "setup_env: installing ${NODEPS} without dependencies"
"${PIP[@]}" --no-deps -r "${NODEPS}"
echo "setup_env: installing ivnext (editable)"
"${PIP[@]}" --no-deps -e .

INSTALLED_TORCH="$("${VENV}/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])')"
if [[ "${INSTALLED_TORCH}" != "${TORCH_PIN#torch==}" ]]; then
    echo "setup_env: expected ${TORCH_PIN}, found torch ${INSTALLED_TORCH}; fix the requirement that pulled it." >&2
    exit 1
fi
"${VENV}/bin/python" -c 'import ivnext, mmaction.models; print("setup_env: ivnext", ivnext.__version__, "imports")'
"${VENV}/bin/python" -m pip list --disable-pip-version-check --format=freeze 2>/dev/null \
    | grep -iE '^(torch|numpy|mmengine|mmcv-lite|mmaction2|transformers|huggingface.hub|diffusers|deepspeed|timm|safetensors|av|tensorboard)==' \
    | tr '\n' ' ' | sed 's/^/setup_env: /; s/$/\n/'
echo "${HASH}" > "${STAMP}"
