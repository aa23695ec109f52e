"""Sweep throughput: per-unit stage costs, the local engine, and the Ray engine with 1..N synthesis actors.

Builds a tiny real XTTS-v2 base and a few fine-tunes (GPT weights moved) under the xtts_qa cache (never in the
repository), then sweeps them with a fresh evaluation cache per configuration and prints:

* per-clip stage costs measured in this process (synthesis, ASR, speaker embedding) and one-off load costs;
* wall time and units per second of ``--engine local`` and of ``--engine ray`` with each actor count;
* Ray's fixed costs on this box: ``ray.init`` of a local cluster and the first unit (actor start + model load).

    .venv/bin/python benchmarks/bench_sweep.py                      # 2 fine-tunes x 4 sentences, actors 1,2
    .venv/bin/python benchmarks/bench_sweep.py --checkpoints 4 --actors 1,2,3 --sentences 6
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch


def build_models(root: Path, count: int) -> tuple[Path, list[Path]]:
    from xtts_qa.demo.factory import build_model_folder

    base = root / "base"
    if not (base / "model.pth").is_file():
        build_model_folder(base, "tiny", seed=0)
        config = json.loads((base / "config.json").read_text())
        if not config["model_args"].get("gpt_number_text_tokens"):  # as released configs do (0 fails XQ006's bounds)
            rows = torch.load(base / "model.pth", weights_only=True)["model"]["gpt.text_embedding.weight"].shape[0]
            config["model_args"]["gpt_number_text_tokens"] = int(rows)
            (base / "config.json").write_text(json.dumps(config, indent=2))
    out = []
    for i in range(1, count + 1):
        dest = root / f"ft{i}"
        if not (dest / "model.pth").is_file():
            shutil.copytree(base, dest, dirs_exist_ok=True)
            blob = torch.load(dest / "model.pth", weights_only=True)
            gen = torch.Generator().manual_seed(i)
            for name, tensor in blob["model"].items():
                if name.startswith("gpt.") and tensor.is_floating_point() and tensor.dim() >= 2:
                    tensor.add_(torch.randn(tensor.shape, generator=gen) * 1e-3)
            torch.save(blob, dest / "model.pth")
        out.append(dest)
    return base, out


def eval_options(cache: Path, args: argparse.Namespace):
    from xtts_qa.evaluation.asr import AsrOptions
    from xtts_qa.evaluation.runner import EvalOptions
    from xtts_qa.evaluation.synth import SynthOptions

    return EvalOptions(
        device="cpu",
        synth=SynthOptions(max_audio_tokens=args.max_audio_tokens),
        asr=AsrOptions(model=args.asr_model, beam_size=1, workers=1),
        progress=False,
        limit=args.sentences,
        bootstrap_rounds=200,
        cache_root=cache,
    )


def stage_costs(model: Path, args: argparse.Namespace, scratch: Path) -> dict[str, float]:
    """Per-clip costs of each stage, measured in-process with the workers both engines run."""
    from xtts_qa.evaluation.suite import load_suite
    from xtts_qa.execution.driver import _Plan
    from xtts_qa.execution.workers import Listener, Synthesiser, score_clips

    plan = _Plan([(str(model), "candidate")], [load_suite("smoke-en")], eval_options(scratch, args), 1, args.threads)
    synth, listener = Synthesiser(plan.context), Listener(plan.context)
    first = time.perf_counter()
    warm = synth.run(plan.units[0])
    listener.transcribe(warm)
    score_clips(warm, "cpu", args.threads)
    first = time.perf_counter() - first
    totals = {"synthesis": 0.0, "asr": 0.0, "embedding": 0.0, "audio_s": 0.0}
    clips = 0
    for unit in plan.units[1:]:
        t0 = time.perf_counter()
        out = synth.run(unit)
        t1 = time.perf_counter()
        listener.transcribe(out)
        t2 = time.perf_counter()
        score_clips(out, "cpu", args.threads)
        t3 = time.perf_counter()
        totals["synthesis"] += t1 - t0
        totals["asr"] += t2 - t1
        totals["embedding"] += t3 - t2
        totals["audio_s"] += sum(c.meta["audio_seconds"] for c in out)
        clips += len(out)
    per = {f"{k}_s_per_clip": round(v / max(clips, 1), 3) for k, v in totals.items() if k != "audio_s"}
    per["audio_s_per_clip"] = round(totals["audio_s"] / max(clips, 1), 3)
    per["first_unit_s (loads: XTTS, Whisper, resemblyzer, conditioning)"] = round(first, 2)
    return per


def sweep(
    engine: str, base: Path, models: list[Path], args: argparse.Namespace, scratch: Path, actors: int = 0
) -> dict[str, float]:
    from xtts_qa.execution.driver import SweepOptions, run_sweep

    stamps: list[float] = []
    options = SweepOptions(
        engine=engine,
        eval_options=eval_options(scratch, args),
        batch_size=args.batch_size,
        synth_actors=actors,
        threads=args.threads,
        on_progress=lambda e: stamps.append(time.perf_counter()),
    )
    started = time.perf_counter()
    report = run_sweep([str(m) for m in models], str(base), options)
    wall = time.perf_counter() - started
    units = report.units["run"]
    steady = (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else float("nan")
    return {
        "wall_s": round(wall, 2),
        "units": units,
        "units_per_s": round(units / wall, 3),
        "steady_s_per_unit": round(steady, 2),
        "first_unit_s": round(stamps[0] - started, 2) if stamps else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=int, default=2)
    parser.add_argument("--sentences", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--actors", default="1,2", help="synthesis actor counts to try on Ray")
    parser.add_argument("--max-audio-tokens", type=int, default=40)
    parser.add_argument("--asr-model", default="tiny.en")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray cluster (default: all)")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--skip-local", action="store_true", help="only the Ray runs (and the stage costs)")
    args = parser.parse_args()

    from xtts_qa.cache import cache_dir

    root = cache_dir("bench", "sweep-models")
    base, models = build_models(root, args.checkpoints)
    results: dict[str, object] = {
        "machine": {"cpus": __import__("os").cpu_count(), "torch_threads": args.threads},
        "sweep": {
            "checkpoints": args.checkpoints,
            "sentences": args.sentences,
            "batch_size": args.batch_size,
            "units": (args.checkpoints + 1) * -(-args.sentences // args.batch_size),
        },
    }
    with tempfile.TemporaryDirectory(prefix="xtts_qa-bench-sweep-") as tmp:
        scratch = Path(tmp)
        results["stages"] = stage_costs(models[0], args, scratch / "stages")
        print(json.dumps({"stages": results["stages"]}), file=sys.stderr)
        if not args.skip_local:
            results["local"] = sweep("local", base, models, args, scratch / "local")
            print(json.dumps({"local": results["local"]}), file=sys.stderr)
        if not args.skip_ray:
            import ray

            started = time.perf_counter()
            ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
            results["ray_init_s"] = round(time.perf_counter() - started, 2)
            try:
                for n in [int(a) for a in args.actors.split(",") if a.strip()]:
                    results[f"ray_{n}_actors"] = sweep("ray", base, models, args, scratch / f"ray{n}", actors=n)
                    print(json.dumps({f"ray_{n}_actors": results[f"ray_{n}_actors"]}), file=sys.stderr)
            finally:
                ray.shutdown()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
