"""``devkit.ports``: ports for services told their port in advance never collide with the kernel's
own picks (``bind(0)``, outgoing connections) nor with each other across processes.

The failure this guards against was seen in CI: a sandbox test picked a port with ``bind(0)``, a
server of another xdist worker bound the same port first, and ``make sandbox`` refused to start.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from devkit import ports

REPO = Path(__file__).resolve().parents[2]


def test_ephemeral_range_parses_the_kernel_file_and_falls_back_on_nonsense():
    assert ports.ephemeral_range("32768\t60999\n") == (32768, 60999)
    assert ports.ephemeral_range("49152 65535") == (49152, 65535)
    for bad in ("", "1", "a b", "60999 32768", "0 100", "1 70000"):
        assert ports.ephemeral_range(bad) == ports.EPHEMERAL_DEFAULT, bad


def test_candidates_lie_below_the_ephemeral_range():
    assert ports.candidate_range((32768, 60999)) == range(20000, 32768)
    assert len(ports.candidate_range((10000, 60999))) == 0  # no room: free_port uses bind(0)


def test_live_leases_drop_the_old_ones():
    now = 10_000.0
    leases = {"20001": now - ports.LEASE_SECONDS - 1, "20002": now - 5, "20003": now}
    assert ports.live_leases(leases, now) == {"20002": now - 5, "20003": now}


def test_free_port_is_bindable_outside_the_ephemeral_range_and_leased(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(ports.tempfile, "tempdir", None)  # re-read TMPDIR
    low, high = ports.ephemeral_range()
    picked = [ports.free_port() for _ in range(30)]
    assert len(set(picked)) == 30
    if len(ports.candidate_range()) >= 100:
        assert all(not low <= p <= high for p in picked), picked
    for port in picked:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
    leases = json.loads(next(tmp_path.glob("lambda-microvms-ports-*.json")).read_text())
    assert {int(p) for p in leases} == set(picked)


def test_a_port_in_use_is_never_handed_out(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(ports.tempfile, "tempdir", None)
    monkeypatch.setattr(ports, "candidate_range", lambda ephemeral=None: range(20000, 20100))
    held = []
    try:
        for port in range(20000, 20099):  # all but one candidate are taken by listeners
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            s.listen()
            held.append(s)
        free = set(range(20000, 20100)) - {s.getsockname()[1] for s in held}
        assert ports.free_port() in free  # found among the candidates, not a bind(0) fallback
    finally:
        for s in held:
            s.close()


def test_processes_picking_at_once_never_get_the_same_port(tmp_path):
    """Six processes (like xdist workers) take 40 ports each at the same time: 240 distinct."""
    script = "from devkit import ports\nprint(*(ports.free_port() for _ in range(40)))"
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    picked = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        picked += [int(p) for p in out.split()]
    assert len(picked) == 240
    assert len(set(picked)) == 240


def test_without_a_writable_lease_file_the_kernel_picks(tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")  # a file where the temporary directory should be
    monkeypatch.setattr(ports, "_lease_file", lambda: blocked / "leases.json")
    port = ports.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
