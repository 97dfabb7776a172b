"""The sandbox shell's peer check: who owns the other end of a loopback connection."""

from __future__ import annotations

from pathlib import Path

from devkit import sandbox_shell


class _Sock:
    def __init__(self, ours, theirs):
        self._ours, self._theirs = ours, theirs

    def getsockname(self):
        return self._ours

    def getpeername(self):
        return self._theirs


HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"


def _table(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "tcp"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def test_hex_endpoint_is_the_proc_net_tcp_form():
    assert sandbox_shell._hex_endpoint("127.0.0.1", 4567) == "0100007F:11D7"
    assert sandbox_shell._hex_endpoint("127.0.0.1", 8022) == "0100007F:1F56"


def test_peer_uid_reads_the_owner_of_the_peer_socket(tmp_path):
    # server side: we listen on 127.0.0.1:18022, the peer connected from 127.0.0.1:40000
    sock = _Sock(("127.0.0.1", 18022), ("127.0.0.1", 40000))
    table = _table(
        tmp_path,
        "   0: 0100007F:4666 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1",
        "   1: 0100007F:9C40 0100007F:4666 01 00000000:00000000 00:00000000 00000000  1001        0 2",
        "   2: 0100007F:4666 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 3",
    )
    assert sandbox_shell.peer_uid(sock, table) == 1001


def test_peer_uid_unknown_without_a_matching_row_or_table(tmp_path):
    sock = _Sock(("127.0.0.1", 18022), ("127.0.0.1", 40001))
    table = _table(
        tmp_path,
        "   1: 0100007F:9C40 0100007F:4666 01 00000000:00000000 00:00000000 00000000  1001        0 2",
    )
    assert sandbox_shell.peer_uid(sock, table) is None
    assert sandbox_shell.peer_uid(sock, tmp_path / "absent") is None


def test_the_guest_shell_gets_no_host_credentials(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "real-secret")
    monkeypatch.setenv("AWS_PROFILE", "prod")
    env = sandbox_shell.shell_env(tmp_path)
    assert not any(k.startswith("AWS_") for k in env)
    assert env["HOME"] == str(tmp_path) and env["SANDBOX_MICROVM"] == "1"
