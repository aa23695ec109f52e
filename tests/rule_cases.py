"""Failing cases for the rules the scenario catalogue does not already break, as mutations of a healthy fine-tune.

Each case copies the healthy ``finetune`` folder, applies one mutation and names the rule that must fire.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from xtts_qa.safeload import load_torch


@dataclass(frozen=True)
class Case:
    code: str
    what: str
    mutate: Callable[[Path, Path], Path]  # (folder copy, base folder) -> target to check
    severity: str = "error"
    intent: str = "inference"
    with_base: bool = True


def _state(folder: Path) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in load_torch(folder / "model.pth", mmap=False)["model"].items()}


def _save(folder: Path, state: dict[str, torch.Tensor]) -> Path:
    (folder / "model.pth").unlink()
    torch.save({"model": state}, folder / "model.pth")
    return folder


def _edit_config(folder: Path, **args: object) -> Path:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config["model_args"].update(args)
    path.unlink()
    path.write_text(json.dumps(config))
    return folder


def _edit_vocab(folder: Path, old: str, new: str) -> Path:
    path = folder / "vocab.json"
    text = path.read_text().replace(old, new)
    path.unlink()
    path.write_text(text)
    return folder


def _mixed(folder: Path, base: Path) -> Path:
    state = _state(folder)
    key = next(k for k in state if k.startswith("gpt."))
    state[f"xtts.{key}"] = state.pop(key)
    return _save(folder, state)


def _duplicate_weight_norm(folder: Path, base: Path) -> Path:
    state = _state(folder)
    key = next(k for k in state if k.endswith("parametrizations.weight.original0"))
    stem = key[: -len("parametrizations.weight.original0")]
    state[stem + "weight_g"] = state[key].clone()  # a merge that mixed old and new weight-norm names
    state[stem + "weight_v"] = state[stem + "parametrizations.weight.original1"].clone()
    return _save(folder, state)


def _legacy_weight_norm(folder: Path, base: Path) -> Path:
    state = _state(folder)
    for key in [k for k in state if ".parametrizations.weight.original" in k]:
        suffix = "weight_g" if key.endswith("original0") else "weight_v"
        state[key.split(".parametrizations.")[0] + "." + suffix] = state.pop(key)
    return _save(folder, state)


def _foreign(folder: Path, base: Path) -> Path:
    state: dict[str, object] = dict(_state(folder))
    state["training_note"] = "epoch 3"
    (folder / "model.pth").unlink()
    torch.save({"model": state}, folder / "model.pth")
    return folder


def _drop_key(folder: Path, base: Path) -> Path:
    state = _state(folder)
    state.pop("gpt.final_norm.weight")
    return _save(folder, state)


def _extra_key(folder: Path, base: Path) -> Path:
    state = _state(folder)
    state["gpt.lora_A.weight"] = torch.zeros(4, 4)
    return _save(folder, state)


def _partial_inference_keys(folder: Path, base: Path) -> Path:
    state = _state(folder)
    state["gpt.gpt_inference.final_norm.weight"] = state["gpt.final_norm.weight"].clone()
    return _save(folder, state)


def _v1_inference_keys(folder: Path, base: Path) -> Path:
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    config = XttsConfig()
    config.load_json(str(folder / "config.json"))
    model = Xtts.init_from_config(config)
    model.load_checkpoint(config, checkpoint_dir=str(folder), eval=True)  # eval() adds gpt_inference copies
    return _save(folder, model.state_dict())


def _no_start(folder: Path, base: Path) -> Path:
    return _edit_vocab(folder, '"[START]"', '"[BEGIN]"')


def _empty_file(folder: Path, base: Path) -> Path:
    (folder / "mel_stats.pth").unlink()
    (folder / "mel_stats.pth").write_bytes(b"")
    return folder


def _missing_vocab(folder: Path, base: Path) -> Path:
    (folder / "vocab.json").unlink()
    return folder


def _missing_dvae(folder: Path, base: Path) -> Path:
    (folder / "dvae.pth").unlink()
    return folder


def _bad_config(folder: Path, base: Path) -> Path:
    return _edit_config(folder, gpt_n_heads=3)  # 64 channels are not divisible into 3 heads


def _channels(folder: Path, base: Path) -> Path:
    return _edit_config(folder, gpt_n_model_channels=128, decoder_input_dim=128)


def _layers(folder: Path, base: Path) -> Path:
    return _edit_config(folder, gpt_layers=2)


def _max_tokens(folder: Path, base: Path) -> Path:
    return _edit_config(folder, gpt_max_audio_tokens=400)


def _same_as_base(folder: Path, base: Path) -> Path:
    shutil.copyfile(base / "model.pth", folder / "model.pth.tmp")
    (folder / "model.pth").unlink()
    (folder / "model.pth.tmp").rename(folder / "model.pth")
    return folder


def _trainer_without_epoch(folder: Path, base: Path) -> Path:
    state = _state(folder)
    blob = {
        "config": {},
        "model": {f"xtts.{k}": v for k, v in state.items()},
        "optimizer": [{"state": {}, "param_groups": []}],
        "step": 10,
    }
    (folder / "model.pth").unlink()
    torch.save(blob, folder / "model.pth")
    return folder


def _trainer_step_string(folder: Path, base: Path) -> Path:
    state = _state(folder)
    blob = {
        "config": {},
        "model": {f"xtts.{k}": v for k, v in state.items()},
        "optimizer": [{"state": {}, "param_groups": []}],
        "step": "10",
        "epoch": 1,
    }
    (folder / "model.pth").unlink()
    torch.save(blob, folder / "model.pth")
    return folder


def _prefixed_dvae(folder: Path, base: Path) -> Path:
    dvae = torch.load(base / "dvae.pth", weights_only=True)
    (folder / "dvae.pth").unlink()
    torch.save({f"dvae.{k}": v for k, v in dvae.items()}, folder / "dvae.pth")
    return folder


def _float_counters(folder: Path, base: Path) -> Path:
    state = _state(folder)
    state = {k: (v.float() if not v.is_floating_point() else v) for k, v in state.items()}
    (folder / "model.pth").unlink()
    torch.save({"model": state}, folder / "model.pth")
    return folder


def _config_object_new_path(folder: Path, base: Path) -> Path:
    """model.pth with the config pickled as an XttsConfig object, its nested classes under their current module
    (what torch.save of a checkpoint dict holding the config does with coqui-tts >= 0.24)."""
    from TTS.tts.configs.xtts_config import XttsConfig

    config = XttsConfig()
    config.load_json(str(folder / "config.json"))
    blob = torch.load(folder / "model.pth", weights_only=True)
    blob["config"] = config
    (folder / "model.pth").unlink()
    torch.save(blob, folder / "model.pth")
    return folder


def _meta_tensor(folder: Path, base: Path) -> Path:
    state = _state(folder)
    state["gpt.text_head.weight"] = torch.empty(state["gpt.text_head.weight"].shape, device="meta")
    return _save(folder, state)


def _int_weights(folder: Path, base: Path) -> Path:
    state = _state(folder)
    state["gpt.text_head.weight"] = state["gpt.text_head.weight"].long()
    return _save(folder, state)


def _mel_stats_shape(folder: Path, base: Path) -> Path:
    (folder / "mel_stats.pth").unlink()
    torch.save(torch.ones(40), folder / "mel_stats.pth")
    return folder


#: failing cases for rules the scenarios do not cover (or cover only incidentally)
CASES: tuple[Case, ...] = (
    Case("XQ001", "an empty mel_stats.pth", _empty_file),
    Case("XQ002", "vocab.json deleted", _missing_vocab),
    Case("XQ004", "one key carries the trainer prefix, the rest do not", _mixed),
    Case("XQ004", "a weight-norm parameter stored under both namings", _duplicate_weight_norm),
    Case("XQ005", "a string stored in the state dict", _foreign),
    Case("XQ006", "config.json with gpt_n_heads that does not divide the channels", _bad_config),
    Case("XQ101", "gpt.final_norm.weight dropped", _drop_key),
    Case("XQ102", "a LoRA tensor left in the state dict", _extra_key),
    Case("XQ104", "a partial set of gpt_inference keys", _partial_inference_keys),
    Case("XQ104", "the complete v1 set saved after eval()", _v1_inference_keys, severity="warning"),
    Case("XQ105", "weight-norm tensors saved with weight_g/weight_v names", _legacy_weight_norm, severity="info"),
    Case("XQ202", "[START] renamed in vocab.json", _no_start),
    Case("XQ303", "config.json says 128 channels", _channels),
    Case("XQ304", "config.json says 2 GPT layers", _layers),
    Case("XQ305", "config.json changed gpt_max_audio_tokens", _max_tokens, severity="warning"),
    Case("XQ503", "the base model.pth exported as the fine-tune", _same_as_base, severity="warning"),
    Case("XQ702", "fine-tune intent without dvae.pth", _missing_dvae, intent="finetune"),
    Case("XQ701", "trainer checkpoint without epoch, resumed", _trainer_without_epoch, intent="restore"),
    Case("XQ703", "trainer checkpoint whose step is a string, resumed", _trainer_step_string, intent="restore"),
    Case("XQ401", "dvae.pth with prefixed keys, fine-tuned from", _prefixed_dvae, intent="finetune"),
    Case("XQ401", "dvae.pth with prefixed keys, used to speak", _prefixed_dvae, intent="inference", severity="info"),
    Case(
        "XQ603",
        "num_batches_tracked averaged into floats, fine-tuned from",
        _float_counters,
        intent="finetune",
        severity="warning",
    ),
    Case("XQ007", "config pickled as an XttsConfig object (coqui >= 0.24 module paths)", _config_object_new_path),
    Case("XQ604", "a meta tensor (no data) in model.pth", _meta_tensor),
    Case("XQ605", "gpt.text_head.weight saved as int64 (weights truncated)", _int_weights),
    Case("XQ802", "mel_stats.pth of shape (40,), fine-tuned from", _mel_stats_shape, intent="finetune"),
)
