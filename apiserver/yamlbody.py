"""YAML request bodies, bounded: aliases may not expand a document past the body limit.

A YAML alias repeats the anchored node without repeating its text, so a few hundred bytes
("billion laughs": nine lists of ten aliases of the list before) describe gigabytes once the
object is written out as JSON, stored, or walked by validation. PyYAML keeps an alias as a
second reference to the same node, so composing such a document is cheap; what is not cheap
is everything after. So the composed node graph is measured first — the size of its JSON
form, each alias counted in full, each distinct node measured once — and a document over the
limit is refused before any object is built. Upstream reaches the same end through
sigs.k8s.io/yaml (go-yaml refuses "excessive aliasing").
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode


class AliasBomb(ValueError):
    """The document's aliases expand it past the limit (or into a cycle)."""


def expanded_size(root: Node, limit: int) -> int:
    """About the length of `root` as JSON with every alias expanded; stops and raises
    AliasBomb once past `limit`, or on a node that contains itself."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        if isinstance(node, ScalarNode):
            sizes[key] = len(node.value) + 2  # quotes
            continue
        children = _children(node)
        if not children_done:
            if key in open_nodes:
                raise AliasBomb("the document refers to itself through an alias")
            open_nodes.add(key)
            stack.append((node, True))
            for child in children:
                if id(child) in open_nodes:
                    raise AliasBomb("the document refers to itself through an alias")
                if id(child) not in sizes:
                    stack.append((child, False))
            continue
        open_nodes.discard(key)
        # Brackets plus one separator per child (comma, or colon and comma in mappings).
        total = 2 + sum(sizes[id(c)] + 1 for c in children)
        if total > limit:
            raise AliasBomb(f"its aliases expand it to more than {limit} bytes")
        sizes[key] = total
    return sizes[id(root)]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def bounded_loader(limit: int) -> type[yaml.SafeLoader]:
    """A SafeLoader that refuses documents expanding past `limit` bytes."""

    class BoundedLoader(yaml.SafeLoader):
        # Only documents with aliases are measured: without them the size is the body's,
        # already bounded (and JSON's punctuation may well exceed terse YAML's).
        aliased = False

        def compose_node(self, parent: Node | None, index: Any) -> Node | None:
            if self.check_event(AliasEvent):  # type: ignore[no-untyped-call]
                self.aliased = True
            node: Node | None = super().compose_node(  # type: ignore[no-untyped-call]
                parent, index)
            return node

        def compose_document(self) -> Node | None:
            node: Node | None = super().compose_document()  # type: ignore[no-untyped-call]
            if node is not None and self.aliased:
                expanded_size(node, limit)
            return node

    return BoundedLoader


def load(raw: bytes | str, limit: int) -> Any:
    """One YAML document, as yaml.safe_load, refused (AliasBomb) past `limit` bytes."""
    return yaml.load(raw, Loader=bounded_loader(limit))
