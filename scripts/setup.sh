#!/usr/bin/env bash
# Create .venv with Python >= 3.12 and install internalize (editable) with its test extras.
# Re-running is cheap: nothing is reinstalled unless pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
STAMP="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ -f "$STAMP" ]; then exit 0; fi

works() { "$@" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

PY=()
for cand in python3.13 python3.12 python3; do
  if command -v "$cand" >/dev/null 2>&1 && works "$cand"; then PY=("$cand"); break; fi
done
if [ ${#PY[@]} -eq 0 ] && command -v pyenv >/dev/null 2>&1; then
  # pyenv shims for python3.12 fail unless that version is selected: pick the newest installed >= 3.12.
  for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9]|[2-9][0-9])(\.[0-9]+)?$' | sort -rV); do
    bin="$(pyenv root)/versions/$v/bin/python3"
    if [ -x "$bin" ] && works "$bin"; then PY=("$bin"); break; fi
  done
fi
if [ ${#PY[@]} -eq 0 ]; then
  echo "internalize needs Python >= 3.12 (jax >= 0.12), and none was found on PATH or in pyenv." >&2
  echo "Install one (e.g. 'pyenv install 3.12' or your system's python3.12 package) and run this again." >&2
  exit 1
fi

echo "Setting up $VENV with $("${PY[@]}" --version) ..."
rm -rf "$VENV"
"${PY[@]}" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e ".[test]"
touch "$STAMP"
