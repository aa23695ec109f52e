#!/usr/bin/env bash
# Install everything xtts_qa needs on a fresh Debian machine with Python 3.11 (no GPU needed):
# system packages (ffmpeg for torchcodec, espeak-ng + sox for test speech, chromium for the HTML report tests),
# a virtual environment in .venv, and every Python package at the exact version in requirements.lock
# (core + [eval] + [ray] + [test] + [dev]; regenerate the lock with `bash scripts/lock.sh`). Safe to run again.
#
# Packages are installed with uv (about 10x faster than pip on the 8 GB torch/CUDA stack); uv's and pip's caches
# stay outside the repository (~/.cache/uv, ~/.cache/pip, or $UV_CACHE_DIR / $XDG_CACHE_HOME), so a second clone on
# the same machine installs from the cache in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg in ffmpeg espeak-ng sox chromium; do
  command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    ffmpeg espeak-ng sox libsndfile1 chromium fonts-dejavu-core >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $($python --version)" >&2
  "$python" -m venv .venv
fi
uv_pin=$(grep -E '^uv==' requirements.lock | sed 's/ .*//')
if [ "$(.venv/bin/uv --version 2>/dev/null | awk '{print $2}')" != "${uv_pin#uv==}" ]; then
  echo "bootstrap: installing $uv_pin" >&2
  .venv/bin/python -m pip install -q "$uv_pin"
fi
# The lock is complete, so this is one exact install (no resolution against newer releases); --python pins the
# target so an activated other environment is never touched.
.venv/bin/uv pip install --quiet --python .venv/bin/python -r requirements.lock -e ".[all,dev]"
echo "bootstrap: ready (.venv/bin/xtts-qa)" >&2
