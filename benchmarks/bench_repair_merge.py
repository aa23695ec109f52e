"""Benchmark: ``xtts-qa repair`` and ``xtts-qa merge`` on full-size XTTS-v2 models vs the naive scripts.

Generates once (outside the repo, in the xtts_qa cache, shared with bench_check.py) a full-size XTTS-v2-architecture
base model (1.87 GB model.pth, 211 MB dvae.pth; seeded random weights built with coqui-tts), two simulated GPT
fine-tunes of it, and a copy of the first fine-tune saved in float16 (the repair target: frozen parts must come
back from the base and the rest be cast to float32, so the whole model.pth is rewritten). Then measures, each in a
fresh process (imports included) with the files in the page cache:

  xtts-qa repair FP16 --base BASE --out R       (check, plan, streamed write, check again)
  naive repair: torch.load both, copy non-GPT tensors from the base, cast, torch.save
  xtts-qa merge FT1 FT2 --base BASE --out M     (checks of the inputs, streamed merge, check of M)
  naive merge: torch.load the inputs, average every tensor, torch.save
  xtts-qa merge FT1 FT2 FP16 --base BASE        (3-way)

Usage: python benchmarks/bench_repair_merge.py [--repeat 1] [--root DIR]
       [--cases repair,naive-repair,merge,naive-merge,merge3]
Figures are wall seconds and peak RSS (MB) of the child process. Outputs are deleted after each run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NAIVE_REPAIR = r"""
import sys, shutil, torch
t = torch.load(sys.argv[1] + "/model.pth", map_location="cpu", weights_only=True)["model"]
b = torch.load(sys.argv[2] + "/model.pth", map_location="cpu", weights_only=True)["model"]
out = {k: (b[k] if not k.startswith("gpt.") else v.float() if v.is_floating_point() else v) for k, v in t.items()}
torch.save({"model": out}, sys.argv[3] + "/model.pth")
for name in ("config.json", "vocab.json", "dvae.pth", "mel_stats.pth", "speakers_xtts.pth"):
    shutil.copyfile(sys.argv[2] + "/" + name, sys.argv[3] + "/" + name)
"""

NAIVE_MERGE = r"""
import sys, shutil, torch
a = torch.load(sys.argv[1] + "/model.pth", map_location="cpu", weights_only=True)["model"]
b = torch.load(sys.argv[2] + "/model.pth", map_location="cpu", weights_only=True)["model"]
torch.save({"model": {k: 0.5 * a[k] + 0.5 * b[k] for k in a}}, sys.argv[3] + "/model.pth")
for name in ("config.json", "vocab.json", "dvae.pth", "mel_stats.pth", "speakers_xtts.pth"):
    shutil.copyfile(sys.argv[1] + "/" + name, sys.argv[3] + "/" + name)
"""


def measure(cmd: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MB, exit code) of one fresh child process."""
    runner = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter(); rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL).returncode\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, rc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", runner, *cmd], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def build(root: Path) -> tuple[Path, Path, Path, Path]:
    """Base, two fine-tunes and the float16 copy of the first (each made once, then reused)."""
    from xtts_qa.demo.scenarios import Family

    t = time.perf_counter()
    family = Family(root, "full")
    made = []
    for name, seed in (("finetune", 1), ("finetune2", 2)):
        if not (root / name / ".complete").exists():
            family.folder(name, family.finetune(seed))
            (root / name / ".complete").write_text("ok")
        made.append(root / name)
    fp16 = root / "finetune-fp16"
    if not (fp16 / ".complete").exists():
        state = family.finetune(1)
        family.folder("finetune-fp16", {k: v.half() if v.is_floating_point() else v for k, v in state.items()})
        (fp16 / ".complete").write_text("ok")
    print(
        f"models ready in {root} ({time.perf_counter() - t:.1f}s; model.pth "
        f"{family.base.model.stat().st_size / 1e9:.2f} GB)"
    )
    return family.base.folder, made[0], made[1], fp16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--root", help="where to generate the full-size models (default: the xtts_qa cache)")
    parser.add_argument(
        "--cases", default="repair,naive-repair,merge,naive-merge,merge3", help="comma-separated cases to run"
    )
    args = parser.parse_args()
    from xtts_qa.cache import cache_dir

    root = Path(args.root) if args.root else cache_dir("bench", "full")
    base, ft1, ft2, fp16 = build(root)
    exe = str(Path(sys.executable).with_name("xtts-qa"))
    scratch = Path(tempfile.mkdtemp(prefix="bench_repair_merge_", dir=root))
    out = scratch / "out"
    subprocess.run([exe, "check", str(ft1), "--base", str(base)], capture_output=True)  # warm caches
    every = {
        "repair": (
            "xtts-qa repair FP16 --base BASE",
            [exe, "-q", "repair", str(fp16), "--base", str(base), "--out", str(out)],
            False,
        ),
        "naive-repair": (
            "naive repair (torch.load/save)",
            [sys.executable, "-c", NAIVE_REPAIR, str(fp16), str(base), str(out)],
            True,
        ),
        "merge": (
            "xtts-qa merge FT1 FT2 --base BASE",
            [exe, "-q", "merge", str(ft1), str(ft2), "--base", str(base), "--out", str(out)],
            False,
        ),
        "naive-merge": (
            "naive merge (torch.load/save)",
            [sys.executable, "-c", NAIVE_MERGE, str(ft1), str(ft2), str(out)],
            True,
        ),
        "merge3": (
            "xtts-qa merge FT1 FT2 FP16 (3-way)",
            [exe, "-q", "merge", str(ft1), str(ft2), str(fp16), "--base", str(base), "--out", str(out)],
            False,
        ),
    }
    cases = [every[c.strip()] for c in args.cases.split(",") if c.strip()]
    rows = []
    try:
        for name, cmd, mkdir in cases:
            walls, peaks, rc = [], [], 0
            for _ in range(args.repeat):
                shutil.rmtree(out, ignore_errors=True)
                if mkdir:
                    out.mkdir()
                wall, peak, rc = measure(cmd)
                walls.append(wall)
                peaks.append(peak)
            rows.append((name, statistics.median(walls), max(peaks), rc))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n{'way':36} {'wall s':>8} {'peak RSS MB':>12} {'exit':>5}")
    for name, wall, peak, rc in rows:
        print(f"{name:36} {wall:8.2f} {peak:12.0f} {rc:5d}")
    print(
        f"\ncpu: {os.cpu_count()} cores; torch {__import__('torch').__version__}; median of {args.repeat}; files "
        "in page cache"
    )


if __name__ == "__main__":
    main()
