"""bastion.yaml's text to plain data: YAML with only what a configuration needs, or one clear error.

Beyond ``yaml.safe_load``: a key written twice in one mapping and a key that is not a string
(``1:``, ``null:``, ``? [a, b]``) are errors reported at their key path and file position;
nesting deeper than ``MAX_DEPTH`` is refused before anything is constructed from it; and
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

_TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"


class BinaryValue:
    """What ``!!binary`` reads as: a value of no type any key accepts."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<binary>"


# libyaml's parser when PyYAML has it (every PyPI wheel does): ten times faster than PyYAML's
# own, and it refuses nesting past 1,000 levels while scanning. The pure-Python parser composes
# recursively, so there a runaway nesting ends as a RecursionError, caught below.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"


class _ConfigLoader(_Loader):  # type: ignore[valid-type,misc]
    """The safe loader with ``!!binary`` read as `BinaryValue`."""


_ConfigLoader.add_constructor("tag:yaml.org,2002:binary", lambda _loader, _node: BinaryValue())


def read_yaml(text: str, source: str) -> object:
    """The document's data (None for an empty one). ConfigError with every key problem."""
    try:
        return _read(text, source)
    except yaml.reader.ReaderError as exc:  # NUL or another character YAML does not allow
        problem = f"character #x{exc.character:04x} at offset {exc.position} is not allowed"
        raise ConfigError([ConfigIssue("", f"{source}: {problem}")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "not valid YAML"
        if problem == _LIBYAML_TOO_DEEP:
            problem = _TOO_DEEP
        raise ConfigError([ConfigIssue("", f"{_where(source, mark)}: {problem}")]) from None
    except RecursionError:
        raise ConfigError([ConfigIssue("", f"{source}: {_TOO_DEEP}")]) from None
    except yaml.YAMLError:
        # Other YAML errors quote the offending text; say nothing about it.
        raise ConfigError([ConfigIssue("", f"{source}: not valid YAML")]) from None


def _read(text: str, source: str) -> object:
    loader = _ConfigLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        found = sorted(_key_issues(node), key=lambda issue: issue[2].index)
        if found:
            raise ConfigError([_issue(path, what, source, mark) for path, what, mark in found])
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _key_issues(root: yaml.Node) -> Iterator[tuple[KeyPath, str, yaml.Mark]]:
    """Duplicate and non-string keys, and nesting deeper than `MAX_DEPTH` as written: (key
    path, problem, where the key or the too-deep node is written)."""
    pending: list[tuple[yaml.Node, KeyPath, int]] = [(root, (), 0)]
    visited: set[int] = set()  # an alias repeats a node; look at each once
    while pending:
        node, path, depth = pending.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if depth >= MAX_DEPTH:
            yield (), _TOO_DEEP, node.start_mark
            continue
        children: list[tuple[yaml.Node, KeyPath, int]] = []
        if isinstance(node, yaml.SequenceNode):
            children = [(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:  # `<<: *base`: its keys may be overridden here
                    children.append((value_node, path, depth + 1))
                elif not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR:
                    yield path, "keys must be strings", key_node.start_mark
                elif key_node.value in seen:
                    yield (*path, key_node.value), "duplicate key", key_node.start_mark
                else:
                    seen.add(key_node.value)
                    children.append((value_node, (*path, key_node.value), depth + 1))
        pending.extend(reversed(children))


def _issue(path: KeyPath, problem: str, source: str, mark: yaml.Mark) -> ConfigIssue:
    where = _where(source, mark)
    if not path:
        return ConfigIssue("", f"{where}: {problem}")
    return ConfigIssue(format_key_path(path), f"{problem} ({where})")


def _where(source: str, mark: yaml.Mark | None) -> str:
    return f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
