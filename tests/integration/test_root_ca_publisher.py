"""The root-ca-cert-publisher controller against the real apiserver and etcd: every
namespace gets `kube-root-ca.crt` with the CA bundle; deleted → created again, edited →
put back; namespaces created later get theirs too."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from api import errors
from api.resources import CATALOGUE
from client.events import EventRecorder
from client.informer import SharedInformerFactory
from client.kubeconfig import ClientConfig
from client.rest import ApiClient
from controller_manager.base import ControllerContext
from controller_manager.options import Options
from controller_manager.rootcacertpublisher import (
    DESCRIPTION,
    DESCRIPTION_ANNOTATION,
    RootCACertPublisher,
)
from tests.eventually import eventually
from tests.integration.conftest import controllers_running

pytestmark = pytest.mark.asyncio
Obj = dict[str, Any]

NAMESPACES = CATALOGUE.require("namespaces")
CONFIGMAPS = CATALOGUE.require("configmaps")
NAME = "kube-root-ca.crt"
WAIT = 15.0


def _ca_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubelite-test-ca")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.crt"
    path.write_bytes(_ca_pem())
    return path


def publisher(api: ApiClient, ca_file: Path) -> contextlib.AbstractAsyncContextManager[None]:
    options = Options(controllers=["root-ca-cert-publisher"], leader_elect=False,
                      root_ca_file=str(ca_file))
    return controllers_running(api, options, "test-root-ca-publisher")


async def _new_namespace(api: ApiClient) -> str:
    name = f"rootca-{uuid.uuid4().hex[:8]}"
    await api.create(NAMESPACES, {"metadata": {"name": name}})
    return name


def _published(cm: Obj, ca: str) -> bool:
    annotations = cm["metadata"].get("annotations") or {}
    return cm.get("data") == {"ca.crt": ca} and \
        annotations.get(DESCRIPTION_ANNOTATION) == DESCRIPTION


async def _wait_published(api: ApiClient, ns: str, ca: str, not_uid: str = "") -> Obj:
    async def probe() -> Obj | None:
        try:
            cm = await api.get(CONFIGMAPS, NAME, ns)
        except errors.NotFound:
            return None
        if not _published(cm, ca) or (not_uid and cm["metadata"]["uid"] == not_uid):
            return None
        return cm
    result: Obj = await eventually(probe, timeout=WAIT, what=f"{NAME} in {ns}")
    return result


async def test_publishes_and_keeps_the_configmap(api: ApiClient, ca_file: Path) -> None:
    ca = ca_file.read_text()
    existing = await _new_namespace(api)
    async with publisher(api, ca_file):
        first = await _wait_published(api, existing, ca)

        # Deleted: created again (a new object).
        await api.delete(CONFIGMAPS, NAME, existing)
        await _wait_published(api, existing, ca, not_uid=first["metadata"]["uid"])

        # Edited: data and the description are put back, other annotations kept.
        cm = await api.get(CONFIGMAPS, NAME, existing)
        cm["data"] = {"ca.crt": "not a CA", "extra": "x"}
        cm["metadata"]["annotations"] = {"team": "mine"}
        await api.update(CONFIGMAPS, cm)
        reset = await _wait_published(api, existing, ca)
        assert reset["metadata"]["annotations"]["team"] == "mine"

        # A namespace created while the controller runs gets its own.
        later = await _new_namespace(api)
        await _wait_published(api, later, ca)


async def test_nothing_to_publish_without_a_ca(ca_file: Path) -> None:
    # No --root-ca-file and a kubeconfig without a CA (plain http): the controller is idle.
    async with ApiClient(ClientConfig(server="http://127.0.0.1:1")) as api:
        informers = SharedInformerFactory(api)
        ctx = ControllerContext(api=api, informers=informers,
                                recorder=EventRecorder(api, "test"), options=Options())
        idle = RootCACertPublisher(ctx)
        assert idle.ca is None
        await idle.sync("default")  # no API call is made (the server is unreachable)
        with_file = RootCACertPublisher(ControllerContext(
            api=api, informers=informers, recorder=EventRecorder(api, "test"),
            options=Options(root_ca_file=str(ca_file))))
        assert with_file.ca == ca_file.read_text()
