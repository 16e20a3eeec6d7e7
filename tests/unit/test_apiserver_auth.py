"""The apiserver's request-side access control as pure logic: what a path asks for
(request_info), who a request is (authn), the authorizer union and the Node authorizer,
NodeRestriction and impersonation. The wire is tests/integration/test_security.py's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from api import errors
from apiserver.auth import noderestriction
from apiserver.auth.attributes import ANONYMOUS_USER, Attributes, Decision, UserInfo
from apiserver.auth.authn import Authenticator, StaticTokenFile, TokenInvalid
from apiserver.auth.authz import AlwaysAllow, AlwaysDeny, PrivilegedGroups, Union, parse_modes
from apiserver.auth.filters import impersonate
from apiserver.auth.node import NodeAuthorizer, NodeGraph, pod_references
from apiserver.auth.requestinfo import request_info

Obj = dict[str, Any]


@pytest.mark.parametrize(("method", "path", "watch", "want"), [
    ("GET", "/api/v1/namespaces/ns/pods", None, ("list", "", "ns", "pods", "", "")),
    ("GET", "/api/v1/namespaces/ns/pods", "true", ("watch", "", "ns", "pods", "", "")),
    ("GET", "/api/v1/namespaces/ns/pods/p", None, ("get", "", "ns", "pods", "", "p")),
    ("GET", "/api/v1/namespaces/ns/pods/p/log", None, ("get", "", "ns", "pods", "log", "p")),
    # kubectl 1.30+'s WebSocket exec is a GET; upstream checks create for it
    ("GET", "/api/v1/namespaces/ns/pods/p/exec", None,
     ("create", "", "ns", "pods", "exec", "p")),
    ("POST", "/api/v1/namespaces/ns/serviceaccounts/sa/token", None,
     ("create", "", "ns", "serviceaccounts", "token", "sa")),
    ("DELETE", "/apis/apps/v1/namespaces/ns/deployments", None,
     ("deletecollection", "apps", "ns", "deployments", "", "")),
    ("GET", "/api/v1/namespaces/ns", None, ("get", "", "ns", "namespaces", "", "ns")),
    ("PUT", "/api/v1/namespaces/ns/finalize", None,
     ("update", "", "ns", "namespaces", "finalize", "ns")),
    ("GET", "/api/v1/watch/namespaces/ns/pods/p", None, ("watch", "", "ns", "pods", "", "p")),
    ("PATCH", "/api/v1/nodes/n/status", None, ("patch", "", "", "nodes", "status", "n")),
])
def test_request_info_of_resource_requests(method: str, path: str, watch: str | None,
                                           want: tuple[str, ...]) -> None:
    info = request_info(method, path, watch)
    assert info.resource_request
    assert (info.verb, info.api_group, info.namespace, info.resource, info.subresource,
            info.name) == want


@pytest.mark.parametrize("path", ["/healthz", "/version", "/api", "/api/v1", "/apis",
                                  "/apis/apps", "/apis/apps/v1", "/openapi/v2"])
def test_request_info_of_non_resource_requests(path: str) -> None:
    info = request_info("GET", path)
    assert not info.resource_request and info.verb == "get" and info.path == path


def test_a_watch_by_name_selector_names_the_object() -> None:
    info = request_info("GET", "/api/v1/namespaces/ns/pods", "1", "metadata.name=p")
    assert (info.verb, info.name) == ("watch", "p")


def test_static_token_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text('# comment\nt1,alice,uid-1,"dev,ops"\nt2,bob,uid-2\n')
    tokens = StaticTokenFile(path)
    import asyncio
    alice = asyncio.run(tokens("t1"))
    assert alice == UserInfo("alice", "uid-1", ("dev", "ops"))
    assert asyncio.run(tokens("t2")) == UserInfo("bob", "uid-2")
    assert asyncio.run(tokens("nope")) is None
    path.write_text("only-a-token\n")
    with pytest.raises(ValueError, match="token,user,uid"):
        StaticTokenFile(path)


class FakeSSL:
    """What the filter reads of a TLS connection: the peer certificate, raw and parsed."""

    def __init__(self, der: bytes, subject: Any) -> None:
        self.der, self.subject, self.parsed = der, subject, 0

    def getpeercert(self, binary_form: bool = False) -> Any:
        if binary_form:
            return self.der
        self.parsed += 1
        return {"subject": self.subject}


async def test_certificate_users_are_remembered_by_certificate() -> None:
    authn = Authenticator()
    conn = FakeSSL(b"cert-1", ((("organizationName", "g1"),), (("organizationName", "g2"),),
                               (("commonName", "carol"),)))
    for _ in range(3):
        user = await authn.authenticate(conn, "", "/api")
        assert user == UserInfo("carol", groups=("g1", "g2", "system:authenticated"))
    assert conn.parsed == 1


async def test_anonymous_reaches_only_the_public_paths() -> None:
    authn = Authenticator(anonymous=True)
    for path in ("/healthz", "/readyz", "/livez", "/version", "/readyz/etcd"):
        assert await authn.authenticate(None, "", path) == ANONYMOUS_USER
    for path in ("/api", "/apis", "/api/v1/namespaces", "/healthzz", "/metrics"):
        with pytest.raises(errors.Unauthorized):
            await authn.authenticate(None, "", path)
    with pytest.raises(errors.Unauthorized):
        await Authenticator(anonymous=False).authenticate(None, "", "/healthz")


async def test_a_bad_token_is_401_never_anonymous() -> None:
    async def ours(token: str) -> UserInfo | None:
        if token == "good":
            return UserInfo("dave")
        if token.startswith("ours-"):
            raise TokenInvalid("expired")
        return None

    authn = Authenticator([ours], anonymous=True)
    assert (await authn.authenticate(None, "Bearer good", "/api")).groups == \
        ("system:authenticated",)
    for header in ("Bearer ours-expired", "Bearer unknown", "Basic abc", "Bearer "):
        with pytest.raises(errors.Unauthorized):
            await authn.authenticate(None, header, "/healthz")


def attrs(user: UserInfo, verb: str = "get", resource: str = "pods", name: str = "",
          namespace: str = "ns", subresource: str = "", group: str = "") -> Attributes:
    return Attributes(user, verb, True, namespace=namespace, api_group=group,
                      resource=resource, subresource=subresource, name=name)


def test_union_first_decision_wins_and_masters_come_first() -> None:
    bob = UserInfo("bob")
    admin = UserInfo("admin", groups=("system:masters",))
    union = Union([PrivilegedGroups(), AlwaysDeny(), AlwaysAllow()])
    assert union.authorize(attrs(bob))[0] is Decision.DENY
    assert union.authorize(attrs(admin))[0] is Decision.ALLOW
    assert Union([PrivilegedGroups()]).authorize(attrs(bob))[0] is Decision.NO_OPINION


def test_parse_modes() -> None:
    assert parse_modes("Node,RBAC") == ["Node", "RBAC"]
    for bad in ("", "Node,Node", "ABAC"):
        with pytest.raises(ValueError):
            parse_modes(bad)


def pod(name: str, node: str, **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"},
            "spec": {"nodeName": node, "containers": [{"name": "c"}], **spec}}


def test_pod_references() -> None:
    p = pod("p", "n1", serviceAccountName="sa", imagePullSecrets=[{"name": "pull"}],
            volumes=[{"name": "a", "secret": {"secretName": "s1"}},
                     {"name": "b", "configMap": {"name": "c1"}},
                     {"name": "c", "persistentVolumeClaim": {"claimName": "claim"}},
                     {"name": "d", "projected": {"sources": [{"secret": {"name": "s2"}},
                                                             {"configMap": {"name": "c2"}}]}}],
            containers=[{"name": "c", "env": [{"name": "X", "valueFrom": {
                "secretKeyRef": {"name": "s3", "key": "k"}}}],
                "envFrom": [{"configMapRef": {"name": "c3"}}]}])
    assert pod_references(p) == {
        ("serviceaccounts", "sa"), ("secrets", "pull"), ("secrets", "s1"), ("secrets", "s2"),
        ("secrets", "s3"), ("configmaps", "c1"), ("configmaps", "c2"), ("configmaps", "c3"),
        ("persistentvolumeclaims", "claim")}


def node_user(node: str) -> UserInfo:
    return UserInfo(f"system:node:{node}", groups=("system:nodes", "system:authenticated"))


def test_node_authorizer_follows_the_pods_of_its_node() -> None:
    pods = [pod("p1", "n1", volumes=[{"name": "v", "secret": {"secretName": "s1"}}]),
            pod("p2", "n2", volumes=[{"name": "v", "secret": {"secretName": "s2"}}])]
    revision = [1]
    authz = NodeAuthorizer(NodeGraph(lambda: pods, lambda: revision[0]),
                           lambda a: a.resource == "nodes")
    n1 = node_user("n1")
    assert authz.authorize(attrs(n1, resource="secrets", name="s1"))[0] is Decision.ALLOW
    denied = authz.authorize(attrs(n1, resource="secrets", name="s2"))
    # NoOpinion, as upstream: RBAC may still grant it
    assert denied == (Decision.NO_OPINION,
                      "no relationship found between node 'n1' and this object")
    assert authz.authorize(attrs(n1, "list", "secrets"))[0] is Decision.NO_OPINION
    assert authz.authorize(attrs(n1, "update", "secrets", "s1"))[0] is Decision.NO_OPINION
    # the graph follows the pod cache as it moves on
    pods.append(pod("p3", "n1", volumes=[{"name": "v", "secret": {"secretName": "s2"}}]))
    revision[0] = 2
    assert authz.authorize(attrs(n1, resource="secrets", name="s2"))[0] is Decision.ALLOW
    # its own lease only; not a node: no opinion
    lease = {"resource": "leases", "group": "coordination.k8s.io", "namespace":
             "kube-node-lease"}
    assert authz.authorize(attrs(n1, "update", name="n1", **lease))[0] is Decision.ALLOW
    assert authz.authorize(attrs(n1, "update", name="n2", **lease))[0] is Decision.NO_OPINION
    assert authz.authorize(attrs(UserInfo("system:node:n1"), resource="secrets",
                                 name="s1"))[0] is Decision.NO_OPINION
    assert authz.authorize(attrs(n1, "get", "nodes", "n2", namespace=""))[0] is \
        Decision.ALLOW


class Lookup:
    def __init__(self, *objects: Obj) -> None:
        self.objects = {o["metadata"]["name"]: o for o in objects}

    async def get_pod(self, namespace: str, name: str) -> Obj | None:
        return self.objects.get(name)

    async def get_node(self, name: str) -> Obj | None:
        return self.objects.get(name)


async def test_node_restriction() -> None:
    n1 = node_user("n1")
    p1, p2 = pod("p1", "n1"), pod("p2", "n2")
    node1 = {"metadata": {"name": "n1", "uid": "node-uid-1"}}
    lookup = Lookup(p1, p2, node1)

    async def admit(op: str, resource: str, sub: str, name: str, new: Obj | None,
                    old: Obj | None, ns: str = "ns") -> None:
        await noderestriction.admit(n1, op, resource, sub, ns, name, new, old, lookup)

    await admit("UPDATE", "pods", "status", "p1", p1, p1)
    with pytest.raises(errors.Forbidden, match='node "n1" can only update pod status for '
                                               'pods with spec.nodeName set to itself'):
        await admit("UPDATE", "pods", "status", "p2", p2, p2)
    with pytest.raises(errors.Forbidden, match="can only delete pods"):
        await admit("DELETE", "pods", "", "p2", None, p2)
    with pytest.raises(errors.Forbidden, match='is not allowed to modify node "n2"'):
        await admit("UPDATE", "nodes", "status", "n2", {}, {}, ns="")
    with pytest.raises(errors.Forbidden) as lease:
        await admit("CREATE", "leases", "", "n2", {}, None, ns="kube-node-lease")
    assert lease.value.status()["details"] == {"name": "n2", "group": "coordination.k8s.io",
                                               "kind": "leases"}
    mirror = pod("m", "n1")
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "h"}
    with pytest.raises(errors.Forbidden, match="an owner reference set to itself"):
        await admit("CREATE", "pods", "", "m", mirror, None)
    mirror["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": "n1",
                                              "uid": "stale", "controller": True}]
    with pytest.raises(errors.Forbidden, match="UID mismatch: expected stale got node-uid-1"):
        await admit("CREATE", "pods", "", "m", mirror, None)
    mirror["metadata"]["ownerReferences"][0]["uid"] = "node-uid-1"
    await admit("CREATE", "pods", "", "m", mirror, None)
    with pytest.raises(errors.Forbidden, match="can only create mirror pods"):
        await admit("CREATE", "pods", "", "x", pod("x", "n1"), None)

    def token(name: str, uid: str = "") -> Obj:
        ref = {"kind": "Pod", "apiVersion": "v1", "name": name, **({"uid": uid} if uid else {})}
        return {"spec": {"boundObjectRef": ref}}
    await admit("CREATE", "serviceaccounts", "token", "sa", token("p1", "uid-p1"), None)
    for body, message in ((token("p1"), "without a uid"),
                          (token("p2", "uid-p2"), "scheduled on a different node"),
                          ({"spec": {}}, "not bound to a pod")):
        with pytest.raises(errors.Forbidden, match=message):
            await admit("CREATE", "serviceaccounts", "token", "sa", body, None)
    with pytest.raises(errors.NotFound):
        await admit("CREATE", "serviceaccounts", "token", "sa", token("gone", "u"), None)
    # anyone else passes
    await noderestriction.admit(UserInfo("bob"), "DELETE", "pods", "", "ns", "p2", None, p2,
                                lookup)


def test_impersonation_needs_the_impersonate_verb() -> None:
    allowed: set[tuple[str, str, str]] = {("users", "", "alice"), ("groups", "", "dev"),
                                          ("serviceaccounts", "ns", "robot")}

    class Authz:
        def authorize(self, a: Attributes) -> tuple[Decision, str]:
            ok = a.verb == "impersonate" and (a.resource, a.namespace, a.name) in allowed
            return (Decision.ALLOW if ok else Decision.NO_OPINION), ""

    actor = UserInfo("admin")
    union = Union([Authz()])
    assert impersonate(CIMultiDict(), actor, union) is None
    alice = impersonate(CIMultiDict([("Impersonate-User", "alice"),
                                     ("Impersonate-Group", "dev")]), actor, union)
    assert alice == UserInfo("alice", groups=("dev", "system:authenticated"))
    robot = impersonate(CIMultiDict([("Impersonate-User", "system:serviceaccount:ns:robot")]),
                        actor, union)
    assert robot is not None and robot.groups == (
        "system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated")
    with pytest.raises(errors.Forbidden, match='users "eve" is forbidden: User "admin" cannot '
                                               'impersonate resource "users"'):
        impersonate(CIMultiDict([("Impersonate-User", "eve")]), actor, union)
    with pytest.raises(errors.Forbidden, match='groups "root"'):
        impersonate(CIMultiDict([("Impersonate-User", "alice"),
                                 ("Impersonate-Group", "root")]), actor, union)
    with pytest.raises(errors.BadRequest, match="without impersonating a user"):
        impersonate(CIMultiDict([("Impersonate-Group", "dev")]), actor, union)
