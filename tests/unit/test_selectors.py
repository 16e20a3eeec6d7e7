"""Label and field selectors: syntax, matching and error text as upstream apimachinery."""

from __future__ import annotations

import pytest

from api.errors import BadRequest
from api.selectors import (
    DOES_NOT_EXIST,
    EQUALS,
    EXISTS,
    IN,
    NOT_EQUALS,
    NOT_IN,
    FieldSelector,
    LabelSelector,
    Requirement,
    convert_field_selector,
    escape_field_value,
    field_set,
    label_selector_object_matches,
    new_requirement,
    parse_field_selector,
    parse_label_selector,
    selector_from_label_selector_object,
    selector_from_set,
    validate_field_selector,
)

WEB = {"app": "web", "tier": "frontend", "env": "prod"}

# --- label selector parsing ------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("a=b", [Requirement("a", EQUALS, ("b",))]),
    ("a==b", [Requirement("a", "==", ("b",))]),
    ("a!=b", [Requirement("a", NOT_EQUALS, ("b",))]),
    ("a in (x,y)", [Requirement("a", IN, ("x", "y"))]),
    ("a notin (x)", [Requirement("a", NOT_IN, ("x",))]),
    ("a", [Requirement("a", EXISTS)]),
    ("!a", [Requirement("a", DOES_NOT_EXIST)]),
    ("a>1", [Requirement("a", "gt", ("1",))]),
    ("a<10", [Requirement("a", "lt", ("10",))]),
    # values of a set are de-duplicated and sorted, as upstream's sets.String
    ("a in (y,x,y)", [Requirement("a", IN, ("x", "y"))]),
    # empty slots are the empty value
    ("x in (foo,,baz)", [Requirement("x", IN, ("", "baz", "foo"))]),
    ("x in ()", [Requirement("x", IN, ("",))]),
    ("x in (abc,)", [Requirement("x", IN, ("", "abc"))]),
    ("x=", [Requirement("x", EQUALS, ("",))]),
    # `in`/`notin` are identifiers where a key or a value is expected
    ("in in (in,notin)", [Requirement("in", IN, ("in", "notin"))]),
    ("notin=in", [Requirement("notin", EQUALS, ("in",))]),
    ("app.kubernetes.io/name=web",
     [Requirement("app.kubernetes.io/name", EQUALS, ("web",))]),
    ("0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
     [Requirement("0.1.2.domain/99", NOT_IN, ("10.10.100.1", "tick.tack.clock"))]),
])
def test_parse_each_operator(text: str, expected: list[Requirement]) -> None:
    assert list(parse_label_selector(text).requirements) == expected


def test_parse_sorts_requirements_by_key() -> None:
    sel = parse_label_selector("z,x notin (b,a),!y,a=1")
    assert [r.key for r in sel.requirements] == ["a", "x", "y", "z"]
    assert str(sel) == "a=1,x notin (a,b),!y,z"
    assert str(parse_label_selector("x=a,a=x")) == str(parse_label_selector("a=x,x=a"))


@pytest.mark.parametrize("text", [
    " a  in ( x , y ) ",
    "a\tin\n(x,y)",
    "\ra in (x,y)",
    "a in(x,y)",
])
def test_whitespace_is_tolerated(text: str) -> None:
    assert str(parse_label_selector(text)) == "a in (x,y)"


@pytest.mark.parametrize("text", ["x=a,y=b,z=c", "x!=a,y=b", "x=", "!x", "x>1,z<5",
                                  "x in (abc,def),y notin (jkl),z", "x=abc,y==jkl,z!=a"])
def test_string_round_trips(text: str) -> None:
    assert str(parse_label_selector(text)) == text
    assert parse_label_selector(str(parse_label_selector(text))) == parse_label_selector(text)


@pytest.mark.parametrize("text", ["", "   ", "\t"])
def test_empty_selector_matches_everything(text: str) -> None:
    sel = parse_label_selector(text)
    assert sel.is_empty()
    assert str(sel) == ""
    assert sel.matches({})
    assert sel.matches(None)
    assert sel.matches(WEB)


@pytest.mark.parametrize(("text", "message"), [
    ("a in", "unable to parse requirement: found '' expected: '('"),
    ("x notin x", "unable to parse requirement: found 'x' expected: '('"),
    ("a in (", "unable to parse requirement: found '', expected: ',', ')' or identifier"),
    ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a!b", "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt"),
    ("a==(b", "unable to parse requirement: found '(', expected: identifier"),
    ("=a", "found '=', expected: !, identifier, or 'end of string'"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("x==a==b", "found '==', expected: ',' or 'end of string'"),
    ("!x=a", "found '=', expected: ',' or 'end of string'"),
    ("a=b,", "found '', expected: identifier after ','"),
    ("a,,b", "found ',', expected: identifier after ','"),
    ("a in (b))", "found ')', expected: ',' or 'end of string'"),
    ("x<a", ("unable to parse requirement: values[0]: Invalid value: \"a\": "
            "for 'Gt', 'Lt' operators, the value must be an integer")),
])
def test_parse_errors_read_like_upstream(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse_label_selector(text)
    assert err.value.message == message
    assert err.value.code == 400
    assert err.value.reason == "BadRequest"


def test_invalid_key_is_reported_against_nil_path() -> None:
    with pytest.raises(BadRequest) as err:
        parse_label_selector("_a=b")
    assert err.value.message.startswith(
        "unable to parse requirement: <nil>: Invalid value: \"_a\": name part must consist of "
        "alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', ")


@pytest.mark.parametrize("text", ["a/b/c", "Foo.com/x", "/x", "x/", "a" * 64,
                                  "a=" + "v" * 64, "a=-bad", "a in (ok,bad_)",
                                  "x=a||y=b"])
def test_invalid_keys_and_values_are_rejected(text: str) -> None:
    with pytest.raises(BadRequest, match="unable to parse requirement"):
        parse_label_selector(text)


def test_invalid_value_names_its_position() -> None:
    with pytest.raises(BadRequest) as err:
        parse_label_selector("a=-bad")
    assert err.value.message.startswith(
        "unable to parse requirement: values[0][a]: Invalid value: \"-bad\": a valid label "
        "must be an empty string or consist of alphanumeric characters")


# --- label selector matching -----------------------------------------------------------------


@pytest.mark.parametrize(("text", "labels", "expected"), [
    ("app=web", WEB, True),
    ("app==web", WEB, True),
    ("app=db", WEB, False),
    ("missing=x", WEB, False),
    ("app!=db", WEB, True),
    ("app!=web", WEB, False),
    ("missing!=x", WEB, True),  # a missing key is "not equal"
    ("app in (web,db)", WEB, True),
    ("app in (db,cache)", WEB, False),
    ("missing in (x)", WEB, False),
    ("app notin (db)", WEB, True),
    ("app notin (web)", WEB, False),
    ("missing notin (x)", WEB, True),
    ("app", WEB, True),
    ("missing", WEB, False),
    ("!missing", WEB, True),
    ("!app", WEB, False),
    ("app=web,tier=frontend", WEB, True),
    ("app=web,tier=backend", WEB, False),
    ("app=", {"app": ""}, True),
    ("app=", {}, False),
    ("x in ()", {"x": ""}, True),
    ("x in (abc)", {"x": ""}, False),
    ("x>1", {"x": "2"}, True),
    ("x>1", {"x": "1"}, False),
    ("x<1", {"x": "0"}, True),
    ("x<1", {"x": "-5"}, True),
    ("x>1", {"x": "v2"}, False),  # non-integer label values never compare
    ("x>1", {}, False),
    ("app", None, False),
    ("!app", None, True),
])
def test_matching(text: str, labels: dict[str, str] | None, expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


def test_requires_exact_match() -> None:
    assert parse_label_selector("a=b,c in (d)").requires_exact_match("a") == "b"
    assert parse_label_selector("a=b,c in (d)").requires_exact_match("c") == "d"
    assert parse_label_selector("a in (b,c)").requires_exact_match("a") is None
    assert parse_label_selector("a!=b").requires_exact_match("a") is None
    assert parse_label_selector("a=b").requires_exact_match("z") is None


def test_selector_from_set() -> None:
    sel = selector_from_set({"tier": "frontend", "app": "web"})
    assert str(sel) == "app=web,tier=frontend"
    assert sel.matches(WEB)
    assert not sel.matches({"app": "web"})
    assert selector_from_set({}).is_empty()
    assert selector_from_set(None).matches({"anything": "x"})


# --- metav1.LabelSelector --------------------------------------------------------------------


def test_nil_label_selector_object_matches_nothing() -> None:
    sel = selector_from_label_selector_object(None)
    assert sel.nothing
    assert not sel.is_empty()
    assert not sel.matches({})
    assert not sel.matches(WEB)
    assert str(sel) == ""
    assert label_selector_object_matches(None, WEB) is False


@pytest.mark.parametrize("obj", [{}, {"matchLabels": {}}, {"matchExpressions": []},
                                 {"matchLabels": None, "matchExpressions": None}])
def test_empty_label_selector_object_matches_everything(obj: dict) -> None:
    sel = selector_from_label_selector_object(obj)
    assert sel.is_empty()
    assert sel.matches({})
    assert sel.matches(WEB)


def test_label_selector_object_combines_labels_and_expressions() -> None:
    obj = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["frontend", "edge"]},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "env", "operator": "Exists"},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
    sel = selector_from_label_selector_object(obj)
    assert str(sel) == "app=web,!canary,env notin (dev),env,tier in (edge,frontend)"
    assert sel.matches(WEB)
    assert not sel.matches({**WEB, "canary": "true"})
    assert not sel.matches({**WEB, "env": "dev"})
    assert not sel.matches({**WEB, "tier": "backend"})
    assert not sel.matches({"tier": "frontend", "env": "prod"})
    assert label_selector_object_matches(obj, WEB) is True


def test_label_selector_object_bad_operator() -> None:
    with pytest.raises(ValueError, match='^"Equals" is not a valid label selector operator$'):
        selector_from_label_selector_object(
            {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]})


@pytest.mark.parametrize(("expr", "message"), [
    ({"key": "a", "operator": "In", "values": []},
     ("values: Invalid value: []string(nil): "
     "for 'in', 'notin' operators, values set can't be empty")),
    ({"key": "a", "operator": "Exists", "values": ["x"]},
     ("values: Invalid value: []string{\"x\"}: "
     "values set must be empty for exists and does not exist")),
])
def test_label_selector_object_invalid_requirement(expr: dict, message: str) -> None:
    with pytest.raises(ValueError) as err:
        selector_from_label_selector_object({"matchExpressions": [expr]})
    assert str(err.value) == message


def test_new_requirement_aggregates_errors() -> None:
    with pytest.raises(ValueError) as err:
        new_requirement("a/b/c", IN, [])
    text = str(err.value)
    assert text.startswith('[key: Invalid value: "a/b/c": a valid label key must consist')
    assert text.endswith("values: Invalid value: []string(nil): "
                         "for 'in', 'notin' operators, values set can't be empty]")


# --- field selectors -------------------------------------------------------------------------


def test_parse_field_selector_operators() -> None:
    sel = parse_field_selector("spec.nodeName=node-1,status.phase!=Failed,metadata.name==p")
    # upstream sorts the terms; "==" is the same requirement as "="
    assert sel.requirements == [
        ("metadata.name", "=", "p"),
        ("spec.nodeName", "=", "node-1"),
        ("status.phase", "!=", "Failed"),
    ]
    assert str(sel) == "metadata.name=p,spec.nodeName=node-1,status.phase!=Failed"
    assert sel.requires_exact_match("spec.nodeName") == "node-1"
    assert sel.requires_exact_match("status.phase") is None


def test_field_selector_matching() -> None:
    sel = parse_field_selector("spec.nodeName=node-1,status.phase!=Failed")
    assert sel.matches({"spec.nodeName": "node-1", "status.phase": "Running"})
    assert not sel.matches({"spec.nodeName": "node-1", "status.phase": "Failed"})
    assert not sel.matches({"spec.nodeName": "node-2", "status.phase": "Running"})
    # missing fields read as ""
    assert not sel.matches({})
    assert parse_field_selector("spec.nodeName=").matches({})
    assert parse_field_selector("spec.nodeName!=").matches({"spec.nodeName": "n"})
    assert not parse_field_selector("spec.nodeName!=").matches({})


@pytest.mark.parametrize("text", ["", ",", ",,", "="])
def test_empty_field_selector(text: str) -> None:
    sel = parse_field_selector(text)
    assert sel.is_empty()
    assert sel.requirements == []
    assert sel.matches({"a": "b"})
    assert sel.matches({})


@pytest.mark.parametrize(("text", "value"), [
    (r"a=x\,y", "x,y"),
    (r"a=x\=y", "x=y"),
    (r"a=x\\y", "x\\y"),
    (r"a=\\\,\=", "\\,="),
    ("a=b!c", "b!c"),
])
def test_field_selector_escapes(text: str, value: str) -> None:
    sel = parse_field_selector(text)
    assert sel.requirements == [("a", "=", value)]
    assert sel.matches({"a": value})
    assert str(sel) == "a=" + escape_field_value(value)
    assert parse_field_selector(str(sel)).requirements == sel.requirements


def test_escaped_comma_does_not_split_terms() -> None:
    sel = parse_field_selector(r"b=1\,2,a=3")
    assert sel.requirements == [("a", "=", "3"), ("b", "=", "1,2")]


@pytest.mark.parametrize(("text", "message"), [
    ("a", "invalid selector: 'a'; can't understand 'a'"),
    ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
    (r"a=x\y", "invalid field selector: invalid escape sequence: \\y"),
    ("a=x\\", "invalid field selector: invalid escape sequence: \\"),
    ("a=b=c", "invalid field selector: unescaped character in value: 61"),
])
def test_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse_field_selector(text)
    assert err.value.message == message
    assert err.value.code == 400


def test_field_selector_does_not_trim_whitespace() -> None:
    # Upstream keeps the spaces, so the field becomes unknown rather than silently fixed.
    sel = parse_field_selector("metadata.name = x")
    assert sel.requirements == [("metadata.name ", "=", " x")]
    with pytest.raises(BadRequest):
        validate_field_selector("pods", sel)


# --- selectable fields and their validation --------------------------------------------------

POD = {
    "metadata": {"name": "web-0", "namespace": "default"},
    "spec": {"restartPolicy": "Always", "schedulerName": "default-scheduler",
             "serviceAccountName": "default", "containers": [{"name": "c", "image": "nginx"}]},
    "status": {"phase": "Pending"},
}


def test_pod_field_set_unscheduled() -> None:
    assert field_set("pods", POD) == {
        "metadata.name": "web-0",
        "metadata.namespace": "default",
        "spec.nodeName": "",
        "spec.restartPolicy": "Always",
        "spec.schedulerName": "default-scheduler",
        "spec.serviceAccountName": "default",
        "spec.hostNetwork": "false",
        "status.phase": "Pending",
        "status.podIP": "",
        "status.nominatedNodeName": "",
    }
    unscheduled = parse_field_selector("spec.nodeName=")
    assert unscheduled.matches(field_set("pods", POD))
    assert not parse_field_selector("spec.nodeName=node-1").matches(field_set("pods", POD))


def test_pod_field_set_scheduled_running() -> None:
    pod = {**POD, "spec": {**POD["spec"], "nodeName": "node-1", "hostNetwork": True},
           "status": {"phase": "Running", "podIP": "10.0.0.9",
                      "podIPs": [{"ip": "10.0.0.7"}, {"ip": "fd00::7"}]}}
    fields = field_set("pods", pod)
    assert fields["spec.nodeName"] == "node-1"
    assert fields["spec.hostNetwork"] == "true"
    assert fields["status.podIP"] == "10.0.0.7"  # the primary of podIPs wins
    assert parse_field_selector("spec.nodeName=node-1,status.phase=Running").matches(fields)
    assert not parse_field_selector("spec.nodeName=").matches(fields)
    only_pod_ip = {**pod, "status": {"podIP": "10.0.0.9"}}
    assert field_set("pods", only_pod_ip)["status.podIP"] == "10.0.0.9"


def test_event_field_set() -> None:
    event = {
        "metadata": {"name": "web-0.17a", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-0",
                           "uid": "1234-abcd", "apiVersion": "v1", "resourceVersion": "42",
                           "fieldPath": "spec.containers{c}"},
        "reason": "Scheduled",
        "source": {"component": "default-scheduler"},
        "type": "Normal",
    }
    fields = field_set("events", event)
    assert fields == {
        "metadata.name": "web-0.17a",
        "metadata.namespace": "default",
        "involvedObject.kind": "Pod",
        "involvedObject.namespace": "default",
        "involvedObject.name": "web-0",
        "involvedObject.uid": "1234-abcd",
        "involvedObject.apiVersion": "v1",
        "involvedObject.resourceVersion": "42",
        "involvedObject.fieldPath": "spec.containers{c}",
        "reason": "Scheduled",
        "reportingComponent": "",
        "source": "default-scheduler",
        "type": "Normal",
    }
    sel = parse_field_selector("involvedObject.kind=Pod,involvedObject.name=web-0")
    validate_field_selector("events", sel)
    assert sel.matches(fields)
    assert not parse_field_selector("involvedObject.name=web-1").matches(fields)


def test_event_source_falls_back_to_reporting_component() -> None:
    event = {"metadata": {"name": "e", "namespace": "ns"}, "reportingComponent": "kubelet"}
    fields = field_set("events", event)
    assert fields["source"] == "kubelet"
    assert fields["reportingComponent"] == "kubelet"
    assert fields["involvedObject.name"] == ""


@pytest.mark.parametrize(("plural", "obj", "expected"), [
    ("secrets", {"metadata": {"name": "s", "namespace": "ns"}, "type": "Opaque"},
     {"metadata.name": "s", "metadata.namespace": "ns", "type": "Opaque"}),
    ("nodes", {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}},
     {"metadata.name": "n1", "spec.unschedulable": "true"}),
    ("nodes", {"metadata": {"name": "n2"}},
     {"metadata.name": "n2", "spec.unschedulable": "false"}),
    ("namespaces", {"metadata": {"name": "kube-system"}, "status": {"phase": "Active"}},
     {"metadata.name": "kube-system", "status.phase": "Active"}),
    ("replicasets", {"metadata": {"name": "r", "namespace": "ns"}, "status": {"replicas": 3}},
     {"metadata.name": "r", "metadata.namespace": "ns", "status.replicas": "3"}),
    ("replicasets", {"metadata": {"name": "r", "namespace": "ns"}},
     {"metadata.name": "r", "metadata.namespace": "ns", "status.replicas": "0"}),
    ("jobs", {"metadata": {"name": "j", "namespace": "ns"}, "status": {"succeeded": 1}},
     {"metadata.name": "j", "metadata.namespace": "ns", "status.successful": "1"}),
    ("configmaps", {"metadata": {"name": "c", "namespace": "ns"}, "data": {"k": "v"}},
     {"metadata.name": "c", "metadata.namespace": "ns"}),
    ("services", {"metadata": {"name": "s", "namespace": "ns"},
                  "spec": {"clusterIP": "10.96.0.1", "type": "ClusterIP"}},
     {"metadata.name": "s", "metadata.namespace": "ns", "spec.clusterIP": "10.96.0.1",
      "spec.type": "ClusterIP"}),
])
def test_field_sets_per_kind(plural: str, obj: dict, expected: dict) -> None:
    assert field_set(plural, obj) == expected


@pytest.mark.parametrize(("plural", "text"), [
    ("pods", ("spec.nodeName=n,spec.restartPolicy=Always,spec.schedulerName=s,"
             "spec.serviceAccountName=sa,spec.hostNetwork=true,status.phase=Running,"
             "status.podIP=10.0.0.1,status.nominatedNodeName=n,metadata.name=a,"
             "metadata.namespace=b")),
    ("events", ("involvedObject.kind=Pod,involvedObject.namespace=a,involvedObject.name=b,"
               "involvedObject.uid=c,involvedObject.apiVersion=v1,"
               "involvedObject.resourceVersion=1,involvedObject.fieldPath=f,reason=r,"
               "reportingComponent=k,source=s,type=Normal")),
    ("secrets", "type=kubernetes.io/tls,metadata.namespace=ns"),
    ("nodes", "spec.unschedulable=false,metadata.name=n"),
    ("namespaces", "status.phase=Active,metadata.name=n"),
    ("replicasets", "status.replicas=0"),
    ("jobs", "status.successful=1"),
    ("configmaps", "metadata.name=a,metadata.namespace=b"),
    ("deployments", "metadata.name=a"),
])
def test_supported_fields_validate(plural: str, text: str) -> None:
    validate_field_selector(plural, parse_field_selector(text))


@pytest.mark.parametrize(("plural", "text", "message"), [
    ("pods", "spec.containers=x", "field label not supported: spec.containers"),
    ("events", "involvedObject.foo=x", "field label not supported: involvedObject.foo"),
    ("nodes", "metadata.namespace=x", "field label not supported: metadata.namespace"),
    ("namespaces", "metadata.namespace=x", "field label not supported: metadata.namespace"),
    ("secrets", "data=x", "field label not supported: data"),
    ("jobs", "status.succeeded=1", 'field label "status.succeeded" not supported for batchv1.Job'),
    ("configmaps", "data.k=v",
     '"data.k" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("deployments", "spec.replicas=1",
     ('"spec.replicas" is not a known field selector: only "metadata.name", '
     '"metadata.namespace"')),
])
def test_unsupported_fields_are_rejected(plural: str, text: str, message: str) -> None:
    with pytest.raises(BadRequest) as err:
        validate_field_selector(plural, parse_field_selector(text))
    assert err.value.message == message
    assert err.value.code == 400


def test_legacy_spec_host_is_spec_node_name() -> None:
    sel = convert_field_selector("pods", parse_field_selector("spec.host=node-1"))
    assert sel.requirements == [("spec.nodeName", "=", "node-1")]
    assert isinstance(sel, FieldSelector)


def test_label_selector_is_a_value() -> None:
    assert parse_label_selector("a=b") == parse_label_selector("a = b")
    assert LabelSelector.everything() == parse_label_selector("")
    assert LabelSelector.everything() != LabelSelector.match_nothing()
