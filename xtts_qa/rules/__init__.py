"""Every structural rule of xtts_qa, one module per group; importing this package registers them all."""

from xtts_qa.rules import config, dvae, frozen, inputs, keys, merge, numeric, support, tensors, trainer, vocab  # noqa: F401
from xtts_qa.rules.base import CheckOptions, Context, Rule, get_rule, registry, select_rules

__all__ = ["CheckOptions", "Context", "Rule", "get_rule", "registry", "select_rules"]
