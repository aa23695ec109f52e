"""The xtts_qa pytest plugin (registered through the ``pytest11`` entry point ``xtts_qa``).

``pytest --xtts-checkpoint runs/*/model-folder -m health`` runs every structural rule on every checkpoint as a
test item (``finetune::XQ401-dvae-key-set``); suites (``--xtts-suite``) add an ``eval`` item per sentence. Each run
writes JSON and HTML reports and appends to the SQLite history. The hooks live in :mod:`xtts_qa.plugin.hooks`,
the fixtures in :mod:`xtts_qa.plugin.fixtures`; pytest discovers them through the names imported here.

The plugin is opt-in (``--xtts-checkpoint``, ``--xtts``, ``-m health``/``-m eval`` or an xtts item id) and light:
importing this module loads neither torch, coqui-tts, numpy nor :mod:`xtts_qa.engine`; they load when an xtts item
or fixture is used (``benchmarks/bench_plugin_import.py`` measures it).
"""

from __future__ import annotations

from xtts_qa.plugin.fixtures import (
    xtts_bundle,
    xtts_check_report,
    xtts_checkpoint,
    xtts_device,
    xtts_eval,
    xtts_settings,
    xtts_synthesiser,
)
from xtts_qa.plugin.hooks import (
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_generate_tests,
    pytest_report_header,
    pytest_report_teststatus,
    pytest_runtest_makereport,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_unconfigure,
)

__all__ = [
    "pytest_addoption",
    "pytest_configure",
    "pytest_unconfigure",
    "pytest_collection_modifyitems",
    "pytest_generate_tests",
    "pytest_runtest_makereport",
    "pytest_report_teststatus",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_report_header",
    "xtts_settings",
    "xtts_device",
    "xtts_checkpoint",
    "xtts_bundle",
    "xtts_check_report",
    "xtts_synthesiser",
    "xtts_eval",
]
