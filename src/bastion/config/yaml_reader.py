"""bastion.yaml's text to plain data: YAML with only what a configuration needs, or one clear error.

Beyond ``yaml.safe_load``: a key written twice in one mapping and a key that is not a string
(``1:``, ``null:``, ``? [a, b]``) are errors reported at their key path and file position;
nesting deeper than ``MAX_DEPTH`` is refused before Python's recursion limit is reached; and
``!!binary`` stays an opaque value that no key accepts (pydantic would otherwise decode it as a
string). Errors never quote the text of the file.
"""

from __future__ import annotations

from collections.abc import Iterator

import yaml

from bastion.config.models_base import KeyPath, format_key_path
from bastion.errors import ConfigError, ConfigIssue

__all__ = ["MAX_DEPTH", "BinaryValue", "read_yaml"]

MAX_DEPTH = 50
"""Nesting levels a file may have; bastion's own keys need about ten."""

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"


class BinaryValue:
    """What ``!!binary`` reads as: a value of no type any key accepts."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<binary>"


class _ConfigLoader(yaml.SafeLoader):
    """A SafeLoader that counts nesting while it composes (PyYAML composes recursively)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self._depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            problem = f"nested deeper than {MAX_DEPTH} levels"
            raise yaml.composer.ComposerError(None, None, problem, mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_ConfigLoader.add_constructor("tag:yaml.org,2002:binary", lambda _loader, _node: BinaryValue())


def read_yaml(text: str, source: str) -> object:
    """The document's data (None for an empty one). ConfigError with every key problem."""
    try:
        loader = _ConfigLoader(text)
    except yaml.reader.ReaderError as exc:  # NUL or another character YAML does not allow
        problem = f"character #x{exc.character:04x} at offset {exc.position} is not allowed"
        raise ConfigError([ConfigIssue("", f"{source}: {problem}")]) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        found = sorted(_key_issues(node), key=lambda issue: issue[2].index)
        if found:
            raise ConfigError([_issue(path, what, source, mark) for path, what, mark in found])
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "not valid YAML"
        raise ConfigError([ConfigIssue("", f"{_where(source, mark)}: {problem}")]) from None
    except yaml.YAMLError:
        # Other YAML errors quote the offending text; say nothing about it.
        raise ConfigError([ConfigIssue("", f"{source}: not valid YAML")]) from None
    finally:
        loader.dispose()


def _key_issues(root: yaml.Node) -> Iterator[tuple[KeyPath, str, yaml.Mark]]:
    """Duplicate and non-string keys: (key path, problem, where the key is written)."""
    pending: list[tuple[yaml.Node, KeyPath]] = [(root, ())]
    visited: set[int] = set()  # an alias repeats a node; look at each once
    while pending:
        node, path = pending.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        children: list[tuple[yaml.Node, KeyPath]] = []
        if isinstance(node, yaml.SequenceNode):
            children = [(item, (*path, index)) for index, item in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:  # `<<: *base`: its keys may be overridden here
                    children.append((value_node, path))
                elif not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR:
                    yield path, "keys must be strings", key_node.start_mark
                elif key_node.value in seen:
                    yield (*path, key_node.value), "duplicate key", key_node.start_mark
                else:
                    seen.add(key_node.value)
                    children.append((value_node, (*path, key_node.value)))
        pending.extend(reversed(children))


def _issue(path: KeyPath, problem: str, source: str, mark: yaml.Mark) -> ConfigIssue:
    where = _where(source, mark)
    if not path:
        return ConfigIssue("", f"{where}: {problem}")
    return ConfigIssue(format_key_path(path), f"{problem} ({where})")


def _where(source: str, mark: yaml.Mark | None) -> str:
    return f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
