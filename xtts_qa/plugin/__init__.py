"""The xtts_qa pytest plugin, split by job.

- :mod:`~xtts_qa.plugin.options`: the ``xtts_qa`` option group and ini settings, resolved into settings once.
- :mod:`~xtts_qa.plugin.session`: per-session state in ``config.stash`` (bundles opened once, device choice).
- :mod:`~xtts_qa.plugin.items`: collectors and items (checkpoint x rule, checkpoint x suite sentence).
- :mod:`~xtts_qa.plugin.evalbridge`: the adapter to :mod:`xtts_qa.evaluation` (skips cleanly without it).
- :mod:`~xtts_qa.plugin.collector`: gathers item results (also across pytest-xdist workers) into a run record.
- :mod:`~xtts_qa.plugin.fixtures`: fixtures for users' own tests.
- :mod:`~xtts_qa.plugin.hooks`: the hook implementations that tie them together.
"""
