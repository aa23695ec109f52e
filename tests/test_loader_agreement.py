"""The engine's "coqui-tts can load this" verdict matches what Xtts.load_checkpoint(strict=True) really does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rule_cases import CASES

from xtts_qa.demo.scenarios import SCENARIOS
from xtts_qa.engine import check


def coqui_loads(target: Path) -> bool:
    """Load with coqui-tts exactly as a user would; any exception means it does not load."""
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    folder = target if target.is_dir() else target.parent
    try:
        config = XttsConfig()
        config.load_json(str(folder / "config.json"))
        model = Xtts(config)
        kwargs = {"checkpoint_path": str(target)} if target.is_file() else {"checkpoint_dir": str(folder)}
        model.load_checkpoint(config, eval=True, strict=True, **kwargs)
    except Exception:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_scenario_verdict_matches_coqui(name: str, family, tmp_path: Path) -> None:
    fam, targets = family
    src = targets[name]
    # coqui-tts may rewrite legacy checkpoints in place: load a copy, never the fixture
    folder = shutil.copytree(src if src.is_dir() else src.parent, tmp_path / "copy")
    target = folder if src.is_dir() else folder / src.name
    verdict = check(target).loads_in_coqui
    assert verdict is coqui_loads(target)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c.code[2] in "01236"], ids=lambda c: f"{c.code}-{c.what[:30]}")
def test_case_verdict_matches_coqui(case, family, tmp_path: Path) -> None:
    fam, targets = family
    folder = shutil.copytree(targets["finetune"], tmp_path / "model")
    target = case.mutate(folder, fam.base.folder)
    assert check(target).loads_in_coqui is coqui_loads(target)
