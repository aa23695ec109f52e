"""Benchmark: ``xtts-qa check`` on a full-size XTTS-v2 fine-tune vs what a user would otherwise do.

Generates once (outside the repo, in the xtts_qa cache) a full-size XTTS-v2-architecture base model (963 keys,
466.9 M parameters, 1.87 GB model.pth, 211 MB dvae.pth; seeded random weights, built with coqui-tts) and a
simulated GPT fine-tune of it, then measures each way in a fresh process (imports included), side by side:

  xtts-qa check FT --base BASE        (memory-mapped, rules, architecture cache warm)
  xtts-qa check FT                    (no base; architecture cache warm: coqui-tts is not imported)
  xtts-qa check FT --base BASE        (cold architecture cache: imports coqui-tts once)
  naive torch.load of both + tensor-by-tensor compare
  coqui-tts: Xtts.load_checkpoint of both + state-dict compare

Usage: python benchmarks/bench_check.py [--repeat 3]
Figures are wall seconds and peak RSS (MB) of the child process, with the files in the page cache.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NAIVE_TORCH = r"""
import sys, torch
a = torch.load(sys.argv[1] + "/model.pth", map_location="cpu", weights_only=True)["model"]
b = torch.load(sys.argv[2] + "/model.pth", map_location="cpu", weights_only=True)["model"]
da = torch.load(sys.argv[1] + "/dvae.pth", map_location="cpu", weights_only=True)
db = torch.load(sys.argv[2] + "/dvae.pth", map_location="cpu", weights_only=True)
changed = [k for k in b if not k.startswith("gpt.") and not torch.equal(a[k], b[k])]
changed += [k for k in db if not torch.equal(da[k], db[k])]
bad = [k for k, v in a.items() if v.is_floating_point() and not torch.isfinite(v).all()]
print(len(changed), len(bad))
"""

NAIVE_COQUI = r"""
import sys, torch
from TTS.tts.configs.xtts_config import XttsConfig
from TTS.tts.models.xtts import Xtts
def load(folder):
    c = XttsConfig(); c.load_json(folder + "/config.json")
    m = Xtts(c); m.load_checkpoint(c, checkpoint_dir=folder, eval=False, strict=True)
    return m.state_dict()
a, b = load(sys.argv[1]), load(sys.argv[2])
changed = [k for k in b if not k.startswith("gpt.") and not torch.equal(a[k], b[k])]
print(len(changed))
"""


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MB, exit code) of one fresh child process."""
    runner = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter(); rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL).returncode\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, rc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", runner, *cmd], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def build(root: Path) -> tuple[Path, Path]:
    from xtts_qa.demo.scenarios import Family

    t = time.perf_counter()
    family = Family(root, "full")
    ft = root / "finetune"
    if not (ft / ".complete").exists():
        family.folder("finetune", family.finetune(1))
        (ft / ".complete").write_text("ok")
    print(
        f"models ready in {root} ({time.perf_counter() - t:.1f}s; model.pth "
        f"{family.base.model.stat().st_size / 1e9:.2f} GB, "
        f"dvae.pth {family.base.dvae.stat().st_size / 1e6:.0f} MB)"
    )
    return family.base.folder, ft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--root", help="where to generate the full-size models (default: the xtts_qa cache)")
    args = parser.parse_args()
    from xtts_qa.cache import cache_dir

    root = Path(args.root) if args.root else cache_dir("bench", "full")
    base, ft = build(root)
    exe = str(Path(sys.executable).with_name("xtts-qa"))
    warm_env = dict(os.environ)
    subprocess.run([exe, "check", str(ft), "--base", str(base)], capture_output=True, env=warm_env)  # warm caches
    cold_dir = tempfile.mkdtemp(prefix="xtts_qa_cold_")
    cases = [
        ("xtts-qa check FT --base BASE", [exe, "check", str(ft), "--base", str(base), "--json"], warm_env),
        ("xtts-qa check FT (no base)", [exe, "check", str(ft), "--json"], warm_env),
        ("xtts-qa check, cold arch cache", [exe, "check", str(ft), "--base", str(base), "--json"], None),
        ("naive torch.load + compare", [sys.executable, "-c", NAIVE_TORCH, str(base), str(ft)], warm_env),
        ("coqui-tts load_checkpoint x2 + compare", [sys.executable, "-c", NAIVE_COQUI, str(base), str(ft)], warm_env),
    ]
    rows = []
    for name, cmd, env in cases:
        walls, peaks = [], []
        for _ in range(args.repeat):
            if env is None:  # a fresh, empty cache each time
                shutil.rmtree(cold_dir, ignore_errors=True)
                env = {**os.environ, "XTTS_QA_CACHE": cold_dir}
                wall, peak, rc = measure(cmd, env)
                env = None
            else:
                wall, peak, rc = measure(cmd, env)
            walls.append(wall)
            peaks.append(peak)
        rows.append((name, statistics.median(walls), max(peaks), rc))
    ours = rows[0][1]
    print(
        f"\n{'way':40} {'wall s (median of ' + str(args.repeat) + ')':>24} {'peak RSS MB':>12} {'exit':>5} "
        f"{'vs ours':>8}"
    )
    for name, wall, peak, rc in rows:
        print(f"{name:40} {wall:24.2f} {peak:12.0f} {rc:5d} {wall / ours:7.1f}x")
    print(
        f"\ncpu: {os.cpu_count()} cores; torch {__import__('torch').__version__}; files in page cache; "
        f"rusage: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB in this driver"
    )


if __name__ == "__main__":
    main()
