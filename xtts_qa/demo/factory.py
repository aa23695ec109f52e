"""Build real XTTS-v2-architecture model folders with coqui-tts's own classes and seeded random weights.

``tiny`` models (1 GPT layer, 64 channels; the HiFi-GAN decoder and speaker encoder keep their real size) build
in about a second; ``full`` models have the released XTTS-v2 architecture (963 keys, 466.9 M parameters, a
1.87 GB model.pth and a 211 MB dvae.pth). Their speech is garbled by construction: they exist to exercise the
loaders and rules on the real key namespaces, shapes and dtypes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("xtts_qa")

__all__ = [
    "LANGUAGES",
    "SIZES",
    "ModelFiles",
    "model_args_for",
    "write_vocab",
    "build_model_folder",
    "save_inference",
    "save_trainer",
]

#: XTTS-v2's 17 languages, as in its config.json
LANGUAGES = ["en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh-cn", "hu", "ko", "ja", "hi"]

_V2_ARGS: dict[str, Any] = {
    "gpt_layers": 30,
    "gpt_n_model_channels": 1024,
    "gpt_n_heads": 16,
    "gpt_number_text_tokens": 6681,
    "gpt_num_audio_tokens": 1026,
    "gpt_start_audio_token": 1024,
    "gpt_stop_audio_token": 1025,
    "gpt_max_audio_tokens": 605,
    "gpt_max_text_tokens": 402,
    "gpt_max_prompt_tokens": 70,
    "gpt_use_perceiver_resampler": True,
    "gpt_code_stride_len": 1024,
    "input_sample_rate": 22050,
    "output_sample_rate": 24000,
    "output_hop_length": 256,
    "decoder_input_dim": 1024,
    "d_vector_dim": 512,
    "cond_d_vector_in_each_upsampling_layer": True,
    "duration_const": 102400,
    "kv_cache": True,
}
SIZES: dict[str, dict[str, Any]] = {
    "full": dict(_V2_ARGS),
    "tiny": {
        **_V2_ARGS,
        "gpt_layers": 1,
        "gpt_n_model_channels": 64,
        "gpt_n_heads": 2,
        "decoder_input_dim": 64,
        "gpt_number_text_tokens": 0,
    },
}
_FULL_TEXT_TOKENS = 6681


@dataclass(frozen=True)
class ModelFiles:
    """Paths of one generated model folder."""

    folder: Path

    def __getattr__(self, role: str) -> Path:
        from xtts_qa.checkpoint import ROLES

        if role in ROLES:
            return self.folder / ROLES[role]
        raise AttributeError(role)


def model_args_for(size: str) -> dict[str, Any]:
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}")
    return dict(SIZES[size])


def write_vocab(path: Path, languages: list[str], total: int | None = None) -> dict[str, int]:
    """Write a real HF ``tokenizers`` BPE vocab.json with XTTS's special and language tokens.

    ``total`` pads the vocabulary with unreachable filler tokens to that size (6681 for full-size models).
    """
    from tokenizers import Tokenizer
    from tokenizers.models import BPE
    from tokenizers.pre_tokenizers import Whitespace

    specials = ["[STOP]", "[UNK]", "[SPACE]"]
    lang_tokens = sorted({f"[{lang.split('-')[0]}]" for lang in languages})
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-:;\"()")
    tokens = specials + chars + lang_tokens + ["[START]"]
    if total is not None:
        tokens += [f"<f{i}>" for i in range(total - len(tokens))]
    vocab = {t: i for i, t in enumerate(tokens)}
    tokenizer = Tokenizer(BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.add_special_tokens(specials + lang_tokens + ["[START]"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return vocab


def _config_dict(model_args: dict[str, Any]) -> dict[str, Any]:
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import XttsArgs

    config = XttsConfig(model_args=XttsArgs(**model_args), languages=list(LANGUAGES))
    data: dict[str, Any] = config.to_dict()
    return data


def _build_xtts(config: dict[str, Any], vocab_file: Path, seed: int) -> torch.nn.Module:
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    cfg = XttsConfig()
    cfg.from_dict(json.loads(json.dumps(config)))
    tok = VoiceBpeTokenizer(str(vocab_file))  # sizes the GPT exactly as Xtts.init_models() does
    cfg.model_args.gpt_number_text_tokens = tok.get_number_tokens()
    cfg.model_args.gpt_start_text_token = tok.tokenizer.token_to_id("[START]")
    cfg.model_args.gpt_stop_text_token = tok.tokenizer.token_to_id("[STOP]")
    torch.manual_seed(seed)
    with torch.no_grad():
        model: torch.nn.Module = Xtts(cfg)
        model.get_buffer("mel_stats").copy_(1.0 + torch.rand(80, generator=torch.Generator().manual_seed(seed + 7)))
    return model  # not .eval(): Xtts.eval() adds gpt_inference copies to the state dict


def build_dvae(num_audio_tokens: int, seed: int) -> dict[str, torch.Tensor]:
    """The DiscreteVAE GPTTrainer builds, with seeded random weights, as a bare state dict."""
    from TTS.tts.layers.xtts.dvae import DiscreteVAE

    from xtts_qa.architecture import DVAE_ARGS

    torch.manual_seed(seed + 11)
    state: dict[str, torch.Tensor] = DiscreteVAE(num_tokens=num_audio_tokens - 2, **DVAE_ARGS).state_dict()
    return state


def trainer_mel_tensors(model_args: dict[str, Any], sample_rate: int = 22050) -> dict[str, torch.Tensor]:
    """GPTTrainer's torch_mel_spectrogram_* buffers, from coqui-tts's TorchMelSpectrogram."""
    from TTS.tts.layers.tortoise.arch_utils import TorchMelSpectrogram

    perceiver = model_args.get("gpt_use_perceiver_resampler", True)
    style = TorchMelSpectrogram(
        filter_length=2048 if perceiver else 4096,
        hop_length=256 if perceiver else 1024,
        win_length=1024 if perceiver else 4096,
        normalize=False,
        sampling_rate=sample_rate,
        mel_fmin=0,
        mel_fmax=8000,
        n_mel_channels=80,
        mel_norm_file=None,
    )
    dvae = TorchMelSpectrogram(mel_norm_file=None, sampling_rate=sample_rate)
    out = {f"torch_mel_spectrogram_style_encoder.{k}": v for k, v in style.state_dict().items()}
    out.update({f"torch_mel_spectrogram_dvae.{k}": v for k, v in dvae.state_dict().items()})
    return out


def speakers_for(
    model_args: dict[str, Any], seed: int, names: tuple[str, ...] = ("Ana Florence", "Claribel Dervla")
) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed + 23)
    channels, dim = model_args["gpt_n_model_channels"], model_args["d_vector_dim"]
    return {
        name: {
            "gpt_cond_latent": torch.randn(1, 32, channels, generator=g),
            "speaker_embedding": torch.randn(1, dim, 1, generator=g),
        }
        for name in names
    }


def save_inference(state: dict[str, torch.Tensor], path: Path) -> None:
    """Save like a released / inference model.pth: ``{"model": state_dict}``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state}, path)


def save_trainer(
    state: dict[str, torch.Tensor],
    dvae: dict[str, torch.Tensor] | None,
    mel: dict[str, torch.Tensor] | None,
    config: dict[str, Any],
    path: Path,
    *,
    step: int = 1000,
    epoch: int = 3,
    optimizer: bool = True,
) -> None:
    """Save like coqui's Trainer (``trainer.io.save_model``): xtts.* / dvae.* / torch_mel_* keys plus run state."""
    model = {f"xtts.{k}": v for k, v in state.items()}
    if dvae is not None:
        model.update({f"dvae.{k}": v for k, v in dvae.items()})
    if mel is not None:
        model.update(mel)
    blob: dict[str, Any] = {"config": config, "model": model, "scaler": None, "scheduler": None}
    if optimizer:
        blob["optimizer"] = [
            {"state": {}, "param_groups": [{"lr": 5e-6, "betas": (0.9, 0.96), "params": list(range(8))}]}
        ]
    if step is not None:
        blob["step"] = step
    if epoch is not None:
        blob["epoch"] = epoch
    blob["date"] = "November 22, 2026"
    blob["model_loss"] = {"train_loss": 1.23}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(blob, path)


def build_model_folder(folder: Path, size: str = "tiny", seed: int = 0) -> ModelFiles:
    """Write a complete base model folder.

    It holds model.pth, config.json, vocab.json, dvae.pth, mel_stats.pth and speakers_xtts.pth.
    """
    folder.mkdir(parents=True, exist_ok=True)
    args = model_args_for(size)
    files = ModelFiles(folder)
    write_vocab(files.vocab, LANGUAGES, total=_FULL_TEXT_TOKENS if size == "full" else None)
    config = _config_dict(args)
    files.config.write_text(json.dumps(config, indent=2))
    model = _build_xtts(config, files.vocab, seed)
    state = model.state_dict()
    save_inference(state, files.model)
    torch.save(model.get_buffer("mel_stats").clone(), files.mel_stats)
    torch.save(build_dvae(args["gpt_num_audio_tokens"], seed), files.dvae)
    torch.save(speakers_for(args, seed), files.speakers)
    log.info("built %s model in %s", size, folder)
    return files
