#!/usr/bin/env bash
# Regenerate requirements.lock: every package of the full environment (core + [eval] + [ray] + [test] + [dev]),
# pinned with ==, resolved by uv for this platform (Linux x86_64, CPython 3.11, the Debian/CI machines).
#
#   bash scripts/lock.sh            # re-resolve, keeping the current pins wherever they still fit
#   bash scripts/lock.sh --upgrade  # move every package to its newest allowed version (then run the tests!)
#
# The hand-chosen pins live in constraints.txt (torch 2.9.1 and its tested set, Ray, the model packages whose files
# xtts_qa checks by SHA-256); everything else resolves to the newest release that fits them, or stays where the
# current lock has it.
set -euo pipefail
cd "$(dirname "$0")/.."

uv=${UV:-}
if [ -z "$uv" ]; then
  if [ -x .venv/bin/uv ]; then uv=.venv/bin/uv; elif command -v uv >/dev/null 2>&1; then uv=uv; else
    echo "lock: needs uv (bash scripts/bootstrap.sh installs it into .venv)" >&2
    exit 2
  fi
fi

"$uv" pip compile pyproject.toml --all-extras \
  --constraint constraints.txt \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --no-header --annotation-style line \
  --custom-compile-command "bash scripts/lock.sh" \
  --output-file requirements.lock "$@"
sed -i '1i # Complete lock of the xtts_qa environment (core + eval + ray + test + dev). Regenerate: bash scripts/lock.sh' \
  requirements.lock
echo "lock: wrote requirements.lock ($(grep -c '==' requirements.lock) pinned packages)" >&2
