"""The expected architecture comes from coqui-tts's classes and is cached so later checks skip coqui-tts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from xtts_qa.architecture import expected_architecture
from xtts_qa.demo.factory import model_args_for


def test_full_size_xtts_v2_architecture() -> None:
    arch = expected_architecture(model_args_for("full"), 6681)
    assert len(arch.model) == 963
    params = sum(_numel(s) for s, dtype in arch.model.values() if dtype.startswith("float"))
    assert round(params / 1e6, 1) == 466.9
    assert arch.trainer_key_count == 1023  # the "0/1023 layers are restored" of the failure catalogue
    assert arch.model["gpt.text_embedding.weight"][0] == (6681, 1024)
    assert arch.model["gpt.mel_embedding.weight"][0] == (1026, 1024)
    assert len(arch.dvae) == 56 and arch.dvae["codebook.embed"][0] == (512, 1024)


def test_text_tokens_follow_the_vocab() -> None:
    arch = expected_architecture(model_args_for("tiny"), 100)
    assert arch.model["gpt.text_embedding.weight"][0] == (100, 64)


def test_cached_architecture_does_not_import_coqui(family) -> None:
    """The first check of a kind of model builds the architecture; the second one never imports coqui-tts."""
    from xtts_qa.engine import check

    fam, targets = family
    check(targets["finetune"])  # the first run: fills the architecture cache
    code = (
        "import sys; from xtts_qa.engine import check; r = check(sys.argv[1]); print(r.exit_code, 'TTS' in sys.modules)"
    )
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, "-c", code, str(targets["finetune"])], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.split() == ["0", "False"], out.stderr[-2000:]


def test_corrupt_cache_entry_is_rebuilt(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XTTS_QA_CACHE", str(tmp_path))
    first = expected_architecture(model_args_for("tiny"), 90)
    for entry in (tmp_path / "arch").iterdir():
        entry.write_text("{broken")
    assert expected_architecture(model_args_for("tiny"), 90) == first


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
