"""A Secret's values never come back in an error or reach the apiserver's log.

Invalid Secrets (a bad key, a value that is not base64, too much data, bad JSON in a typed
Secret, an unknown field under strict field validation, a malformed body) are sent to the
real apiserver; the canary value must appear neither in the Status answered nor in its
warnings nor in the apiserver's log file.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
import pytest

from tests.conftest import ApiServer

CANARY = "canary-7f3a91-secret-in-clear"
CANARY_B64 = base64.b64encode(CANARY.encode()).decode()
PATH = "/api/v1/namespaces/default/secrets"


def _secret(name: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, **fields}


CASES: dict[str, tuple[str, dict[str, Any] | str, int]] = {
    "bad data key": ("", _secret("bad-key", data={"bad key!": CANARY_B64}), 422),
    "bad stringData key": ("", _secret("bad-skey", stringData={"bad key!": CANARY}), 422),
    "not base64": ("", _secret("not-b64", data={"k": CANARY + "!!"}), 422),
    "too large": ("", _secret("too-large", stringData={
        "k": CANARY + "x" * (1024 * 1024)}), 422),
    "bad dockerconfigjson": ("", _secret("bad-json", type="kubernetes.io/dockerconfigjson",
                                         stringData={".dockerconfigjson": "{" + CANARY}),
                             422),
    "non-string stringData": ("", _secret("non-str", stringData={"k": {CANARY: CANARY}}),
                              422),
    "unknown field, strict": ("?fieldValidation=Strict",
                              _secret("strict", data={"k": CANARY_B64}, extra=CANARY), 400),
    "malformed body": ("", json.dumps(_secret("broken", data={"k": CANARY_B64}))[:-5], 400),
}


def _leaks(text: str) -> bool:
    return CANARY in text or CANARY_B64 in text or CANARY.encode().hex() in text


async def _post(apiserver: ApiServer, query: str, body: dict[str, Any] | str
                ) -> tuple[int, str, str]:
    data = body if isinstance(body, str) else json.dumps(body)
    async with aiohttp.ClientSession() as session, session.post(
            f"{apiserver.url}{PATH}{query}", data=data, ssl=apiserver.tls(),
            headers={"Content-Type": "application/json"}) as resp:
        return resp.status, await resp.text(), " ".join(resp.headers.getall("Warning", []))


@pytest.mark.parametrize("case", sorted(CASES))
async def test_invalid_secret_echoes_no_value(apiserver: ApiServer, case: str) -> None:
    query, body, code = CASES[case]
    status, text, warnings = await _post(apiserver, query, body)
    assert status == code, text
    answer = json.loads(text)
    assert answer["kind"] == "Status" and answer["status"] == "Failure"
    assert not _leaks(text), text
    assert not _leaks(warnings), warnings
    assert not _leaks(apiserver.log_path.read_text(errors="replace"))


async def test_bad_key_is_named(apiserver: ApiServer) -> None:
    # Upstream names the key (the field path and the value of an invalid key), never the data.
    _, text, _ = await _post(apiserver, "", CASES["bad data key"][1])
    causes = json.loads(text)["details"]["causes"]
    assert any(c["field"] == "data[bad key!]" for c in causes), causes

