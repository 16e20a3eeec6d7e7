"""How the apiserver's access control is put together from its flags: the TLS serving
context, the authenticators (client certificates, static tokens, service-account JWTs,
anonymous for the health endpoints) and the authorizers (--authorization-mode), all reading
the watch caches of the stores they depend on."""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from api import errors
from api.resources import CATALOGUE
from api.selfsigned import ensure_self_signed
from apiserver.auth.attributes import Authorizer, RuleResolver
from apiserver.auth.authn import Authenticator, StaticTokenFile, TokenAuthenticator
from apiserver.auth.authz import AlwaysAllow, AlwaysDeny, PrivilegedGroups, Union
from apiserver.auth.bootstrap_policy import node_rules
from apiserver.auth.filters import AccessControl
from apiserver.auth.node import NodeAuthorizer, NodeGraph
from apiserver.auth.rbac import RBACAuthorizer, rules_allow
from apiserver.auth.serviceaccount import TokenAuthenticator as ServiceAccountTokens
from apiserver.auth.serviceaccount import TokenIssuer
from apiserver.options import ApiServerOptions
from apiserver.state import AppState

Obj = dict[str, Any]
RBAC_KINDS = ("roles", "rolebindings", "clusterroles", "clusterrolebindings")


def server_ssl_context(options: ApiServerOptions) -> ssl.SSLContext:
    """HTTPS only; a client certificate is optional but, when sent, must chain to
    --client-ca-file (a wrong CA fails the handshake, as Go's VerifyClientCertIfGiven)."""
    cert, key = options.tls_cert_file, options.tls_private_key_file
    if not cert:
        hosts = ["localhost", "127.0.0.1", options.advertise_address]
        made = ensure_self_signed(options.cert_dir, "apiserver", hosts)
        cert, key = str(made[0]), str(made[1])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    if options.client_ca_file:
        ctx.load_verify_locations(options.client_ca_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


class StoreLookup:
    """Objects the authenticators and admission need, from the watch caches first (no etcd
    round trip per request), then from storage for what the cache has not seen yet."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    async def _get(self, plural: str, namespace: str | None, name: str) -> Obj | None:
        store = self.state.stores[plural]
        found = store.cacher.get_cached(store.key(namespace, name))
        if found is not None:
            return found
        try:
            return await store.get(namespace, name)
        except errors.NotFound:
            return None

    async def get_service_account(self, namespace: str, name: str) -> Obj | None:
        return await self._get("serviceaccounts", namespace, name)

    async def get_pod(self, namespace: str, name: str) -> Obj | None:
        return await self._get("pods", namespace, name)

    async def get_secret(self, namespace: str, name: str) -> Obj | None:
        return await self._get("secrets", namespace, name)

    async def get_node(self, name: str) -> Obj | None:
        return await self._get("nodes", None, name)

    async def get_namespace(self, name: str) -> Obj | None:
        return await self._get("namespaces", None, name)

    async def pods_in_namespace(self, namespace: str) -> list[Obj]:
        """The namespace's pods as the watch cache holds them (PodSecurity's check of
        existing pods when a namespace's enforce level changes)."""
        store = self.state.stores["pods"]
        prefix = CATALOGUE.require("pods").storage_list_prefix(namespace)
        return [o for k, o in list(store.cacher.objects.items()) if k.startswith(prefix)]


class CacheRBACSource:
    """Roles and bindings as the watch caches hold them; `generation` moves whenever any of
    them changes, which is when the RBAC authorizer drops its decisions."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def _objects(self, plural: str) -> dict[str, Obj]:
        store = self.state.stores.get(plural)
        return store.cacher.objects if store is not None else {}

    def _one(self, plural: str, namespace: str | None, name: str) -> Obj | None:
        store = self.state.stores.get(plural)
        return store.cacher.get_cached(store.key(namespace, name)) if store else None

    def get_role(self, namespace: str, name: str) -> Obj | None:
        return self._one("roles", namespace, name)

    def get_cluster_role(self, name: str) -> Obj | None:
        return self._one("clusterroles", None, name)

    def role_bindings(self, namespace: str) -> Iterator[Obj]:
        prefix = CATALOGUE.require("rolebindings").storage_list_prefix(namespace)
        return (o for k, o in list(self._objects("rolebindings").items())
                if k.startswith(prefix))

    def cluster_role_bindings(self) -> Iterable[Obj]:
        return list(self._objects("clusterrolebindings").values())

    def generation(self) -> int:
        return sum(s.cacher.revision for p in RBAC_KINDS
                   if (s := self.state.stores.get(p)) is not None)


def _pods(state: AppState) -> Iterable[Obj]:
    return list(state.stores["pods"].cacher.objects.values())


def _pods_revision(state: AppState) -> int:
    return state.stores["pods"].cacher.revision


def build_authorizer(options: ApiServerOptions, state: AppState
                     ) -> tuple[Union, RuleResolver | None]:
    members: list[Authorizer] = [PrivilegedGroups()]
    resolver: RuleResolver | None = None
    for mode in options.authorization_mode:
        if mode == "AlwaysAllow":
            members.append(AlwaysAllow())
        elif mode == "AlwaysDeny":
            members.append(AlwaysDeny())
        elif mode == "Node":
            graph = NodeGraph(lambda: _pods(state), lambda: _pods_revision(state))
            members.append(NodeAuthorizer(graph, partial(rules_allow, rules=node_rules())))
        elif mode == "RBAC":
            rbac = RBACAuthorizer(CacheRBACSource(state))
            members.append(rbac)
            resolver = rbac
    return Union(members), resolver


def build_token_issuer(options: ApiServerOptions) -> TokenIssuer | None:
    if not options.service_account_signing_key_file:
        return None
    pem = Path(options.service_account_signing_key_file).read_bytes()
    return TokenIssuer(pem, options.service_account_issuer[0])


def build_access_control(options: ApiServerOptions, state: AppState) -> AccessControl:
    token_authenticators: list[TokenAuthenticator] = []
    if options.token_auth_file:
        token_authenticators.append(StaticTokenFile(options.token_auth_file))
    key_files = options.service_account_key_files or (
        [options.service_account_signing_key_file]
        if options.service_account_signing_key_file else [])
    if key_files and options.service_account_issuer:
        keys = [Path(f).read_bytes() for f in key_files]
        token_authenticators.append(ServiceAccountTokens(
            keys, options.service_account_issuer, options.api_audiences, StoreLookup(state)))
    authorizer, resolver = build_authorizer(options, state)
    return AccessControl(Authenticator(token_authenticators, anonymous=options.anonymous_auth),
                         authorizer, resolver)


def rbac_escalation_check(state: AppState) -> Any:
    """The validating half of RBAC's storage (upstream's escalation prevention): writing a
    role or binding needs the permissions it grants, or `escalate` / `bind` on it."""
    from apiserver.auth import escalation
    from apiserver.auth.attributes import UserInfo

    def rbac() -> RBACAuthorizer | None:
        resolver = state_access(state).rules
        return resolver if isinstance(resolver, RBACAuthorizer) else None

    async def check(user: UserInfo, resource: str, namespace: str, name: str, new: Obj,
                    old: Obj | None) -> None:
        authorizer = rbac()
        if authorizer is None:
            return  # RBAC off: nothing to escalate into
        authorize = state_access(state).authorizer.authorize
        if resource in ("roles", "clusterroles"):
            escalation.check_role_write(user, new, namespace, authorize,
                                        authorizer.policy_rules_for, request_name=name,
                                        old_obj=old)
        elif resource in ("rolebindings", "clusterrolebindings"):
            escalation.check_binding_write(user, new, namespace, authorize,
                                           authorizer.policy_rules_for,
                                           authorizer.role_ref_rules, old_obj=old)
    return check


def state_access(state: AppState) -> AccessControl:
    assert state.access is not None, "access control is built with the app"
    return state.access
