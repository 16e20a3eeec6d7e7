"""JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from api.patch import (
    STRATEGIC_MERGE_KINDS,
    PatchError,
    json_merge_patch,
    json_patch,
    strategic_merge_patch,
    supports_strategic_merge,
)

# --------------------------------------------------------------------------------------------
# RFC 7386, appendix A


@pytest.mark.parametrize(
    ("original", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_json_merge_patch_rfc7386_examples(original: Any, patch: Any, expected: Any) -> None:
    assert json_merge_patch(original, patch) == expected


def test_json_merge_patch_rfc7386_section3_example() -> None:
    original = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert json_merge_patch(original, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


def test_json_merge_patch_does_not_mutate_inputs() -> None:
    original = {"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1, 2]}}
    patch: dict[str, Any] = {"metadata": {"labels": {"b": "2", "a": None}}, "spec": {"new": {"x": [1]}}}
    before_original, before_patch = copy.deepcopy(original), copy.deepcopy(patch)
    result = json_merge_patch(original, patch)
    assert result == {"metadata": {"labels": {"b": "2"}}, "spec": {"list": [1, 2], "new": {"x": [1]}}}
    assert original == before_original
    assert patch == before_patch
    # the result shares no structure with the patch
    result["spec"]["new"]["x"].append(2)
    assert patch["spec"]["new"]["x"] == [1]


# --------------------------------------------------------------------------------------------
# RFC 6902, appendix A


def test_json_patch_a1_add_object_member() -> None:
    doc = {"foo": "bar"}
    assert json_patch(doc, [{"op": "add", "path": "/baz", "value": "qux"}]) == {
        "foo": "bar", "baz": "qux"}


def test_json_patch_a2_add_array_element() -> None:
    doc = {"foo": ["bar", "baz"]}
    assert json_patch(doc, [{"op": "add", "path": "/foo/1", "value": "qux"}]) == {
        "foo": ["bar", "qux", "baz"]}


def test_json_patch_a3_remove_object_member() -> None:
    doc = {"baz": "qux", "foo": "bar"}
    assert json_patch(doc, [{"op": "remove", "path": "/baz"}]) == {"foo": "bar"}


def test_json_patch_a4_remove_array_element() -> None:
    doc = {"foo": ["bar", "qux", "baz"]}
    assert json_patch(doc, [{"op": "remove", "path": "/foo/1"}]) == {"foo": ["bar", "baz"]}


def test_json_patch_a5_replace_value() -> None:
    doc = {"baz": "qux", "foo": "bar"}
    assert json_patch(doc, [{"op": "replace", "path": "/baz", "value": "boo"}]) == {
        "baz": "boo", "foo": "bar"}


def test_json_patch_a6_move_value() -> None:
    doc = {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}
    ops = [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]
    assert json_patch(doc, ops) == {
        "foo": {"bar": "baz"},
        "qux": {"corge": "grault", "thud": "fred"},
    }


def test_json_patch_a7_move_array_element() -> None:
    doc = {"foo": ["all", "grass", "cows", "eat"]}
    ops = [{"op": "move", "from": "/foo/1", "path": "/foo/3"}]
    assert json_patch(doc, ops) == {"foo": ["all", "cows", "eat", "grass"]}


def test_json_patch_a8_test_success() -> None:
    doc = {"baz": "qux", "foo": ["a", 2, "c"]}
    ops = [
        {"op": "test", "path": "/baz", "value": "qux"},
        {"op": "test", "path": "/foo/1", "value": 2},
    ]
    assert json_patch(doc, ops) == doc


def test_json_patch_a9_test_error() -> None:
    with pytest.raises(PatchError, match="test failed"):
        json_patch({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}])


def test_json_patch_a10_add_nested_member_object() -> None:
    doc = {"foo": "bar"}
    ops = [{"op": "add", "path": "/child", "value": {"grandchild": {}}}]
    assert json_patch(doc, ops) == {"foo": "bar", "child": {"grandchild": {}}}


def test_json_patch_a11_ignores_unrecognized_members() -> None:
    doc = {"foo": "bar"}
    ops = [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}]
    assert json_patch(doc, ops) == {"foo": "bar", "baz": "qux"}


def test_json_patch_a12_add_to_nonexistent_target() -> None:
    with pytest.raises(PatchError):
        json_patch({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}])


def test_json_patch_a14_escape_ordering() -> None:
    doc = {"/": 9, "~1": 10}
    assert json_patch(doc, [{"op": "test", "path": "/~01", "value": 10}]) == doc
    assert json_patch(doc, [{"op": "test", "path": "/~1", "value": 9}]) == doc


def test_json_patch_a15_string_is_not_number() -> None:
    with pytest.raises(PatchError):
        json_patch({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}])


def test_json_patch_a16_add_array_value_with_dash() -> None:
    doc = {"foo": ["bar"]}
    ops = [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]
    assert json_patch(doc, ops) == {"foo": ["bar", ["abc", "def"]]}


def test_json_patch_copy_is_deep() -> None:
    doc = {"a": {"list": [1]}, "b": {}}
    result = json_patch(doc, [
        {"op": "copy", "from": "/a", "path": "/b/a"},
        {"op": "add", "path": "/b/a/list/-", "value": 2},
    ])
    assert result == {"a": {"list": [1]}, "b": {"a": {"list": [1, 2]}}}


def test_json_patch_whole_document_add_and_replace() -> None:
    assert json_patch({"a": 1}, [{"op": "replace", "path": "", "value": [1]}]) == [1]
    assert json_patch({"a": 1}, [{"op": "add", "path": "", "value": {"b": 2}}]) == {"b": 2}


def test_json_patch_test_uses_json_equality() -> None:
    doc = {"n": 1, "flag": True, "obj": {"a": [1, {"b": None}]}}
    assert json_patch(doc, [{"op": "test", "path": "/n", "value": 1.0}]) == doc
    assert json_patch(doc, [{"op": "test", "path": "/obj",
                             "value": {"a": [1, {"b": None}]}}]) == doc
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "test", "path": "/flag", "value": 1}])
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "test", "path": "/n", "value": True}])
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "test", "path": "/obj", "value": {"a": [1]}}])


def test_json_patch_kubernetes_style_label_and_container_edit() -> None:
    pod: dict[str, Any] = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
    }
    result = json_patch(pod, [
        {"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "web"},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:1.26"},
        {"op": "remove", "path": "/metadata/labels/app"},
    ])
    assert result == {
        "metadata": {"labels": {"app.kubernetes.io/name": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]},
    }
    assert pod["spec"]["containers"][0]["image"] == "nginx:1.25"


def test_json_patch_is_all_or_nothing_and_does_not_mutate() -> None:
    doc = {"a": [1, 2]}
    with pytest.raises(PatchError, match="operation 1"):
        json_patch(doc, [
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "remove", "path": "/missing"},
        ])
    assert doc == {"a": [1, 2]}


@pytest.mark.parametrize(
    "ops",
    [
        {"op": "add", "path": "/a", "value": 1},  # not a list
        "nope",
        None,
        [1],
        [{"path": "/a", "value": 1}],  # op missing
        [{"op": "frobnicate", "path": "/a"}],
        [{"op": 3, "path": "/a"}],
        [{"op": "add", "value": 1}],  # path missing
        [{"op": "add", "path": 5, "value": 1}],
        [{"op": "add", "path": "a", "value": 1}],  # no leading slash
        [{"op": "add", "path": "/a"}],  # value missing
        [{"op": "replace", "path": "/a"}],
        [{"op": "test", "path": "/a"}],
        [{"op": "move", "path": "/b"}],  # from missing
        [{"op": "copy", "from": 1, "path": "/b"}],
        [{"op": "remove", "path": "/nope"}],
        [{"op": "replace", "path": "/nope", "value": 1}],
        [{"op": "remove", "path": ""}],
        [{"op": "add", "path": "/a/x", "value": 1}],  # descend into a scalar
        [{"op": "add", "path": "/list/3", "value": 1}],  # past the end
        [{"op": "add", "path": "/list/01", "value": 1}],  # leading zero
        [{"op": "add", "path": "/list/-1", "value": 1}],
        [{"op": "remove", "path": "/list/2"}],
        [{"op": "remove", "path": "/list/-"}],
        [{"op": "replace", "path": "/list/-", "value": 1}],
        [{"op": "test", "path": "/list/x", "value": 1}],
        [{"op": "add", "path": "/~2", "value": 1}],  # bad escape
        [{"op": "add", "path": "/a~", "value": 1}],
        [{"op": "move", "from": "/obj", "path": "/obj/child"}],  # into itself
        [{"op": "move", "from": "/nope", "path": "/b"}],
        [{"op": "copy", "from": "/nope", "path": "/b"}],
    ],
)
def test_json_patch_rejects_malformed_or_failing_ops(ops: Any) -> None:
    doc = {"a": 1, "list": [1, 2], "obj": {"k": "v"}}
    with pytest.raises(PatchError):
        json_patch(doc, ops)
    assert doc == {"a": 1, "list": [1, 2], "obj": {"k": "v"}}


def test_json_patch_move_to_same_path_is_a_no_op() -> None:
    doc = {"obj": {"k": "v"}}
    assert json_patch(doc, [{"op": "move", "from": "/obj", "path": "/obj"}]) == doc


def test_patch_error_is_a_value_error() -> None:
    assert issubclass(PatchError, ValueError)


# --------------------------------------------------------------------------------------------
# Strategic merge patch


def smp(original: dict[str, Any], patch: dict[str, Any], kind: str = "Pod") -> dict[str, Any]:
    """Apply and check that neither input was touched."""
    before_original, before_patch = copy.deepcopy(original), copy.deepcopy(patch)
    result = strategic_merge_patch(original, patch, kind)
    assert original == before_original
    assert patch == before_patch
    return result


def pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": list(containers), **spec},
    }


def names(items: list[dict[str, Any]], key: str = "name") -> list[Any]:
    return [item[key] for item in items]


def test_smp_maps_merge_and_null_deletes() -> None:
    result = smp(pod({"name": "a", "image": "x"}),
                 {"metadata": {"labels": {"tier": "be", "app": None}, "annotations": {"n": "1"}}})
    assert result["metadata"] == {
        "name": "p", "namespace": "default", "labels": {"tier": "be"}, "annotations": {"n": "1"}}
    assert result["spec"] == {"containers": [{"name": "a", "image": "x"}]}


def test_smp_null_for_missing_key_is_ignored() -> None:
    result = smp(pod({"name": "a"}), {"spec": {"nodeName": None, "new": {"x": None, "y": 1}}})
    assert "nodeName" not in result["spec"]
    assert result["spec"]["new"] == {"y": 1}


def test_smp_merges_containers_by_name() -> None:
    original = pod({"name": "a", "image": "a:1", "args": ["x"]}, {"name": "b", "image": "b:1"})
    result = smp(original, {"spec": {"containers": [{"name": "b", "image": "b:2"}]}})
    assert result["spec"]["containers"] == [
        {"name": "a", "image": "a:1", "args": ["x"]},
        {"name": "b", "image": "b:2"},
    ]


def test_smp_new_container_goes_first_like_upstream() -> None:
    # Without $setElementOrder upstream puts elements the server has never seen before the
    # server-only ones (the kubectl patch docs show the same).
    result = smp(pod({"name": "nginx", "image": "nginx"}),
                 {"spec": {"containers": [{"name": "redis", "image": "redis"}]}})
    assert names(result["spec"]["containers"]) == ["redis", "nginx"]


def test_smp_merges_env_by_name_inside_a_container() -> None:
    original = pod({"name": "a", "image": "x",
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]})
    patch = {"spec": {"containers": [
        {"name": "a", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}]}}
    result = smp(original, patch)
    (container,) = result["spec"]["containers"]
    assert container["image"] == "x"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"A": "1", "B": "20", "C": "3"}


def test_smp_env_value_from_replaced_by_null() -> None:
    original = pod({"name": "a", "env": [
        {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]})
    patch = {"spec": {"containers": [
        {"name": "a", "env": [{"name": "A", "value": "1", "valueFrom": None}]}]}}
    result = smp(original, patch)
    assert result["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]


def test_smp_merges_ports_by_container_port() -> None:
    original = pod({"name": "a", "ports": [{"containerPort": 80, "protocol": "TCP"},
                                           {"containerPort": 443}]})
    patch = {"spec": {"containers": [
        {"name": "a", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 9090}]}]}}
    result = smp(original, patch)
    ports = result["spec"]["containers"][0]["ports"]
    assert {p["containerPort"]: p for p in ports} == {
        80: {"containerPort": 80, "protocol": "TCP", "name": "http"},
        443: {"containerPort": 443},
        9090: {"containerPort": 9090},
    }


def test_smp_merges_volume_mounts_by_mount_path_and_volumes_by_name() -> None:
    original = pod({"name": "a", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                   volumes=[{"name": "data", "emptyDir": {}}])
    patch = {"spec": {
        "volumes": [{"name": "cfg", "configMap": {"name": "cm"}}],
        "containers": [{"name": "a", "volumeMounts": [
            {"mountPath": "/data", "readOnly": True},
            {"name": "cfg", "mountPath": "/etc/cfg"}]}]}}
    result = smp(original, patch)
    assert sorted(names(result["spec"]["volumes"])) == ["cfg", "data"]
    mounts = {m["mountPath"]: m for m in result["spec"]["containers"][0]["volumeMounts"]}
    assert mounts == {
        "/data": {"name": "data", "mountPath": "/data", "readOnly": True},
        "/etc/cfg": {"name": "cfg", "mountPath": "/etc/cfg"},
    }


def test_smp_volume_retain_keys_switches_source() -> None:
    original = pod({"name": "a"}, volumes=[{"name": "v", "emptyDir": {"medium": "Memory"}}])
    patch = {"spec": {"volumes": [
        {"name": "v", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/tmp"}}]}}
    result = smp(original, patch)
    assert result["spec"]["volumes"] == [{"name": "v", "hostPath": {"path": "/tmp"}}]


def test_smp_delete_container_with_patch_delete() -> None:
    original = pod({"name": "a"}, {"name": "b"}, {"name": "c"})
    result = smp(original, {"spec": {"containers": [{"name": "b", "$patch": "delete"}]}})
    assert names(result["spec"]["containers"]) == ["a", "c"]


def test_smp_delete_of_absent_element_is_a_no_op() -> None:
    result = smp(pod({"name": "a"}), {"spec": {"containers": [{"name": "z", "$patch": "delete"}]}})
    assert result["spec"]["containers"] == [{"name": "a"}]


def test_smp_replace_list_with_patch_replace_element() -> None:
    original = pod({"name": "a", "image": "x"}, {"name": "b"})
    patch = {"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "y"}]}}
    result = smp(original, patch)
    assert result["spec"]["containers"] == [{"name": "c", "image": "y"}]


def test_smp_patch_merge_element_is_a_plain_merge() -> None:
    original = pod({"name": "a", "image": "x"})
    patch = {"spec": {"containers": [{"$patch": "merge"}, {"name": "a", "image": "y"}]}}
    assert smp(original, patch)["spec"]["containers"] == [{"name": "a", "image": "y"}]


def test_smp_replace_map_with_patch_replace() -> None:
    original = pod({"name": "a"}, nodeSelector={"disk": "ssd", "zone": "a"})
    result = smp(original, {"spec": {"nodeSelector": {"$patch": "replace", "gpu": "yes"}}})
    assert result["spec"]["nodeSelector"] == {"gpu": "yes"}
    # the sibling fields of the replaced map are untouched
    assert result["spec"]["containers"] == [{"name": "a"}]


def test_smp_delete_map_with_patch_delete() -> None:
    original = pod({"name": "a"}, nodeSelector={"disk": "ssd"})
    result = smp(original, {"spec": {"nodeSelector": {"$patch": "delete"}}})
    assert result["spec"]["nodeSelector"] == {}
    result = smp(pod({"name": "a"}), {"spec": {"affinity": {"$patch": "delete"}}})
    assert "affinity" not in result["spec"]


def test_smp_patch_merge_directive_in_map_merges() -> None:
    original = pod({"name": "a"}, nodeSelector={"disk": "ssd"})
    result = smp(original, {"spec": {"nodeSelector": {"$patch": "merge", "zone": "a"}}})
    assert result["spec"]["nodeSelector"] == {"disk": "ssd", "zone": "a"}


def test_smp_whole_object_replace() -> None:
    result = smp({"metadata": {"name": "x"}, "data": {"a": "1"}},
                 {"$patch": "replace", "metadata": {"name": "x"}, "data": {"b": "2"}},
                 kind="ConfigMap")
    assert result == {"metadata": {"name": "x"}, "data": {"b": "2"}}


def test_smp_set_element_order_reorders_containers() -> None:
    original = pod({"name": "a"}, {"name": "b"}, {"name": "c"})
    patch = {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"},
                                                      {"name": "b"}]}}
    assert names(smp(original, patch)["spec"]["containers"]) == ["c", "a", "b"]


def test_smp_set_element_order_places_new_element() -> None:
    original = pod({"name": "a", "image": "a"}, {"name": "c", "image": "c"})
    patch = {"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "containers": [{"name": "b", "image": "b"}],
    }}
    result = smp(original, patch)
    assert result["spec"]["containers"] == [
        {"name": "a", "image": "a"}, {"name": "b", "image": "b"}, {"name": "c", "image": "c"}]


def test_smp_set_element_order_keeps_server_only_elements_in_live_position() -> None:
    # "z" was added by someone else; the applier's order covers only its own elements.
    original = pod({"name": "a"}, {"name": "z"}, {"name": "b"})
    patch = {"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                      "containers": [{"name": "b", "image": "new"}]}}
    result = smp(original, patch)["spec"]["containers"]
    assert result == [{"name": "a"}, {"name": "z"}, {"name": "b", "image": "new"}]
    # When the applier reorders its own elements, a server-only element is placed before
    # the first patch element that comes after it in the live list (upstream's interleave).
    patch = {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}
    assert names(smp(original, patch)["spec"]["containers"]) == ["z", "b", "a"]


def test_smp_set_element_order_for_primitive_list() -> None:
    original = {"metadata": {"name": "n", "finalizers": ["a", "b"]}}
    patch = {"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"], "finalizers": ["c"]}}
    result = smp(original, patch)
    assert result["metadata"]["finalizers"] == ["c", "b", "a"]


def test_smp_set_element_order_must_match_patch_order() -> None:
    original = pod({"name": "a"}, {"name": "b"})
    patch = {"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
        "containers": [{"name": "b", "image": "y"}, {"name": "a", "image": "x"}],
    }}
    with pytest.raises(PatchError, match="order"):
        strategic_merge_patch(original, patch, "Pod")


def test_smp_set_element_order_must_cover_patch_elements() -> None:
    patch = {"spec": {
        "$setElementOrder/containers": [{"name": "a"}],
        "containers": [{"name": "b", "image": "y"}],
    }}
    with pytest.raises(PatchError):
        strategic_merge_patch(pod({"name": "a"}), patch, "Pod")


def test_smp_delete_from_primitive_list_finalizers() -> None:
    original = {"metadata": {"name": "n", "finalizers": ["a", "b", "c"]}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zzz"]}}
    assert smp(original, patch, "Namespace")["metadata"]["finalizers"] == ["a", "c"]


def test_smp_delete_from_primitive_list_with_order_and_addition() -> None:
    # What kubectl apply sends when one finalizer replaces another.
    original = {"metadata": {"name": "n", "finalizers": ["a", "b"]}}
    patch = {"metadata": {
        "$setElementOrder/finalizers": ["a", "c"],
        "$deleteFromPrimitiveList/finalizers": ["b"],
        "finalizers": ["c"],
    }}
    assert smp(original, patch, "ConfigMap")["metadata"]["finalizers"] == ["a", "c"]


def test_smp_finalizers_union_without_duplicates() -> None:
    original = {"metadata": {"finalizers": ["a", "b"]}}
    result = smp(original, {"metadata": {"finalizers": ["b", "c"]}}, "Secret")
    assert sorted(result["metadata"]["finalizers"]) == ["a", "b", "c"]
    assert len(result["metadata"]["finalizers"]) == 3
    # a finalizer that is already there keeps its place: nothing moves but the new one
    assert result["metadata"]["finalizers"].index("a") < result["metadata"]["finalizers"].index("b")


def test_smp_owner_references_merge_by_uid() -> None:
    original = {"metadata": {"ownerReferences": [
        {"uid": "1", "kind": "ReplicaSet", "name": "rs", "controller": True}]}}
    patch = {"metadata": {"ownerReferences": [
        {"uid": "1", "controller": False}, {"uid": "2", "kind": "Foo", "name": "f"}]}}
    refs = smp(original, patch)["metadata"]["ownerReferences"]
    by_uid = {r["uid"]: r for r in refs}
    assert by_uid["1"] == {"uid": "1", "kind": "ReplicaSet", "name": "rs", "controller": False}
    assert by_uid["2"] == {"uid": "2", "kind": "Foo", "name": "f"}


def test_smp_atomic_lists_are_replaced() -> None:
    original = pod({"name": "a", "envFrom": [{"configMapRef": {"name": "one"}}]},
                   tolerations=[{"key": "k1", "operator": "Exists"}])
    original["status"] = {"containerStatuses": [{"name": "a", "ready": True}]}
    patch = {
        "spec": {
            "tolerations": [{"key": "k2", "operator": "Exists"}],
            "containers": [{"name": "a", "envFrom": [{"secretRef": {"name": "two"}}]}],
        },
        "status": {"containerStatuses": [{"name": "a", "ready": False, "restartCount": 1}]},
    }
    result = smp(original, patch)
    assert result["spec"]["tolerations"] == [{"key": "k2", "operator": "Exists"}]
    assert result["spec"]["containers"][0]["envFrom"] == [{"secretRef": {"name": "two"}}]
    assert result["status"]["containerStatuses"] == [
        {"name": "a", "ready": False, "restartCount": 1}]


def test_smp_pod_status_conditions_merge_by_type() -> None:
    original = {"status": {"conditions": [
        {"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]}}
    patch = {"status": {"conditions": [{"type": "Ready", "status": "True"}],
                        "podIPs": [{"ip": "10.0.0.5"}]}}
    result = smp(original, patch)
    assert {c["type"]: c["status"] for c in result["status"]["conditions"]} == {
        "Ready": "True", "PodScheduled": "True"}
    assert result["status"]["podIPs"] == [{"ip": "10.0.0.5"}]


def test_smp_node_status_conditions_and_addresses_merge_taints_replace() -> None:
    node = {
        "kind": "Node",
        "metadata": {"name": "n1"},
        "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}], "podCIDRs": ["10.0.0.0/24"]},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"},
                           {"type": "MemoryPressure", "status": "False"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
        },
    }
    patch = {
        "spec": {"taints": [{"key": "b", "effect": "NoExecute"}]},
        "status": {
            "conditions": [{"type": "Ready", "status": "False", "reason": "KubeletDown"}],
            "addresses": [{"type": "Hostname", "address": "n1"}],
        },
    }
    result = smp(node, patch, "Node")
    assert result["spec"]["taints"] == [{"key": "b", "effect": "NoExecute"}]
    assert result["spec"]["podCIDRs"] == ["10.0.0.0/24"]
    conditions = {c["type"]: c for c in result["status"]["conditions"]}
    assert conditions["Ready"] == {"type": "Ready", "status": "False", "reason": "KubeletDown"}
    assert conditions["MemoryPressure"]["status"] == "False"
    assert sorted(names(result["status"]["addresses"], "type")) == ["Hostname", "InternalIP"]


def test_smp_endpoints_subsets_are_replaced() -> None:
    original = {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}
    patch = {"subsets": [{"addresses": [{"ip": "10.0.0.2"}]}]}
    assert smp(original, patch, "Endpoints")["subsets"] == [{"addresses": [{"ip": "10.0.0.2"}]}]


def test_smp_configmap_data_merges() -> None:
    original = {"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}
    result = smp(original, {"data": {"b": None, "c": "3"}}, "ConfigMap")
    assert result["data"] == {"a": "1", "c": "3"}


def test_smp_service_account_secrets_merge_image_pull_secrets_replace() -> None:
    original = {"secrets": [{"name": "tok"}], "imagePullSecrets": [{"name": "reg1"}]}
    patch = {"secrets": [{"name": "extra"}], "imagePullSecrets": [{"name": "reg2"}]}
    result = smp(original, patch, "ServiceAccount")
    assert sorted(names(result["secrets"])) == ["extra", "tok"]
    assert result["imagePullSecrets"] == [{"name": "reg2"}]


def test_smp_pod_image_pull_secrets_merge_by_name() -> None:
    original = pod({"name": "a"}, imagePullSecrets=[{"name": "reg1"}])
    result = smp(original, {"spec": {"imagePullSecrets": [{"name": "reg2"}]}})
    assert sorted(names(result["spec"]["imagePullSecrets"])) == ["reg1", "reg2"]


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                     "resourceVersion": "7"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "web", "image": "nginx:1.25",
                     "ports": [{"containerPort": 80}],
                     "env": [{"name": "MODE", "value": "prod"}]},
                    {"name": "sidecar", "image": "envoy:1"},
                ]},
            },
        },
        "status": {"conditions": [{"type": "Available", "status": "True"}]},
    }


def test_smp_kubectl_apply_style_patch_on_deployment() -> None:
    patch = {
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "labels": {"team": "edge"},
        },
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
            "containers": [{"name": "web", "image": "nginx:1.26"}],
        }}},
    }
    result = smp(deployment(), patch, "Deployment")
    assert result["metadata"]["labels"] == {"app": "web", "team": "edge"}
    assert result["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    containers = result["spec"]["template"]["spec"]["containers"]
    assert containers == [
        {"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 80}],
         "env": [{"name": "MODE", "value": "prod"}]},
        {"name": "sidecar", "image": "envoy:1"},
    ]
    assert result["spec"]["replicas"] == 2
    assert result["status"] == {"conditions": [{"type": "Available", "status": "True"}]}


def test_smp_kubectl_apply_removes_a_container_and_an_env_var() -> None:
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}],
        "containers": [
            {"name": "web",
             "$setElementOrder/env": [{"name": "LOG"}],
             "env": [{"name": "LOG", "value": "debug"}, {"name": "MODE", "$patch": "delete"}]},
            {"name": "sidecar", "$patch": "delete"},
        ],
    }}}}
    result = smp(deployment(), patch, "Deployment")
    assert result["spec"]["template"]["spec"]["containers"] == [
        {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}],
         "env": [{"name": "LOG", "value": "debug"}]},
    ]


def test_smp_deployment_strategy_retain_keys() -> None:
    # kubectl apply switching RollingUpdate -> Recreate
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate",
                                   "rollingUpdate": None}}}
    result = smp(deployment(), patch, "Deployment")
    assert result["spec"]["strategy"] == {"type": "Recreate"}


def test_smp_retain_keys_rejects_patch_fields_not_retained() -> None:
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate",
                                   "rollingUpdate": {"maxSurge": 1}}}}
    with pytest.raises(PatchError, match="retainKeys"):
        strategic_merge_patch(deployment(), patch, "Deployment")


@pytest.mark.parametrize("kind", ["ReplicaSet", "DaemonSet", "Job"])
def test_smp_pod_template_of_other_workloads(kind: str) -> None:
    original = deployment()
    original["kind"] = kind
    patch = {
        "spec": {"template": {
            "metadata": {"labels": {"v": "2"}},
            "spec": {"containers": [{"name": "sidecar", "env": [{"name": "X", "value": "1"}]}]},
        }},
        "status": {"conditions": [{"type": "Progressing", "status": "True"}]},
    }
    result = smp(original, patch, kind)
    template = result["spec"]["template"]
    assert template["metadata"]["labels"] == {"app": "web", "v": "2"}
    by_name = {c["name"]: c for c in template["spec"]["containers"]}
    assert by_name["sidecar"] == {"name": "sidecar", "image": "envoy:1",
                                  "env": [{"name": "X", "value": "1"}]}
    assert by_name["web"]["image"] == "nginx:1.25"
    assert sorted(names(result["status"]["conditions"], "type")) == ["Available", "Progressing"]


def test_smp_init_containers_merge_by_name() -> None:
    original = pod({"name": "a"}, initContainers=[{"name": "init", "image": "busybox"}])
    patch = {"spec": {"initContainers": [{"name": "init", "command": ["sh"]}]}}
    assert smp(original, patch)["spec"]["initContainers"] == [
        {"name": "init", "image": "busybox", "command": ["sh"]}]


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"app": "web"},
            "clusterIP": "10.96.0.10",
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
            "externalIPs": ["1.2.3.4"],
        },
    }


def test_smp_service_ports_merge_by_port() -> None:
    patch = {"spec": {
        "$setElementOrder/ports": [{"port": 80}, {"port": 443}],
        "ports": [{"port": 80, "targetPort": 8081}, {"name": "https", "port": 443,
                                                      "targetPort": 8443}],
        "externalIPs": ["5.6.7.8"],
    }}
    result = smp(service(), patch, "Service")
    assert result["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 8081, "protocol": "TCP"},
        {"name": "https", "port": 443, "targetPort": 8443},
    ]
    assert result["spec"]["clusterIP"] == "10.96.0.10"
    assert result["spec"]["externalIPs"] == ["5.6.7.8"]  # no patch strategy: replaced


def test_smp_service_port_delete() -> None:
    original = service()
    original["spec"]["ports"].append({"name": "https", "port": 443})
    result = smp(original, {"spec": {"ports": [{"port": 80, "$patch": "delete"}]}}, "Service")
    assert result["spec"]["ports"] == [{"name": "https", "port": 443}]


def test_smp_merge_key_numbers_compare_as_json_numbers() -> None:
    original = pod({"name": "a", "ports": [{"containerPort": 80, "name": "http"}]})
    patch = {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80.0,
                                                               "protocol": "TCP"}]}]}}
    ports = smp(original, patch)["spec"]["containers"][0]["ports"]
    assert len(ports) == 1
    assert ports[0]["name"] == "http"
    assert ports[0]["protocol"] == "TCP"


def test_smp_new_list_with_directives_is_cleaned() -> None:
    # The field is absent from the live object, so the patch value is taken, minus directives.
    patch = {"spec": {"containers": [{"name": "a", "env": [
        {"name": "A", "value": "1"}, {"name": "B", "$patch": "delete"},
        {"name": "C", "value": None}]}]}}
    result = smp(pod({"name": "a"}), patch)
    assert result["spec"]["containers"] == [{"name": "a", "env": [
        {"name": "A", "value": "1"}, {"name": "C"}]}]


def test_smp_result_shares_nothing_with_inputs() -> None:
    original = pod({"name": "a", "args": ["x"]})
    patch = {"spec": {"containers": [{"name": "b", "args": ["y"]}]}}
    result = strategic_merge_patch(original, patch, "Pod")
    for container in result["spec"]["containers"]:
        container["args"].append("mutated")
    assert original["spec"]["containers"][0]["args"] == ["x"]
    assert patch["spec"]["containers"][0]["args"] == ["y"]


@pytest.mark.parametrize(
    "patch",
    [
        {"spec": {"containers": {"name": "a"}}},  # a merge list given a map
        {"spec": {"containers": "a"}},
        {"spec": {"containers": ["a"]}},  # elements must be objects
        {"spec": {"containers": [{"image": "x"}]}},  # merge key missing
        {"spec": {"containers": [{"image": "x", "$patch": "delete"}]}},
        {"spec": {"containers": [{"name": "a", "$patch": "bogus"}]}},
        {"spec": {"nodeSelector": {"$patch": "bogus"}}},
        {"metadata": {"finalizers": [{"a": 1}]}},  # primitive merge list given objects
        {"metadata": {"finalizers": "a"}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": [{"a": 1}]}},
        {"metadata": {"$deleteFromPrimitiveList/": ["a"]}},
        {"spec": {"$setElementOrder/containers": "a"}},
        {"spec": {"$setElementOrder/containers": [{"image": "x"}]}},
        {"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": {"name": "a"}}},
        {"spec": {"$retainKeys": "containers"}},
    ],
)
def test_smp_rejects_malformed_patches(patch: dict[str, Any]) -> None:
    original = pod({"name": "a"})
    original["metadata"]["finalizers"] = ["f"]
    before = copy.deepcopy(original)
    with pytest.raises(PatchError):
        strategic_merge_patch(original, patch, "Pod")
    assert original == before


def test_smp_rejects_non_object_inputs_and_unknown_kinds() -> None:
    with pytest.raises(PatchError):
        strategic_merge_patch({}, [], "Pod")  # type: ignore[arg-type]
    with pytest.raises(PatchError):
        strategic_merge_patch([], {}, "Pod")  # type: ignore[arg-type]
    with pytest.raises(PatchError, match="not supported"):
        strategic_merge_patch({}, {}, "Widget")


def test_supported_kinds() -> None:
    expected = {"Pod", "Deployment", "ReplicaSet", "DaemonSet", "Job", "Service", "Node",
                "Namespace", "ConfigMap", "Secret", "ServiceAccount", "Endpoints",
                "EndpointSlice", "Event", "Lease", "Role", "ClusterRole", "RoleBinding",
                "ClusterRoleBinding"}
    assert expected == STRATEGIC_MERGE_KINDS
    assert all(supports_strategic_merge(kind) for kind in expected)
    assert not supports_strategic_merge("CustomThing")


@pytest.mark.parametrize("kind", sorted(STRATEGIC_MERGE_KINDS))
def test_smp_every_kind_merges_metadata_finalizers(kind: str) -> None:
    original = {"kind": kind, "metadata": {"name": "x", "finalizers": ["a"]}}
    result = smp(original, {"metadata": {"finalizers": ["b"], "labels": {"l": "1"}}}, kind)
    assert sorted(result["metadata"]["finalizers"]) == ["a", "b"]
    assert result["metadata"]["labels"] == {"l": "1"}
