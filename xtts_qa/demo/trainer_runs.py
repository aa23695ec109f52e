"""Real coqui-tts training artefacts, made at test time by coqui's own ``GPTTrainer`` + ``trainer.Trainer.fit()``.

One seeded generation (about a minute or two on 2 CPU cores) follows coqui-tts's recipe
``recipes/ljspeech/xtts_v2/train_gpt_xtts.py`` at tiny dimensions on espeak-ng clips, then derives what users derive
from a run: a compacted export as AllTalk / xtts-finetune-webui write it (and the same export with AllTalk's
``dvae.``-prefixed dvae.pth), a second fine-tune from each export, Trainer restores from an export and from an
inference model.pth, and two naive weighted merges. While doing so it OBSERVES what coqui itself does with each
artefact (strict load, restored layers, the DVAE the trainer really holds, which tensors changed) and writes those
observations to ``observations.json``.

The result is cached under the xtts_qa cache folder, keyed by the coqui-tts, trainer and torch versions and
:data:`GENERATOR_VERSION`. A build happens in a fresh hidden folder and becomes visible only when complete, by
atomically renaming a symbolic link onto the cache key (the folder itself is never renamed: the Trainer records
absolute paths in every config.json and checkpoint it writes, and those must stay true).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import json
import logging
import math
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from xtts_qa.cache import cache_dir, link_or_copy
from xtts_qa.errors import XttsQaError

log = logging.getLogger("xtts_qa")

__all__ = [
    "GENERATOR_VERSION",
    "GenerationError",
    "TrainerArtefacts",
    "trainer_artefacts",
    "cache_key",
    "strict_load",
    "observe_restore",
    "observe_trainer_start",
]

#: bump when what the generator produces changes (invalidates every cached generation)
GENERATOR_VERSION = 1
SEED = 1234
_MANIFEST = "artefacts.json"
_OBSERVATIONS = "observations.json"
_VOICES = ("en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029")
_SENTENCES = (
    "the quick brown fox jumps over the lazy dog.",
    "please call stella and ask her to bring these things.",
    "a stitch in time saves nine, or so they say.",
    "we will meet at the station before noon tomorrow.",
    "she sells sea shells by the sea shore.",
    "the rain in spain stays mainly in the plain.",
    "every morning the baker opens his shop at six.",
    "open the window, the room is far too warm.",
    "my favourite colour has always been deep blue.",
    "the old clock on the wall stopped at midnight.",
    "bring your own book to the reading group.",
    "the river flows quietly past the sleeping town.",
)
_BATCH = 3
_LR = 5e-5
_MERGE_OK = (0.6, 0.4)
_MERGE_SCALED = (0.7, 0.6)


class GenerationError(XttsQaError):
    """The artefacts cannot be generated on this machine (espeak-ng missing, coqui's Trainer failed).

    Attributes:
        path: the program or the log file that says why.
        problem: what went wrong, in one sentence.
        fix: what to do about it.
    """

    def __init__(self, path: str | Path, problem: str, fix: str) -> None:
        self.path, self.problem, self.fix = Path(path), problem, fix
        super().__init__(f"{path}: {problem} Fix: {fix}")


@dataclass(frozen=True)
class TrainerArtefacts:
    """Paths of one cached generation (every path exists) and what coqui did with each artefact.

    Attributes:
        root: the generation's folder.
        base: tiny base model folder in the released layout (model.pth, config.json, vocab.json, dvae.pth,
            mel_stats.pth, speakers_xtts.pth).
        dataset: LJSpeech-style dataset (wavs/*.wav at 22050 Hz + metadata.csv) of espeak-ng clips.
        run1: the first fine-tune's Trainer output folder (config.json, checkpoint_N.pth, best_model_N.pth,
            best_model.pth, trainer_0_log.txt).
        checkpoint: run1's ``checkpoint_N.pth``.
        best_model: run1's ``best_model.pth``.
        export: compacted export of run1's best model (AllTalk / xtts-finetune-webui form) as a model folder.
        export_bad_dvae: the same export whose dvae.pth has ``dvae.``-prefixed keys (AllTalk's bug).
        run2_from_export: Trainer output folder of a second fine-tune started from ``export``.
        run2_from_bad_export: Trainer output folder of a second fine-tune started from ``export_bad_dvae``.
        restore_from_export: Trainer output folder of a Trainer given ``restore_path`` = the export's model.pth.
        restore_from_inference: Trainer output folder of a Trainer given ``restore_path`` = the base's inference
            model.pth (it fails; its log is kept).
        merge_ok: model folder of a naive float32 weighted average of run1's and run2_from_export's exports,
            weights summing to 1.
        merge_scaled: the same with weights summing to 1.3.
        observations_file: ``observations.json``.
        observations: its content.
    """

    root: Path
    base: Path
    dataset: Path
    run1: Path
    checkpoint: Path
    best_model: Path
    export: Path
    export_bad_dvae: Path
    run2_from_export: Path
    run2_from_bad_export: Path
    restore_from_export: Path
    restore_from_inference: Path
    merge_ok: Path
    merge_scaled: Path
    observations_file: Path
    observations: dict[str, Any] = field(repr=False, compare=False)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def cache_key() -> str:
    """The cache folder name: generator version + coqui-tts, trainer and torch versions."""
    parts = [
        f"g{GENERATOR_VERSION}",
        f"coqui-tts-{_version('coqui-tts')}",
        f"trainer-{_version('coqui-tts-trainer')}",
        f"torch-{torch.__version__}",
    ]
    return re.sub(r"[^A-Za-z0-9._+-]", "_", "_".join(parts))


def trainer_artefacts(root: Path | None = None) -> TrainerArtefacts:
    """Return the cached generation, building it first when it is missing or incomplete.

    Args:
        root: folder that holds generations (default: ``<xtts_qa cache>/trainer_runs``).

    Raises:
        GenerationError: espeak-ng is missing, or coqui's Trainer failed (the log file is named).
    """
    root = Path(root) if root is not None else cache_dir("trainer_runs")
    root.mkdir(parents=True, exist_ok=True)
    link = root / cache_key()
    found = _load_complete(link)
    if found is not None:
        return found
    with _lock(root / f".{cache_key()}.lock"):
        found = _load_complete(link)  # another process may have finished it while we waited
        if found is not None:
            return found
        _remove_stale(root, link)
        work = Path(tempfile.mkdtemp(prefix=f".{cache_key()}.", dir=root))
        started = time.perf_counter()
        try:
            manifest = _build(work)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        manifest["build_seconds"] = round(time.perf_counter() - started, 1)
        (work / _MANIFEST).write_text(json.dumps(manifest, indent=2))
        _publish(work, link)
        log.info("built real coqui Trainer artefacts in %s (%.0f s)", work, manifest["build_seconds"])
    found = _load_complete(link)
    if found is None:
        raise GenerationError(link, "the artefacts just built are not readable.", "remove the folder and run again.")
    return found


# ----------------------------------------------------------------------------------------------------- cache


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _load_complete(link: Path) -> TrainerArtefacts | None:
    """The generation behind ``link`` if its manifest is there and every file it lists has the recorded size."""
    manifest_path = link / _MANIFEST
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
        folder = link.resolve()
        for rel, size in manifest["files"].items():
            if (folder / rel).stat().st_size != size:
                return None
        paths = {name: folder / rel for name, rel in manifest["paths"].items()}
        observations = json.loads((folder / _OBSERVATIONS).read_text())
    except (OSError, ValueError, KeyError):
        return None
    return TrainerArtefacts(root=folder, observations=observations, **paths)


def _remove_stale(root: Path, link: Path) -> None:
    """Drop half-built folders of killed builds and whatever incomplete thing sits at ``link``."""
    keep = link.resolve() if link.is_symlink() and _load_complete(link) else None
    if link.is_symlink():
        target = link.resolve()
        link.unlink()
        if target != keep and target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
    elif link.is_dir():
        shutil.rmtree(link)
    elif link.exists():
        link.unlink()
    for stale in root.glob(f".{link.name}.*"):
        if stale.is_dir() and stale != keep:
            shutil.rmtree(stale, ignore_errors=True)


def _publish(work: Path, link: Path) -> None:
    tmp_link = link.parent / f".{link.name}.link-{os.getpid()}"
    tmp_link.unlink(missing_ok=True)
    os.symlink(work.name, tmp_link)
    os.replace(tmp_link, link)


def _file_sizes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------------------------------- build


@contextlib.contextmanager
def _keep_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        # importing coqui's XTTS dataset module calls torch.set_num_threads(1) for the whole process
        torch.set_num_threads(threads)


def _build(work: Path) -> dict[str, Any]:
    with _keep_threads():
        return _build_all(work)


def _build_all(work: Path) -> dict[str, Any]:
    from xtts_qa.demo.factory import build_model_folder

    obs: dict[str, Any] = {
        "versions": {d: _version(d) for d in ("coqui-tts", "coqui-tts-trainer", "torch")},
        "generator_version": GENERATOR_VERSION,
        "seed": SEED,
    }
    base = work / "base"
    build_model_folder(base, "tiny", seed=SEED)
    dataset = work / "dataset"
    obs["dataset"] = _make_dataset(dataset, SEED)

    run1, obs["run1"] = _fit(
        work / "run1", base, dataset, xtts_checkpoint=base / "model.pth", support=base, checkpoints=True
    )
    checkpoint = _newest(run1, "checkpoint_*.pth")
    best_model = run1 / "best_model.pth"
    obs["run1"]["checkpoint"] = _describe_trainer_file(checkpoint, base)
    obs["run1"]["best_model"] = _describe_trainer_file(best_model, base)

    export = _export(best_model, work / "export", run_config=run1 / "config.json", base=base)
    export_bad = _export(best_model, work / "export_bad_dvae", run_config=run1 / "config.json", base=base)
    prefixed = {f"dvae.{k}": v for k, v in torch.load(base / "dvae.pth", weights_only=True).items()}
    (export_bad / "dvae.pth").unlink()
    torch.save(prefixed, export_bad / "dvae.pth")

    run2, obs["run2_from_export"] = _fit(
        work / "run2_from_export", base, dataset, xtts_checkpoint=export / "model.pth", support=export
    )
    run2_bad, obs["run2_from_bad_export"] = _fit(
        work / "run2_from_bad_export", base, dataset, xtts_checkpoint=export_bad / "model.pth", support=export_bad
    )
    for name, run in (("run2_from_export", run2), ("run2_from_bad_export", run2_bad)):
        obs[name]["best_model"] = _describe_trainer_file(run / "best_model.pth", base)

    restore_export, obs["restore_from_export"] = observe_restore(
        export / "model.pth", base, work / "restore_from_export", support=export, compare_with=best_model
    )
    restore_inf, obs["restore_from_inference"] = observe_restore(
        base / "model.pth", base, work / "restore_from_inference"
    )

    export2 = _export(run2 / "best_model.pth", work / "export_run2", run_config=run2 / "config.json", base=base)
    merge_ok = _merge(work / "merge_ok", [export / "model.pth", export2 / "model.pth"], _MERGE_OK, base, run1)
    merge_scaled = _merge(
        work / "merge_scaled", [export / "model.pth", export2 / "model.pth"], _MERGE_SCALED, base, run1
    )
    for name, folder, weights in (("merge_ok", merge_ok, _MERGE_OK), ("merge_scaled", merge_scaled, _MERGE_SCALED)):
        obs[name] = {"weights": list(weights), **_merge_vs_base(folder / "model.pth", base)}

    loads = {
        "base": base / "model.pth",
        "run1_checkpoint": checkpoint,
        "run1_best_model": best_model,
        "export": export / "model.pth",
        "export_bad_dvae": export_bad / "model.pth",
        "run2_from_export": run2 / "best_model.pth",
        "run2_from_bad_export": run2_bad / "best_model.pth",
        "merge_ok": merge_ok / "model.pth",
        "merge_scaled": merge_scaled / "model.pth",
    }
    obs["strict_load"] = {
        name: strict_load(path, base, work / "logs" / f"strict_load_{name}.log") for name, path in loads.items()
    }
    (work / _OBSERVATIONS).write_text(json.dumps(obs, indent=2, default=str))
    paths = {
        "base": base,
        "dataset": dataset,
        "run1": run1,
        "checkpoint": checkpoint,
        "best_model": best_model,
        "export": export,
        "export_bad_dvae": export_bad,
        "run2_from_export": run2,
        "run2_from_bad_export": run2_bad,
        "restore_from_export": restore_export,
        "restore_from_inference": restore_inf,
        "merge_ok": merge_ok,
        "merge_scaled": merge_scaled,
        "observations_file": work / _OBSERVATIONS,
    }
    return {"paths": {k: str(v.relative_to(work)) for k, v in paths.items()}, "files": _file_sizes(work)}


def _make_dataset(folder: Path, seed: int) -> dict[str, Any]:
    """espeak-ng clips of one seeded English voice at 22050 Hz and an LJSpeech-style metadata.csv."""
    import soundfile as sf

    if shutil.which("espeak-ng") is None:
        raise GenerationError(
            "espeak-ng",
            "is not installed; the trainer artefacts need real speech.",
            "run `bash scripts/bootstrap.sh` (or `apt-get install espeak-ng`).",
        )
    rng = random.Random(seed)
    voice = rng.choice(_VOICES)
    wavs = folder / "wavs"
    wavs.mkdir(parents=True)
    rows, seconds = [], []
    for i, text in enumerate(_SENTENCES):
        name = f"clip{i:03d}"
        raw = wavs / f"{name}.raw.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(rng.randint(150, 175)), "-w", str(raw), "--", text],
            check=True,
            capture_output=True,
        )
        audio, rate = sf.read(raw, dtype="float32")
        raw.unlink()
        if rate != 22050:
            import torchaudio

            audio = torchaudio.functional.resample(torch.from_numpy(audio), rate, 22050).numpy()
        sf.write(wavs / f"{name}.wav", audio, 22050, subtype="PCM_16")
        seconds.append(len(audio) / 22050)
        rows.append(f"{name}|{text}|{text}")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    return {
        "voice": voice,
        "clips": len(rows),
        "seconds_min": round(min(seconds), 2),
        "seconds_max": round(max(seconds), 2),
    }


@contextlib.contextmanager
def _captured(log_file: Path) -> Iterator[None]:
    """Send the Trainer's and coqui's log records and prints to ``log_file`` instead of the console."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, mode="a", encoding="utf8")
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    saved = []
    for name in ("trainer", "TTS"):
        lg = logging.getLogger(name)
        saved.append((lg, list(lg.handlers), lg.level, lg.propagate))
        lg.handlers = [handler]
        lg.setLevel(logging.INFO)
        lg.propagate = False
    try:
        with (
            open(log_file, "a", encoding="utf8") as out,
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(out),
        ):
            yield
    finally:
        for lg, handlers, level, propagate in saved:
            for h in lg.handlers:
                if h not in handlers:
                    h.close()  # also the FileHandler each Trainer adds for its trainer_0_log.txt
            lg.handlers, lg.level, lg.propagate = handlers, level, propagate


def _gpt_config(
    out: Path, base: Path, dataset: Path, *, xtts_checkpoint: Path, support: Path, checkpoints: bool = False
) -> Any:
    """The recipe's GPTArgs / GPTTrainerConfig at tiny size, offline, CPU, no test sentences, 0 loader workers."""
    from TTS.config.shared_configs import BaseDatasetConfig
    from TTS.tts.layers.xtts.trainer.gpt_trainer import GPTArgs, GPTTrainerConfig
    from TTS.tts.models.xtts import XttsAudioConfig

    margs = json.loads((base / "config.json").read_text())["model_args"]
    model_args = GPTArgs(
        max_conditioning_length=66150,
        min_conditioning_length=22050,
        debug_loading_failures=False,
        max_wav_length=255995,
        max_text_length=200,
        mel_norm_file=str(support / "mel_stats.pth"),
        dvae_checkpoint=str(support / "dvae.pth"),
        xtts_checkpoint=str(xtts_checkpoint),
        tokenizer_file=str(support / "vocab.json"),
        gpt_num_audio_tokens=margs["gpt_num_audio_tokens"],
        gpt_start_audio_token=margs["gpt_start_audio_token"],
        gpt_stop_audio_token=margs["gpt_stop_audio_token"],
        gpt_use_masking_gt_prompt_approach=True,
        gpt_use_perceiver_resampler=True,
        gpt_layers=margs["gpt_layers"],
        gpt_n_model_channels=margs["gpt_n_model_channels"],
        gpt_n_heads=margs["gpt_n_heads"],
        decoder_input_dim=margs["decoder_input_dim"],
        gpt_max_audio_tokens=margs["gpt_max_audio_tokens"],
        gpt_max_text_tokens=margs["gpt_max_text_tokens"],
        gpt_max_prompt_tokens=margs["gpt_max_prompt_tokens"],
    )
    return GPTTrainerConfig(
        output_path=str(out),
        model_args=model_args,
        run_name="GPT_XTTS_tiny_FT",
        project_name="xtts_qa",
        run_description="xtts_qa test-time fine-tune",
        dashboard_logger="tensorboard",
        datasets=[
            BaseDatasetConfig(
                formatter="ljspeech",
                dataset_name="espeak",
                path=str(dataset),
                meta_file_train=str(dataset / "metadata.csv"),
                language="en",
            )
        ],
        audio=XttsAudioConfig(sample_rate=22050, dvae_sample_rate=22050, output_sample_rate=24000),
        batch_size=_BATCH,
        batch_group_size=0,
        eval_batch_size=_BATCH,
        num_loader_workers=0,
        num_eval_loader_workers=0,
        run_eval=False,
        epochs=1,
        print_step=1,
        plot_step=100,
        log_model_step=1000,
        save_step=2,
        save_n_checkpoints=1,
        save_checkpoints=checkpoints,
        print_eval=False,
        optimizer="AdamW",
        optimizer_wd_only_on_weights=True,
        optimizer_params={"betas": [0.9, 0.96], "eps": 1e-8, "weight_decay": 1e-2},
        lr=_LR,
        lr_scheduler="MultiStepLR",
        lr_scheduler_params={"milestones": [900000], "gamma": 0.5, "last_epoch": -1},
        test_sentences=[],
        training_seed=SEED,
        languages=json.loads((base / "config.json").read_text())["languages"],
    )


def _gpt_trainer(config: Any) -> Any:
    from TTS.tts.layers.xtts.trainer.gpt_trainer import GPTTrainer

    return GPTTrainer(config)


def _fit(
    out: Path, base: Path, dataset: Path, *, xtts_checkpoint: Path, support: Path, checkpoints: bool = False
) -> tuple[Path, dict[str, Any]]:
    """One recipe fine-tune (1 epoch of a few steps); returns the Trainer's run folder and what was observed.

    ``checkpoints`` also saves ``checkpoint_N.pth`` every 2 steps (each file is ~300 MB: the full-size DVAE rides
    along).
    """
    from trainer import Trainer, TrainerArgs
    from trainer.logging.dummy_logger import DummyLogger
    from TTS.tts.datasets import load_tts_samples

    log_file = out / "coqui_output.log"
    with _captured(log_file):
        config = _gpt_config(
            out, base, dataset, xtts_checkpoint=xtts_checkpoint, support=support, checkpoints=checkpoints
        )
        model = _gpt_trainer(config)
        observed: dict[str, Any] = {
            "xtts_checkpoint": str(xtts_checkpoint),
            "dvae_checkpoint": config.model_args.dvae_checkpoint,
            "dvae_after_init_vs_base": _dvae_vs_base(model, base),
        }
        train_samples, _ = load_tts_samples(config, eval_split=False)
        trainer = Trainer(
            # restore_path "" (TrainerArgs' default; the Trainer tests it for truth) is the recipe's restore_path=None
            TrainerArgs(restore_path="", skip_train_epoch=False, start_with_eval=False, grad_accum_steps=1),
            config,
            output_path=str(out),
            model=model,
            train_samples=train_samples,
            eval_samples=None,
            parse_command_line_args=False,
            dashboard_logger=DummyLogger(),
        )
        try:
            trainer.fit()
        except SystemExit as exc:  # Trainer.fit turns every failure into sys.exit(1) after printing the traceback
            raise GenerationError(
                log_file, f"coqui's Trainer.fit() failed (exit {exc.code}).", "read the traceback in this log file."
            ) from None
        observed["steps"] = trainer.total_steps_done
        observed["dvae_after_fit_vs_base"] = _dvae_vs_base(model, base)
        run = Path(trainer.output_path)
    text = log_file.read_text(errors="replace")
    observed["log"] = str(log_file.relative_to(out.parent))
    observed["dvae_restored_message"] = "DVAE weights restored from" in text
    observed["warnings"] = sorted({line.strip() for line in text.splitlines() if " WARNING " in line})[:20]
    return run, observed


def observe_trainer_start(
    xtts_checkpoint: Path, base: Path, log_file: Path, *, support: Path | None = None
) -> dict[str, Any]:
    """Build coqui's ``GPTTrainer`` as the recipe does to fine-tune from a model, and compare its DVAE with the base's.

    Args:
        xtts_checkpoint: the model.pth / checkpoint a new fine-tune starts from (``GPTArgs.xtts_checkpoint``).
        base: the base model folder (its config.json sizes the model; its dvae.pth is the reference).
        log_file: where coqui's log output goes.
        support: folder holding dvae.pth, mel_stats.pth and vocab.json passed to the trainer (default: beside
            ``xtts_checkpoint``).

    Returns:
        ``dvae_vs_base`` (keys, identical, max_abs_diff, differing_tensors) and ``dvae_restored_message``.
    """
    support = support or Path(xtts_checkpoint).parent
    start_mark = log_file.stat().st_size if log_file.exists() else 0
    with _keep_threads(), _captured(log_file):
        config = _gpt_config(
            log_file.parent, base, base.parent / "dataset", xtts_checkpoint=Path(xtts_checkpoint), support=support
        )
        model = _gpt_trainer(config)
    text = log_file.read_text(errors="replace")[start_mark:]
    return {"dvae_vs_base": _dvae_vs_base(model, base), "dvae_restored_message": "DVAE weights restored from" in text}


def observe_restore(
    restore_path: Path, base: Path, out: Path, *, support: Path | None = None, compare_with: Path | None = None
) -> tuple[Path, dict[str, Any]]:
    """Start coqui's Trainer with ``restore_path`` (it restores in ``Trainer.__init__``; nothing is trained).

    The GPTTrainer is configured as the recipe does (xtts_checkpoint = the base's model.pth; dvae_checkpoint,
    mel_norm_file and tokenizer_file from ``support``, default the base folder).

    Args:
        restore_path: the checkpoint given to ``TrainerArgs(restore_path=...)``.
        base: base model folder.
        out: output folder for the Trainer's run folder and ``coqui_output.log``.
        support: folder with dvae.pth, mel_stats.pth, vocab.json.
        compare_with: another restore_path; when given, the restored models are compared tensor by tensor.

    Returns:
        The Trainer's run folder and the observation: ``ok`` (or ``exception_type``/``exception``),
        ``restored_layers`` ([restored, total] when the Trainer fell back to a partial restore), ``restored_step``,
        ``missing_in_checkpoint`` (top-level groups), ``dvae_vs_base``, and the comparison.
    """
    with _keep_threads():
        return _restore(Path(out), base, Path(restore_path), support=support or base, compare_with=compare_with)


def _restore(
    out: Path, base: Path, restore_path: Path, *, support: Path, compare_with: Path | None
) -> tuple[Path, dict[str, Any]]:
    from trainer import Trainer, TrainerArgs
    from trainer.logging.dummy_logger import DummyLogger

    log_file = out / "coqui_output.log"
    observed: dict[str, Any] = {"restore_path": str(restore_path)}

    def start(path: Path, where: Path) -> Any:
        config = _gpt_config(where, base, base.parent / "dataset", xtts_checkpoint=base / "model.pth", support=support)
        model = _gpt_trainer(config)
        Trainer(
            TrainerArgs(restore_path=str(path), grad_accum_steps=1),
            config,
            output_path=str(where),
            model=model,
            train_samples=[],
            eval_samples=None,
            parse_command_line_args=False,
            dashboard_logger=DummyLogger(),
        )
        return model

    start_mark = log_file.stat().st_size if log_file.exists() else 0
    with _captured(log_file):
        try:
            model = start(restore_path, out)
        except Exception as exc:  # what coqui raises is the observation
            observed.update(ok=False, exception_type=type(exc).__name__, exception=str(exc))
            model = None
    text = log_file.read_text(errors="replace")[start_mark:]
    observed.update(_parse_restore_log(text))
    if model is not None:
        observed["ok"] = True
        observed["dvae_vs_base"] = _dvae_vs_base(model, base)
        if compare_with is not None:
            with _captured(out / "reference_output.log"):
                reference = start(compare_with, out / "reference_restore")
            observed["vs_restore_from"] = str(compare_with.name)
            observed["vs_restore_max_abs_diff"] = _max_state_diff(model.state_dict(), reference.state_dict())
            observed["reference_restore"] = _parse_restore_log(
                (out / "reference_output.log").read_text(errors="replace")
            )
    observed["log"] = str(log_file.relative_to(out.parent))
    runs = sorted(p for p in out.iterdir() if p.is_dir() and p.name != "reference_restore")
    return (runs[-1] if runs else out), observed


def _parse_restore_log(text: str) -> dict[str, Any]:
    layers = re.search(r"(\d+) / (\d+) layers are restored", text)
    step = re.search(r"Model restored from step (\d+)", text)
    return {
        "restored_layers": [int(layers.group(1)), int(layers.group(2))] if layers else None,
        "restored_step": int(step.group(1)) if step else None,
        "partial_initialization": "Partial model initialization" in text,
        "missing_in_checkpoint": sorted(
            {m.split(".")[0] for m in re.findall(r"Layer missing in the checkpoint: (\S+)", text)}
        ),
        "missing_in_checkpoint_count": len(re.findall(r"Layer missing in the checkpoint: ", text)),
    }


def _dvae_vs_base(model: Any, base: Path) -> dict[str, Any]:
    """Compare the DVAE a GPTTrainer really holds with the base's dvae.pth."""
    want = torch.load(base / "dvae.pth", weights_only=True)
    have = model.dvae.state_dict()
    return _compare(have, want)


def _compare(have: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> dict[str, Any]:
    common = sorted(set(have) & set(want))
    diffs = [_max_abs(have[k], want[k]) for k in common]
    return {
        "keys": len(have),
        "base_keys": len(want),
        "common_keys": len(common),
        "identical": len(common) == len(want) == len(have) and all(d == 0.0 for d in diffs),
        "max_abs_diff": max(diffs) if diffs else None,
        "differing_tensors": sum(d != 0.0 for d in diffs),
    }


def _max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return math.inf
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def _max_state_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    if set(a) != set(b):
        return math.inf
    return max((_max_abs(a[k], b[k]) for k in a), default=0.0)


def _newest(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern), key=lambda p: int(re.findall(r"\d+", p.stem)[-1]))
    if not found:
        raise GenerationError(folder, f"coqui's Trainer wrote no {pattern}.", "read coqui_output.log beside it.")
    return found[-1]


def _inference_view(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A trainer / export state dict as coqui's loader sees it (``get_compatible_checkpoint_state_dict``)."""
    out = {}
    for key, value in state.items():
        key = key[len("xtts.") :] if key.startswith("xtts.") else key
        if key.split(".")[0] not in ("torch_mel_spectrogram_style_encoder", "torch_mel_spectrogram_dvae", "dvae"):
            out[key] = value
    return out


def _describe_trainer_file(path: Path, base: Path) -> dict[str, Any]:
    """Top-level fields, key namespaces and which tensors changed vs the base (model and DVAE)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    state = blob["model"]
    base_state = torch.load(base / "model.pth", map_location="cpu", weights_only=True)["model"]
    view = _inference_view(state)
    changed = sorted(k for k in view if k in base_state and _max_abs(view[k], base_state[k]) != 0.0)
    dvae = {k[len("dvae.") :]: v for k, v in state.items() if k.startswith("dvae.")}
    return {
        "fields": sorted(blob),
        "step": blob.get("step"),
        "epoch": blob.get("epoch"),
        "has_optimizer": blob.get("optimizer") is not None,
        "namespaces": sorted({k.split(".")[0] for k in state}),
        "keys": len(state),
        "changed_vs_base": len(changed),
        "changed_groups": sorted({k.split(".")[0] for k in changed}),
        "non_gpt_changed": [k for k in changed if not k.startswith("gpt.")],
        "same_key_set_as_base": set(view) == set(base_state),
        "dvae_vs_base": _compare(dvae, torch.load(base / "dvae.pth", weights_only=True)) if dvae else None,
    }


def _export(best_model: Path, folder: Path, *, run_config: Path, base: Path) -> Path:
    """What AllTalk's and xtts-finetune-webui's "optimize/export model" do.

    ``del checkpoint["optimizer"]``, delete every model key containing "dvae", ``torch.save`` as model.pth; config.json
    from the training run; vocab.json, dvae.pth, mel_stats.pth and speakers_xtts.pth copied from the base model.
    """
    folder.mkdir(parents=True)
    checkpoint = torch.load(best_model, map_location="cpu", weights_only=True)
    del checkpoint["optimizer"]
    for key in list(checkpoint["model"].keys()):
        if "dvae" in key:
            del checkpoint["model"][key]
    torch.save(checkpoint, folder / "model.pth")
    shutil.copyfile(run_config, folder / "config.json")
    for name in ("vocab.json", "dvae.pth", "mel_stats.pth", "speakers_xtts.pth"):
        link_or_copy(base / name, folder / name)
    return folder


def _merge(folder: Path, inputs: list[Path], weights: tuple[float, ...], base: Path, run: Path) -> Path:
    """The naive merge people script: load each model.pth, average EVERY tensor in float32 with the weights."""
    folder.mkdir(parents=True)
    blobs = [torch.load(p, map_location="cpu", weights_only=True) for p in inputs]
    merged = dict(blobs[0])
    merged["model"] = {
        key: sum(w * blob["model"][key].float() for w, blob in zip(weights, blobs, strict=True))
        for key in blobs[0]["model"]
    }
    torch.save(merged, folder / "model.pth")
    shutil.copyfile(run / "config.json", folder / "config.json")
    for name in ("vocab.json", "dvae.pth", "mel_stats.pth", "speakers_xtts.pth"):
        link_or_copy(base / name, folder / name)
    return folder


def _merge_vs_base(model_path: Path, base: Path) -> dict[str, Any]:
    view = _inference_view(torch.load(model_path, map_location="cpu", weights_only=True)["model"])
    base_state = torch.load(base / "model.pth", map_location="cpu", weights_only=True)["model"]
    frozen = [k for k in base_state if not k.startswith("gpt.") and k in view]
    diffs = {k: _max_abs(view[k], base_state[k]) for k in frozen}
    rel = [d / max(float(base_state[k].double().abs().max()), 1e-30) for k, d in diffs.items() if base_state[k].numel()]
    gpt_ratio = [
        float(view[k].double().norm() / base_state[k].double().norm())
        for k in base_state
        if k.startswith("gpt.") and k in view and base_state[k].is_floating_point() and float(base_state[k].norm()) > 0
    ]
    gpt_ratio.sort()
    return {
        "frozen_tensors": len(frozen),
        "frozen_max_abs_diff": max(diffs.values(), default=0.0),
        "frozen_max_rel_diff": max(rel, default=0.0),
        "frozen_bit_identical": sum(d == 0.0 for d in diffs.values()),
        "int_buffers_now_float": sorted(
            k for k in frozen if not base_state[k].is_floating_point() and view[k].is_floating_point()
        ),
        "gpt_norm_ratio_median": gpt_ratio[len(gpt_ratio) // 2] if gpt_ratio else None,
    }


def strict_load(model_path: Path, base: Path, log_file: Path) -> dict[str, Any]:
    """``Xtts.load_checkpoint(strict=True)`` as an inference user calls it, with the base's config.json and vocab.json.

    Returns:
        ``{"ok": True}`` or ``{"ok": False, "exception_type": ..., "exception": ...}``.
    """
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    config = XttsConfig()
    config.load_json(str(base / "config.json"))
    model = Xtts(config)
    try:
        with _captured(log_file):
            model.load_checkpoint(
                config,
                checkpoint_path=str(model_path),
                vocab_path=str(base / "vocab.json"),
                speaker_file_path=str(base / "speakers_xtts.pth"),
                eval=True,
                strict=True,
            )
    except Exception as exc:
        return {"ok": False, "exception_type": type(exc).__name__, "exception": str(exc)[:500]}
    return {"ok": True}
