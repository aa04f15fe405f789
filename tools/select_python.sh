# Sourced by the launch scripts (dist_*.sh, slurm_*.sh): sets PYTHON to the interpreter that runs the tools.
# The first that applies: PYTHON when set; ${IVNEXT_VENV}/bin/python; the repository's virtual environment
# (<repo>/.venv/bin/python, made by tools/setup_env.sh); the active virtual environment (${VIRTUAL_ENV}/bin/python);
# python3, then python, on PATH.
_ivnext_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
    for _ivnext_candidate in "${IVNEXT_VENV:+${IVNEXT_VENV}/bin/python}" "${_ivnext_repo}/.venv/bin/python" \
                             "${VIRTUAL_ENV:+${VIRTUAL_ENV}/bin/python}"; do
        if [[ -n "${_ivnext_candidate}" && -x "${_ivnext_candidate}" ]]; then
            PYTHON="${_ivnext_candidate}"
            break
        fi
    done
fi
if [[ -z "${PYTHON:-}" ]]; then
    PYTHON="$(command -v python3 || command -v python || echo python)"
fi
unset _ivnext_repo _ivnext_candidate
