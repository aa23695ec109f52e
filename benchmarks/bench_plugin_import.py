"""What the xtts_qa pytest plugin costs a pytest run that does not use it (issue 9: target < 0.3 s).

Measures, each as the median of 5 fresh processes:

1. ``python -X importtime -c "import xtts_qa.pytest_plugin"``: the cumulative import time of the entry point module
   (and whether torch, TTS, numpy or xtts_qa.engine were loaded);
2. ``pytest --collect-only -q`` of an unrelated tiny test file with the plugin enabled and with ``-p no:xtts_qa``,
   and prints the difference.

Run: ``.venv/bin/python benchmarks/bench_plugin_import.py`` (``--runs N`` to change the repetitions).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "TTS", "numpy", "xtts_qa.engine")


def import_time_s() -> tuple[float, list[str]]:
    """Cumulative import time of ``xtts_qa.pytest_plugin`` (seconds) and the heavy modules it loaded."""
    code = f"import json, sys, xtts_qa.pytest_plugin; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
    match = re.search(r"\|\s*(\d+)\s*\|\s*xtts_qa\.pytest_plugin\s*$", out.stderr, re.MULTILINE)
    micros = int(match.group(1)) if match else 0
    return micros / 1e6, json.loads(out.stdout.strip() or "[]")


def collect_s(folder: Path, *extra: str) -> float:
    """Wall time of ``pytest --collect-only -q`` on the unrelated test file."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *extra, "test_unrelated.py"],
        cwd=folder,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="repetitions per measurement (median is reported)")
    args = parser.parse_args()

    imports = [import_time_s() for _ in range(args.runs)]
    heavy = sorted({m for _, loaded in imports for m in loaded})
    print(f"import xtts_qa.pytest_plugin: median {statistics.median(t for t, _ in imports):.3f} s (cumulative)")
    print(f"heavy modules loaded by the import: {', '.join(heavy) if heavy else 'none'}")

    with tempfile.TemporaryDirectory(prefix="bench_plugin_") as tmp:
        folder = Path(tmp)
        (folder / "test_unrelated.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
        (folder / "pytest.ini").write_text("[pytest]\n")
        collect_s(folder)  # warm the file cache once
        enabled, disabled = [], []
        for _ in range(args.runs):  # interleaved, so drift on a shared machine hits both sides alike
            enabled.append(collect_s(folder))
            disabled.append(collect_s(folder, "-p", "no:xtts_qa"))
    on, off = statistics.median(enabled), statistics.median(disabled)
    print(f"pytest --collect-only, plugin enabled:  median {on:.3f} s")
    print(f"pytest --collect-only, -p no:xtts_qa:   median {off:.3f} s")
    print(f"difference: {on - off:+.3f} s (target < 0.3 s)")
    return 0 if on - off < 0.3 and not heavy else 1


if __name__ == "__main__":
    raise SystemExit(main())
