"""Shared fixtures: one seeded family of tiny real XTTS-v2 models per test session, built with coqui-tts."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Generated models, architectures and audio go to a per-session cache outside the repo, never into it;
# a cache this session made is removed at its end (a user's own XTTS_QA_CACHE is left alone).
_OWN_CACHE: str | None = None
#: where expensive, version-keyed artefacts (real Trainer runs) live across test sessions: the user's xtts_qa
#: cache as it was before this session pointed XTTS_QA_CACHE at its own throwaway folder
PERSISTENT_CACHE = Path(
    os.environ.get("XTTS_QA_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xtts_qa"
)
if "XTTS_QA_CACHE" not in os.environ:
    _OWN_CACHE = os.environ["XTTS_QA_CACHE"] = tempfile.mkdtemp(prefix="xtts_qa_test_cache_")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _OWN_CACHE:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def family_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("family")


@pytest.fixture(scope="session")
def family(family_root: Path):
    """The catalogued scenarios built once: (Family, {scenario name: target path})."""
    from xtts_qa.demo.scenarios import build_family

    return build_family(family_root)


@pytest.fixture(scope="session")
def base_bundle(family):
    from xtts_qa.checkpoint import open_bundle

    return open_bundle(family[0].base.folder)


@pytest.fixture(scope="session")
def trainer_runs():
    """Real coqui-tts Trainer artefacts (``xtts_qa.demo.trainer_runs``): built once per version key (about a minute)
    in the persistent cache, reused by later sessions and CI runs on the same machine."""
    from xtts_qa.demo.trainer_runs import trainer_artefacts

    return trainer_artefacts(PERSISTENT_CACHE / "trainer_runs")
