"""``xtts-qa repair``: fix what the check finds, safely, into a new folder (see :mod:`xtts_qa.repair.plan`).

The public names are imported on first use, so ``xtts-qa`` registering the command does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ACTIONS": "actions",
    "Step": "actions",
    "RepairPlan": "plan",
    "plan_repair": "plan",
    "RepairResult": "apply",
    "apply_repair": "apply",
    "finetune_args": "apply",
    "LazyTensor": "writer",
    "NewFolder": "writer",
    "save_streaming": "writer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"xtts_qa.repair.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
