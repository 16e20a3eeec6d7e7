"""YAML bodies whose aliases would expand past the body limit are refused unexpanded."""

from __future__ import annotations

import time

import pytest

from api import errors
from apiserver.handlers import MAX_BODY, decode_body
from apiserver.yamlbody import AliasBomb, load


def billion_laughs(levels: int = 9, fanout: int = 10) -> bytes:
    """The classic: each level a list of `fanout` aliases of the level before."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for i in range(levels - 1):
        name = chr(ord("b") + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * fanout) + "]")
        prev = name
    return ("\n".join(lines) + "\n").encode()


def test_billion_laughs_refused_quickly() -> None:
    body = billion_laughs()
    assert len(body) < 1024
    started = time.monotonic()
    with pytest.raises(errors.BadRequest) as caught:
        decode_body(body, "application/yaml")
    assert time.monotonic() - started < 2.0
    assert caught.value.code == 400
    assert "aliases expand it to more than" in caught.value.message
    assert "3MiB" in caught.value.message


def test_apply_patch_yaml_bounded_too() -> None:
    with pytest.raises(errors.BadRequest):
        decode_body(billion_laughs(), "application/apply-patch+yaml; charset=utf-8")


def test_self_reference_refused() -> None:
    with pytest.raises(AliasBomb, match="refers to itself"):
        load(b"a: &a [1, *a]\n", MAX_BODY)


def test_modest_aliases_are_fine() -> None:
    body = b"base: &b {app: web, tier: front}\nlabels: *b\nselector: *b\n"
    assert decode_body(body, "application/yaml") == {
        "base": {"app": "web", "tier": "front"},
        "labels": {"app": "web", "tier": "front"},
        "selector": {"app": "web", "tier": "front"}}


def test_bound_is_the_expanded_size() -> None:
    # 100 aliases of a 1000-byte string: about 100 kB expanded, under a 200 kB limit and
    # over a 50 kB one.
    body = ("s: &s " + "x" * 1000 + "\nl: [" + ",".join(["*s"] * 100) + "]\n").encode()
    assert len(load(body, 200_000)["l"]) == 100
    with pytest.raises(AliasBomb):
        load(body, 50_000)


def test_large_document_without_aliases_is_not_measured() -> None:
    # Terse flow YAML whose JSON form is longer than the limit is still accepted: only
    # aliases can make a document grow.
    body = ("[" + ",".join(["a"] * 2000) + "]").encode()
    assert len(body) < 5000
    assert len(load(body, 5000)) == 2000


@pytest.mark.parametrize("raw", [b"a: b: c\nsecret: s3cr3t-canary",
                                 b'x: [1, 2\ny: "s3cr3t-canary',
                                 b"k: v\n\tbad: s3cr3t-canary"])
def test_yaml_errors_say_where_but_never_quote_the_body(raw: bytes) -> None:
    """PyYAML's own message quotes the offending text, which may be a Secret's value."""
    from api import errors
    from apiserver.handlers import decode_body
    with pytest.raises(errors.BadRequest) as e:
        decode_body(raw, "application/yaml")
    assert e.value.message.startswith("error decoding YAML: yaml: line ")
    assert "s3cr3t" not in e.value.message
