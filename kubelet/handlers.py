"""Running a probe's or a lifecycle hook's action: exec (through the CRI's ExecSync),
httpGet and tcpSocket (from the kubelet to the pod's IP), sleep (hooks only). Shared by the
prober and the postStart/preStop hooks, as upstream's prober and lifecycle handlers share
their HTTP and exec helpers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc

from kubelet.containers import named_port
from kubelet.runtime.client import RuntimeClient, rpc_code

Obj = dict[str, Any]
_MAX_OUTPUT = 10 * 1024  # upstream keeps at most 10 KiB of a probe's output
_USER_AGENT = "kube-probe/1.32"


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    output: str = ""  # why it failed (or what it said)
    unsupported: bool = False


def _text(data: bytes) -> str:
    return data[:_MAX_OUTPUT].decode(errors="replace").strip()


async def run_exec(cri: RuntimeClient, container_id: str, command: list[str],
                   timeout: float) -> ActionResult:
    try:
        result = await cri.exec_sync(container_id, command, timeout=max(1, int(timeout)))
    except grpc.aio.AioRpcError as e:
        if rpc_code(e) == grpc.StatusCode.DEADLINE_EXCEEDED:
            return ActionResult(False, f"command {command!r} timed out")
        return ActionResult(False, e.details() or str(e.code()))
    output = _text(result.stdout + result.stderr)
    if result.exit_code != 0:
        return ActionResult(False, output or f"command {command!r} exited with "
                                             f"{result.exit_code}")
    return ActionResult(True, output)


def http_url(action: Obj, container: Obj | None, default_host: str) -> str | None:
    port = named_port(container, action.get("port"))
    if port is None:
        return None
    host = action.get("host") or default_host
    scheme = str(action.get("scheme") or "HTTP").lower()
    path = str(action.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}{path}"


async def run_http_get(action: Obj, container: Obj | None, default_host: str,
                       timeout: float) -> ActionResult:
    url = http_url(action, container, default_host)
    if url is None:
        return ActionResult(False, f"invalid port {action.get('port')!r}")
    headers = {"User-Agent": _USER_AGENT, "Accept": "*/*"}
    for h in action.get("httpHeaders") or []:
        if isinstance(h, dict) and h.get("name"):
            headers[str(h["name"])] = str(h.get("value", ""))
    # Probes do not verify certificates (upstream: InsecureSkipVerify).
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s, \
                s.get(url, headers=headers, ssl=ctx, max_redirects=10) as resp:
            body = await resp.content.read(_MAX_OUTPUT)
            if 200 <= resp.status < 400:
                return ActionResult(True, _text(body))
            return ActionResult(False, f"HTTP probe failed with statuscode: {resp.status}")
    except TimeoutError:
        return ActionResult(False, f'Get "{url}": context deadline exceeded '
                                   f"(Client.Timeout exceeded while awaiting headers)")
    except (aiohttp.ClientError, OSError) as e:
        return ActionResult(False, f'Get "{url}": {_describe(e)}')


def _describe(e: BaseException) -> str:
    if isinstance(e, aiohttp.ClientConnectorError):
        return f"dial tcp {e.host}:{e.port}: connect: {e.os_error.strerror or e.os_error}"
    return str(e) or type(e).__name__


async def run_tcp(action: Obj, container: Obj | None, default_host: str,
                  timeout: float) -> ActionResult:
    port = named_port(container, action.get("port"))
    host = str(action.get("host") or default_host)
    if port is None:
        return ActionResult(False, f"invalid port {action.get('port')!r}")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return ActionResult(False, f"dial tcp {host}:{port}: i/o timeout")
    except OSError as e:
        return ActionResult(False, f"dial tcp {host}:{port}: connect: {e.strerror or e}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ActionResult(True)


async def run_action(cri: RuntimeClient, handler: Obj, container: Obj | None,
                     container_id: str, pod_ip: str, timeout: float) -> ActionResult:
    """A probe or hook handler (exec / httpGet / tcpSocket / sleep)."""
    if handler.get("exec"):
        return await run_exec(cri, container_id, list(handler["exec"].get("command") or []),
                              timeout)
    if handler.get("httpGet"):
        if not pod_ip and not handler["httpGet"].get("host"):
            return ActionResult(False, "the pod has no IP address yet")
        return await run_http_get(handler["httpGet"], container, pod_ip, timeout)
    if handler.get("tcpSocket"):
        if not pod_ip and not handler["tcpSocket"].get("host"):
            return ActionResult(False, "the pod has no IP address yet")
        return await run_tcp(handler["tcpSocket"], container, pod_ip, timeout)
    if handler.get("sleep"):
        seconds = float(handler["sleep"].get("seconds") or 0)
        await asyncio.sleep(min(seconds, timeout))
        return ActionResult(True)
    if "grpc" in handler:
        return ActionResult(True, "grpc probes are not supported by kubelite", unsupported=True)
    return ActionResult(False, "handler has no action")
