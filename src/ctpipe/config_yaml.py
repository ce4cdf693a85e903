"""The YAML side of a config: ``yaml.SafeLoader`` refusing a key repeated in one mapping, NaN
and infinity found anywhere, and PyYAML's errors in one line."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import yaml


class DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str, where: str, line: int, first_line: int) -> None:
        super().__init__(f"key {key!r} repeated {where} on line {line} (first on line "
                         f"{first_line}): YAML keeps only the last value; remove one")


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, refusing a key repeated in one mapping.

    PyYAML keeps the last of two equal keys without a word: `floor: 0.4` followed later by
    `floor: 4` would gate on 4 while a reader of the file sees 0.4.
    """

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _check_unique_keys(node, (), set())
        return self.construct_document(node)


def _check_unique_keys(node: yaml.Node, path: tuple[str, ...], seen_nodes: set[int]) -> None:
    if id(node) in seen_nodes:  # an alias: checked where its anchor is
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may override keys
                _check_unique_keys(value_node, path, seen_nodes)
                continue
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key is not None:
                if key in first:
                    where = f"under {'.'.join(path)}" if path else "at the top level"
                    raise DuplicateKey(key, where, line, first[key])
                first[key] = line
            _check_unique_keys(value_node, (*path, key or "?"), seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_unique_keys(item, (*path, str(i)), seen_nodes)


def non_finite(value: Any, path: tuple[str, ...] = ()) -> Iterator[str]:
    """Key paths of NaN or infinite numbers anywhere in the parsed YAML."""
    if isinstance(value, float) and not math.isfinite(value):
        yield f"{'.'.join(path) or '<root>'} ({value})"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from non_finite(item, (*path, str(key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from non_finite(item, (*path, str(i)))


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: PyYAML's messages span several, with the context and a snippet."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())
