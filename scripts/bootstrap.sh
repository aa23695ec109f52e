#!/usr/bin/env bash
# Install everything xtts_qa needs on a fresh Debian machine with Python 3.11 (no GPU needed):
# system packages (ffmpeg for torchcodec, espeak-ng + sox for test speech, chromium for the HTML report tests),
# a virtual environment in .venv, and the Python packages pinned in constraints.txt. Safe to run again.
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
.venv/bin/python -m pip install -q --upgrade pip
# One resolve, pinned by constraints.txt (torch 2.9.1 is the newest torch whose torchaudio imports on a CPU box).
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test,ray]"
echo "bootstrap: ready (.venv/bin/xtts-qa)" >&2
