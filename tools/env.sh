#!/usr/bin/env bash
# Create .venv with a Python >= 3.12 and install bayesbio into it (once, and again when
# pyproject.toml changes). Prints the venv's python path on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."

ok() { "$@" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

find_python() {
    local c v
    if [ -n "${BAYESBIO_PYTHON:-}" ] && ok "$BAYESBIO_PYTHON"; then echo "$BAYESBIO_PYTHON"; return; fi
    for c in python3.13 python3.12 python3 python; do
        if ok "$c"; then echo "$c"; return; fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9]|[2-9][0-9])' | sort -rV); do
            if PYENV_VERSION="$v" ok python3; then echo "PYENV_VERSION=$v python3"; return; fi
        done
    fi
    for c in "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3 /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9]; do
        if [ -x "$c" ] && ok "$c"; then echo "$c"; return; fi
    done
    return 1
}

if [ ! -x .venv/bin/python ] || ! ok .venv/bin/python; then
    py=$(find_python) || { echo "error: bayesbio needs Python >= 3.12; none found on PATH or in pyenv" >&2; exit 1; }
    echo "creating .venv with: $py" >&2
    rm -rf .venv
    env $py -m venv .venv
fi

stamp=.venv/.bayesbio-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "installing bayesbio and its dependencies into .venv ..." >&2
    .venv/bin/python -m pip install --quiet --upgrade pip >&2
    .venv/bin/python -m pip install --quiet -e ".[test]" >&2
    touch "$stamp"
fi
echo "$PWD/.venv/bin/python"
