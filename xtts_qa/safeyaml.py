"""Bounded YAML: PyYAML's safe loader with limits on size, nesting depth and nodes after alias expansion.

A 500-byte document of nested aliases ("billion laughs") expands to billions of nodes in ``yaml.safe_load``;
here every node that composing *and* expanding aliases would visit is counted, so such a document is refused
in milliseconds with a one-line error. Limits: :mod:`xtts_qa.limits`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from xtts_qa.errors import InputError
from xtts_qa.inputs import read_text
from xtts_qa.limits import MAX_NESTING, MAX_YAML_BYTES, MAX_YAML_NODES

__all__ = ["YamlTooLarge", "load_yaml_text", "load_yaml"]


class YamlTooLarge(ValueError):
    """The document nests too deeply or expands to too many nodes."""


def _expanded_size(node: yaml.Node, memo: dict[int, int], depth: int) -> int:
    """Nodes ``node`` stands for once aliases are expanded (a shared node counts every time it is used)."""
    if depth > MAX_NESTING:
        raise YamlTooLarge(f"nests more than {MAX_NESTING} levels deep")
    key = id(node)
    if key in memo:
        if memo[key] < 0:
            raise YamlTooLarge("contains a recursive alias")
        return memo[key]
    memo[key] = -1
    total = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            total += _expanded_size(child, memo, depth + 1)
            if total > MAX_YAML_NODES:
                break
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            total += _expanded_size(k, memo, depth + 1) + _expanded_size(v, memo, depth + 1)
            if total > MAX_YAML_NODES:
                break
    if total > MAX_YAML_NODES:
        raise YamlTooLarge(f"expands to more than {MAX_YAML_NODES} nodes (nested aliases?)")
    memo[key] = total
    return total


def load_yaml_text(text: str) -> Any:
    """Parse one YAML document with the safe loader, within the node and depth limits.

    Raises:
        YamlTooLarge: too deep, too many nodes after alias expansion, or a recursive alias.
        yaml.YAMLError: the text is not valid YAML.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, {}, 1)
        return loader.construct_document(node)
    except RecursionError:
        raise YamlTooLarge(f"nests more than {MAX_NESTING} levels deep") from None
    finally:
        loader.dispose()


def load_yaml(path: str | Path, *, fix: str = "fix the YAML file.") -> Any:
    """Read and parse a YAML file (size, nesting and alias expansion bounded).

    Raises:
        InputError: unreadable, not UTF-8, not valid YAML, or beyond the limits.
    """
    path = Path(path)
    text = read_text(path, MAX_YAML_BYTES)
    try:
        return load_yaml_text(text)
    except YamlTooLarge as exc:
        raise InputError(path, f"is refused: it {exc} (see README: Resource limits).", fix) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = str(getattr(exc, "problem", None) or exc).splitlines()[0][:200]
        raise InputError(path, f"is not valid YAML{where} ({problem}).", fix) from None
