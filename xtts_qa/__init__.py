"""xtts_qa: health checks and evaluation for Coqui XTTS-v2 checkpoints.

Data flows one way: files -> :mod:`xtts_qa.checkpoint` (a model bundle) -> :mod:`xtts_qa.rules`
-> :mod:`xtts_qa.results` -> reports.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
