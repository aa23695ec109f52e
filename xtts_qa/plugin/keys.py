"""``config.stash`` / ``item.stash`` keys shared by the plugin's modules, and the settings accessor (light: imported
on every pytest run)."""

from __future__ import annotations

from typing import Any

import pytest

from xtts_qa.plugin.options import PluginSettings, read_settings, xtts_id_args

__all__ = ["PAYLOAD", "SETTINGS", "PLANNED", "COLLECTOR", "get_settings", "base_id"]

#: the plain-data result an item hands to the report writer (copied onto its test report, so it crosses xdist)
PAYLOAD = pytest.StashKey[dict[str, Any]]()
#: the merged settings of this pytest process (resolved once in pytest_configure)
SETTINGS = pytest.StashKey[PluginSettings]()
#: the run collector of the process that writes reports (a RunCollector; typed loosely to keep this module light)
COLLECTOR = pytest.StashKey[Any]()
#: ids of every xtts item this process collected, before any deselection (-k, -m, --lf, ids)
PLANNED = pytest.StashKey[list[str]]()


def get_settings(config: pytest.Config) -> PluginSettings:
    """The merged settings, resolved on first use (light, unlike :func:`xtts_qa.plugin.session.get_state`).

    Item ids given as arguments (``finetune::XQ401-dvae-key-set``) are taken out of ``config.args`` here, so pytest
    does not look for a file named ``finetune``; they select exactly those items.
    """
    settings = config.stash.get(SETTINGS, None)
    if settings is None:
        ids = xtts_id_args(config)
        settings = read_settings(config, tuple(ids))
        if settings.active and ids:
            for arg in ids:
                config.args.remove(arg)
        config.stash[SETTINGS] = settings
    return settings


def base_id(nodeid: str) -> str:
    """A node id without the ``@group`` suffix pytest-xdist adds under ``--dist loadgroup``."""
    head, sep, last = nodeid.rpartition("::")
    return head + sep + last.split("@", 1)[0] if "@" in last else nodeid
