"""Benchmark: ``xtts-qa eval`` on a 20-sentence suite against its base vs the pipeline a user would write.

Models are tiny real XTTS-v2 models (coqui-tts classes, seeded random weights: 1 GPT layer, full-size HiFi-GAN
decoder and speaker encoder) built once in the xtts_qa cache; the candidate is a simulated GPT fine-tune of the
base. Random weights never emit the stop code, so every sentence runs to the generation cap; the cap is lowered
(``--max-audio-tokens``, default 40 codes = 1.9 s of audio) for both pipelines alike to keep the run short.

Pipelines, timed in one process after a warm-up that pays the imports (torch, coqui-tts, faster-whisper,
resemblyzer), each producing the same figures (WER, similarity to the reference and to the base, per sentence):

  naive        per sentence: load the XTTS model, compute the conditioning latents, synthesise, write the wav,
               load WhisperModel, transcribe, load the speaker encoder, embed; nothing cached
  xtts_qa cold run_eval with an empty cache (each model loaded once, ASR in a thread pool overlapping synthesis)
  xtts_qa base run_eval of a second fine-tune against the same base: the base's audio, transcripts and
               embeddings come from the cache (the usual CI situation: the base was evaluated before)
  xtts_qa warm the same run again: everything from the cache

It also times the espeak-ng command backend (fast synthesis, so ASR dominates) naive vs xtts_qa cold, and ASR
alone with 1 and 2 thread-pool workers.

ASR section (``--asr-only`` runs just this): the bundled English-only ``tiny.en`` and the bundled multilingual Whisper
``base`` on the same clean espeak-ng clips (the suite's sentences): the WER noise floor (corpus WER and the worst
sentence, after normalisation: what the ASR alone adds to every gate), clips/s and ASR real-time factor, and the cost
of Whisper's language identification. This is the measurement behind the default ASR choice (asr.py).

Usage: python benchmarks/bench_eval.py [--sentences 20] [--max-audio-tokens 40] [--device auto] [--size tiny|full]
                                      [--skip-xtts] [--skip-espeak] [--asr-only]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from xtts_qa.evaluation.results import EvalReport
    from xtts_qa.evaluation.runner import EvalOptions

EXTRA = [
    "The museum closes at 6 on Sundays.",
    "Could you send me the report by Friday?",
    "She was born on July 4th, 1990.",
    "Turn left after the second traffic light.",
    "The package weighs 12 kilograms.",
    "We need 3 volunteers for the event.",
    "Is the restaurant open on Monday evenings?",
    "The river flooded the lower part of the town last spring.",
    "Thank you.",
    "Please switch off your phones before the film starts.",
]


def write_suite(folder: Path, n: int) -> Path:
    """smoke-en's sentences plus ten more: an n-sentence suite (n <= 20)."""
    from xtts_qa.evaluation.suite import load_suite

    smoke = load_suite("smoke-en")
    sentences = [{"id": s.id, "text": s.text} for s in smoke.sentences] + [
        {"id": f"extra-{i}", "text": t} for i, t in enumerate(EXTRA)
    ]
    ref = smoke.speakers["narrator"]
    data = {
        "name": f"bench-{n}",
        "language": "en",
        "seed": 1234,
        "gates": list(smoke.gates),
        "speakers": {"narrator": {"espeak": {"voice": ref.espeak_voice, "text": ref.espeak_text}}},
        "sentences": sentences[:n],
    }
    path = folder / f"bench-{n}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


def naive(
    candidate: str, base: str, suite_path: Path, backend: str, max_tokens: int, device: str, work: Path
) -> dict[str, float]:
    """What a user would write: everything loaded per call, one clip at a time, nothing cached."""
    import subprocess

    import jiwer
    import numpy as np
    import soundfile as sf
    import torch
    from faster_whisper import WhisperModel
    from resemblyzer import VoiceEncoder, preprocess_wav

    from xtts_qa.evaluation.asr import default_model_path
    from xtts_qa.evaluation.normalize import normaliser_for

    suite = yaml.safe_load(suite_path.read_text())
    ref_spec = suite["speakers"]["narrator"]["espeak"]
    ref = work / "naive-ref.wav"
    subprocess.run(["espeak-ng", "-v", ref_spec["voice"], "-w", str(ref), ref_spec["text"]], check=True)
    norm = normaliser_for("en")
    t = {"synthesis": 0.0, "asr": 0.0, "similarity": 0.0, "audio": 0.0}
    outputs: dict[str, dict[str, Path]] = {}
    for label, model_dir in (("candidate", candidate), ("base", base)):
        outputs[label] = {}
        for i, s in enumerate(suite["sentences"]):
            wav = work / f"naive-{label}-{s['id']}.wav"
            started = time.perf_counter()
            if backend == "xtts":
                from TTS.tts.configs.xtts_config import XttsConfig
                from TTS.tts.models.xtts import Xtts

                cfg = XttsConfig()
                cfg.load_json(f"{model_dir}/config.json")
                model = Xtts.init_from_config(cfg)
                model.load_checkpoint(cfg, checkpoint_dir=model_dir, eval=True)
                model.to(device)
                model.gpt.max_gen_mel_tokens = max_tokens
                gpt, spk = model.get_conditioning_latents(audio_path=[str(ref)])
                torch.manual_seed(1234 + i)
                out = model.inference(s["text"], "en", gpt, spk)
                sf.write(str(wav), out["wav"], 24000)
                del model
            else:
                subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), s["text"]], check=True)
            t["synthesis"] += time.perf_counter() - started
            t["audio"] += sf.info(str(wav)).duration
            outputs[label][s["id"]] = wav
    embeddings = {}
    for label in outputs:
        for s in suite["sentences"]:
            wav = outputs[label][s["id"]]
            started = time.perf_counter()
            whisper = WhisperModel(str(default_model_path()), device="cpu", compute_type="int8")
            segments, _ = whisper.transcribe(str(wav), language="en", beam_size=5)
            text = " ".join(seg.text for seg in segments)
            jiwer.wer(norm(s["text"]) or "-", norm(text) or "-")
            t["asr"] += time.perf_counter() - started
            started = time.perf_counter()
            encoder = VoiceEncoder(device="cpu", verbose=False)
            emb = encoder.embed_utterance(preprocess_wav(wav)) if sf.info(str(wav)).duration else None
            ref_emb = encoder.embed_utterance(preprocess_wav(ref))
            embeddings[(label, s["id"])] = emb
            float(np.dot(emb, ref_emb)) if emb is not None else 0.0
            t["similarity"] += time.perf_counter() - started
    t["total"] = t["synthesis"] + t["asr"] + t["similarity"]
    return t


def tool(
    candidate: str, base: str, suite_path: Path, options: EvalOptions, cache_root: Path
) -> tuple[dict[str, float], EvalReport]:
    from xtts_qa.evaluation.runner import run_eval

    os.environ["XTTS_QA_CACHE"] = str(cache_root)
    started = time.perf_counter()
    report = run_eval(candidate, base, suite_path, options)
    total = time.perf_counter() - started
    timings = dict(report.provenance["timings"])
    timings["total"] = total
    return timings, report


def stage_line(name: str, seconds: float, clips: int, audio_s: float) -> str:
    if seconds <= 0:
        return f"    {name:11} {'(cached)':>9}"
    return f"    {name:11} {seconds:8.1f}s  {clips / seconds:6.2f} clips/s  rtf {seconds / max(audio_s, 1e-9):6.3f}"


def report_pair(title: str, n: int, naive_t: dict[str, float], rows: list[tuple[str, dict[str, float]]]) -> None:
    clips = 2 * n
    print(f"\n== {title}: {n} sentences x (candidate + base) = {clips} clips, {naive_t['audio']:.1f} s of audio ==")
    print(f"  naive pipeline: {naive_t['total']:.1f}s  ({n / naive_t['total']:.3f} sentences/s)")
    for stage in ("synthesis", "asr", "similarity"):
        print(stage_line(stage, naive_t[stage], clips, naive_t["audio"]))
    for label, t in rows:
        ratio = naive_t["total"] / t["total"]
        print(f"  {label}: {t['total']:.1f}s  ({n / t['total']:.3f} sentences/s)  -> {ratio:.1f}x faster than naive")
        audio = t.get("audio_s") or naive_t["audio"]
        for stage, key in (
            ("synthesis", "synthesis_s"),
            ("asr (busy)", "asr_s"),
            ("similarity", "similarity_s"),
            ("model load", "model_load_s"),
        ):
            print(stage_line(stage, t.get(key, 0.0), clips, audio))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--max-audio-tokens", type=int, default=40)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--size",
        choices=("tiny", "full"),
        default="tiny",
        help="XTTS model size: tiny (seconds) or the released XTTS-v2 architecture (1.87 GB model.pth, ~12 s per load)",
    )
    parser.add_argument("--skip-xtts", action="store_true")
    parser.add_argument("--skip-espeak", action="store_true")
    parser.add_argument("--asr-only", action="store_true", help="only the ASR noise-floor comparison (tiny.en vs base)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    warnings.filterwarnings("ignore")
    for noisy in ("TTS", "transformers", "faster_whisper", "numba"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    import torch

    from xtts_qa.device import resolve_device
    from xtts_qa.evaluation.runner import EvalOptions
    from xtts_qa.evaluation.synth import SynthOptions

    device = resolve_device(args.device)
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none"
    print(
        f"bench_eval: device {device} (GPU: {gpu}), torch threads {torch.get_num_threads()}, cpu cores {os.cpu_count()}"
    )
    work = Path(tempfile.mkdtemp(prefix="xtts_qa-bench-eval-"))
    suite_path = write_suite(work, args.sentences)
    n = args.sentences
    asr_section(args, suite_path, work, device)
    if args.asr_only:
        return 0

    # warm-up: pay the imports and first-call JIT outside every timing
    import faster_whisper  # noqa: F401
    import resemblyzer  # noqa: F401
    from TTS.tts.models.xtts import Xtts  # noqa: F401

    base_opts = EvalOptions(
        progress=False, device=args.device, synth=SynthOptions(max_audio_tokens=args.max_audio_tokens)
    )
    warm_cache = work / "cache-warmup"
    tool("espeak", "espeak", suite_path, replace(base_opts, backend="command", limit=1), warm_cache)

    # espeak-ng command backend: synthesis is cheap, ASR and speaker embeddings dominate
    if not args.skip_espeak:
        espeak_section(args, suite_path, base_opts, work, device, n)
    if not args.skip_xtts:
        xtts_section(args, suite_path, base_opts, work, device, n)
    print(f"\nscratch files in {work} (safe to delete)")
    return 0


def espeak_section(
    args: argparse.Namespace, suite_path: Path, base_opts: EvalOptions, work: Path, device: str, n: int
) -> None:
    from xtts_qa.evaluation.asr import AsrOptions, Transcriber

    naive_e = naive("espeak", "espeak", suite_path, "command", args.max_audio_tokens, device, work)
    cold_e, _ = tool(
        "en-us",
        "en-us+m3",
        suite_path,
        replace(base_opts, backend="command", command="espeak-ng -v {model} -w {out} {text}"),
        work / "cache-espeak",
    )
    report_pair("espeak-ng command backend", n, naive_e, [("xtts_qa cold ", cold_e)])

    # ASR alone: thread-pool workers on this machine's cores
    wavs = sorted((work / "").glob("naive-*.wav"))
    for workers in (1, 2):
        asr = Transcriber(AsrOptions(workers=workers))
        asr.transcribe_many([(wavs[0], "en")])
        started = time.perf_counter()
        asr.transcribe_many([(w, "en") for w in wavs])
        took = time.perf_counter() - started
        print(f"  ASR only, {len(wavs)} clips, {workers} worker(s): {took:.1f}s ({len(wavs) / took:.2f} clips/s)")


def asr_section(args: argparse.Namespace, suite_path: Path, work: Path, device: str) -> None:
    """tiny.en vs multilingual base on the same clean espeak-ng clips: noise floor, clips/s, ASR RTF."""
    import subprocess

    import soundfile as sf

    from xtts_qa.evaluation.asr import AsrOptions, Transcriber
    from xtts_qa.evaluation.metrics import score_text
    from xtts_qa.evaluation.normalize import normaliser_for
    from xtts_qa.evaluation.suite import load_suite

    sentences = load_suite(suite_path).sentences
    clips = []
    for s in sentences:
        wav = work / f"asr-{s.id}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), s.text], check=True, capture_output=True)
        clips.append(wav)
    audio_s = sum(sf.info(str(c)).duration for c in clips)
    norm = normaliser_for("en")
    print(
        f"\nASR on {len(clips)} clean espeak-ng clips ({audio_s:.1f} s of audio), device {device}, "
        f"{os.cpu_count()} cores:"
    )
    for model, lid in (("tiny.en", False), ("base", False), ("base", True)):
        asr = Transcriber(AsrOptions(model=model, device=args.device, workers=2, language_id=lid))
        asr.recognise(clips[0], "en")  # load and warm up outside the timing
        started = time.perf_counter()
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=2) as pool:
            heard = list(pool.map(asr.recognise, clips, ["en"] * len(clips)))
        took = time.perf_counter() - started
        scores = [score_text(s.text, h.text, norm) for s, h in zip(sentences, heard, strict=True)]
        errors = sum(x.words.errors for x in scores)
        words = sum(x.words.reference_length for x in scores)
        worst = max(scores, key=lambda x: x.wer)
        over = sum(1 for x in scores if x.wer > 0.5)
        print(
            f"  {model:8} {'+ language id' if lid else '             '} corpus WER {errors / words:.3f}, worst "
            "sentence "
            f"{worst.wer:.2f}, sentences over 0.5: {over}/{len(scores)}; {len(clips) / took:.2f} clips/s, "
            f"ASR RTF {took / audio_s:.3f}"
        )


def xtts_section(
    args: argparse.Namespace, suite_path: Path, base_opts: EvalOptions, work: Path, device: str, n: int
) -> None:
    from xtts_qa.cache import cache_dir
    from xtts_qa.demo.scenarios import Family

    family = Family(cache_dir("bench", f"eval-family-{args.size}"), args.size)
    cand = family.folder("finetune-a", family.finetune(1)).folder
    cand2 = family.folder("finetune-b", family.finetune(2)).folder
    base = family.base.folder
    naive_x = naive(str(cand), str(base), suite_path, "xtts", args.max_audio_tokens, device, work)
    cache = work / "cache-xtts"
    cold, r1 = tool(str(cand), str(base), suite_path, base_opts, cache)
    based, r2 = tool(str(cand2), str(base), suite_path, base_opts, cache)
    warm, r3 = tool(str(cand2), str(base), suite_path, base_opts, cache)
    report_pair(
        f"{args.size} XTTS (cap {args.max_audio_tokens} codes)",
        n,
        naive_x,
        [("xtts_qa cold ", cold), ("xtts_qa base cached", based), ("xtts_qa warm rerun", warm)],
    )
    print(
        f"  verdicts: cold exit {r1.exit_code}, base-cached exit {r2.exit_code}, warm exit {r3.exit_code} "
        "(random weights are gibberish by construction: exit 1 expected); cache after warm run: "
        f"{r3.provenance['cache']}"
    )


if __name__ == "__main__":
    sys.exit(main())
