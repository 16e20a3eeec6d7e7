"""Byte-level pieces of the Docker-backed runtime: Docker's multiplexed stream, CRI log
lines, image references, API version negotiation."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from kubelet.runtime import docker as d
from kubelet.runtime import server as srv


def frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxI", kind, len(payload)) + payload


def test_demux_whole_and_cut_frames() -> None:
    data = frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"") + frame(3, b"daemon says")
    expected = [("stdout", b"out\n"), ("stderr", b"err\n"), ("stdout", b""),
                ("stderr", b"daemon says")]
    assert d.StreamDemuxer().feed(data) == expected
    demux = d.StreamDemuxer()
    got = [f for i in range(len(data)) for f in demux.feed(data[i:i + 1])]
    assert got == expected and demux.pending == 0


def test_demux_keeps_an_incomplete_frame() -> None:
    demux = d.StreamDemuxer()
    assert demux.feed(frame(1, b"hello")[:-2]) == []
    assert demux.pending == 11
    assert demux.feed(b"lo") == [("stdout", b"hello")]


STAMP = b"2024-05-01T10:00:00.123456789Z"
NS = 1714557600 * 10**9 + 123456789


def test_cri_log_lines() -> None:
    assert srv.cri_log_lines("stdout", STAMP + b" hello world\n") == [
        (NS, STAMP + b" stdout F hello world\n")]
    assert srv.cri_log_lines("stderr", STAMP + b" cut here") == [
        (NS, STAMP + b" stderr P cut here\n")]
    assert srv.cri_log_lines("stdout", STAMP + b" a\nb\n") == [
        (NS, STAMP + b" stdout F a\n"), (NS, STAMP + b" stdout F b\n")]
    assert srv.cri_log_lines("stdout", STAMP + b" \n") == [(NS, STAMP + b" stdout F \n")]
    assert srv.cri_log_lines("stdout", b"no-timestamp") == []
    assert srv.cri_log_lines("stdout", b"garbage here\n") == []


def test_tty_line_buffer() -> None:
    lines = srv.TtyLineBuffer()
    assert lines.feed(STAMP + b" one\r\n" + STAMP[:10]) == [STAMP + b" one\r\n"]
    assert lines.feed(STAMP[10:] + b" two\r\n") == [STAMP + b" two\r\n"]
    assert lines.feed(STAMP + b" three") == []
    assert lines.flush() == [STAMP + b" three"]
    assert lines.flush() == []


def test_last_log_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    assert srv.last_log_timestamp(str(path)) == 0  # no file
    path.write_bytes(b"")
    assert srv.last_log_timestamp(str(path)) == 0
    path.write_bytes(b"2024-05-01T09:00:00Z stdout F old\n" + STAMP + b" stdout F new\n"
                     b"2024-05-01T11:00:00Z stdout F half-writt")
    assert srv.last_log_timestamp(str(path)) == NS


@pytest.mark.parametrize(("ref", "repo", "tag"), [
    ("busybox", "busybox", "latest"),
    ("busybox:1.36", "busybox", "1.36"),
    ("registry.local:5000/team/app", "registry.local:5000/team/app", "latest"),
    ("registry.local:5000/team/app:v2", "registry.local:5000/team/app", "v2"),
    ("app@sha256:abcd", "app", "sha256:abcd"),
])
def test_split_image_reference(ref: str, repo: str, tag: str) -> None:
    assert d.split_image_reference(ref) == (repo, tag)


def test_negotiate_api_version() -> None:
    assert d.negotiate_api_version("1.41", "1.12") == "1.41"
    assert d.negotiate_api_version("1.47", "1.24") == d.MAX_API_VERSION
    with pytest.raises(d.DockerError):
        d.negotiate_api_version("1.39")


def test_filters_param_drops_empty_lists() -> None:
    assert d.filters_param({"label": ["a=b", "c"], "id": []}) == '{"label": ["a=b", "c"]}'


def test_socket_paths() -> None:
    assert srv.socket_path_of("unix:///run/cri.sock") == "/run/cri.sock"
    assert srv.socket_path_of("unix:/run/cri.sock") == "/run/cri.sock"
    assert srv.socket_path_of("/run/cri.sock") == "/run/cri.sock"
