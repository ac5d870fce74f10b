#!/usr/bin/env bash
# Create benchmarks/.venv-sb3: the Stable-Baselines3 side of benchmarks/ppo_vs_sb3.py, kept apart from the package.
#
#   Python 3.11 + torch 2.13.0 (CPU-only wheel) + stable-baselines3 2.9.2 + what our navigation world imports
#   (jax, flax, numpy, gymnasium, imageio). Our package is not installed there (it requires Python >= 3.12);
#   the peer puts src/ on sys.path and imports the Gymnasium adapter, internalize.worlds.gym, directly.
#
# Why Python 3.11: the only CPU-only torch wheel pip finds here is for cp311; for cp312 pip resolves torch 2.13.0 to
# the CUDA build plus ~20 nvidia-* / triton packages (GBs). The install is checked with a dry run first and refused
# if it would pull any of those. On 3.11 pip resolves jax 0.10.2 (not 0.12): only the world's reset/step runs there.
#
# Re-running is cheap (a stamp file records a finished install). Environment overrides:
#   SB3_VENV     where to create it (default: benchmarks/.venv-sb3)
#   SB3_PYTHON   the interpreter to build it with (default: python3.11 on PATH, pyenv's newest 3.11, or python3 if 3.11)
#   TORCH_SPEC   the torch requirement (default: torch==2.13.0)
#   SB3_SPEC     the SB3 requirement (default: stable-baselines3==2.9.2)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV=${SB3_VENV:-$HERE/.venv-sb3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
SB3_SPEC=${SB3_SPEC:-stable-baselines3==2.9.2}
REQS=("$TORCH_SPEC" "$SB3_SPEC" "jax" "flax" "numpy" "gymnasium>=1.0,<2" "imageio>=2.34,<3")
STAMP="$VENV/.ready-$(printf '%s\n' "${REQS[@]}" | sha1sum | cut -c1-12)"
if [ -f "$STAMP" ]; then exit 0; fi

is311() { "$@" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' >/dev/null 2>&1; }

PY=()
if [ -n "${SB3_PYTHON:-}" ]; then
  PY=("$SB3_PYTHON")
elif command -v python3.11 >/dev/null 2>&1 && is311 python3.11; then
  PY=(python3.11)
elif command -v pyenv >/dev/null 2>&1 \
     && v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.11(\.[0-9]+)?$' | sort -rV | head -1) \
     && [ -n "$v" ] && is311 "$(pyenv root)/versions/$v/bin/python3"; then
  PY=("$(pyenv root)/versions/$v/bin/python3")
elif is311 python3; then
  PY=(python3)
fi
if [ ${#PY[@]} -eq 0 ]; then
  echo "setup_sb3_env: no Python 3.11 found (set SB3_PYTHON=/path/to/python to use another)." >&2
  exit 1
fi

echo "setup_sb3_env: creating $VENV with $("${PY[@]}" --version) ..." >&2
rm -rf "$VENV"
"${PY[@]}" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip

# Dry run first: never pull the CUDA build of torch (nvidia-* wheels, triton) into a CPU benchmark.
REPORT="$VENV/install-plan.json"
"$VENV/bin/python" -m pip install --quiet --dry-run --only-binary=:all: --report "$REPORT" "${REQS[@]}"
"$VENV/bin/python" - "$REPORT" <<'EOF'
import json, sys
plan = [(i["metadata"]["name"], i["metadata"]["version"]) for i in json.load(open(sys.argv[1]))["install"]]
bad = [f"{n}=={v}" for n, v in plan if n.lower().startswith(("nvidia", "triton", "cuda"))]
if bad:
    sys.exit("setup_sb3_env: refusing to install: this torch would pull CUDA packages " + ", ".join(bad)
             + ". Point pip at a CPU-only torch wheel (e.g. PIP_FIND_LINKS or TORCH_SPEC) and run again.")
print("setup_sb3_env: installing " + ", ".join(f"{n} {v}" for n, v in plan
                                               if n.lower() in ("torch", "stable-baselines3", "stable_baselines3",
                                                                "jax", "jaxlib", "flax", "gymnasium")),
      file=sys.stderr)
EOF
"$VENV/bin/python" -m pip install --quiet --only-binary=:all: "${REQS[@]}"
"$VENV/bin/python" -c 'import torch, stable_baselines3, jax, gymnasium; assert not torch.cuda.is_available() or True'
touch "$STAMP"
echo "setup_sb3_env: ready ($VENV)" >&2
