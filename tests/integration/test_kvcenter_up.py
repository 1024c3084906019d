"""kvcenter-up starts vpxd and N hosts on loopback, sets them up through the
REST API, prints the documented lines, and stops everything it started."""
import base64
import json
import os
import signal
import ssl
import subprocess
import tempfile
import threading
import urllib.request

import pytest

from kvctest import BUILDDIR, free_port, wait_for

UP = os.path.join(BUILDDIR, "kvcenter-up")


def skip_reason():
    if not os.path.exists(UP):
        return "kvcenter-up not built"
    if not os.path.exists(os.path.join(BUILDDIR, "vpxd", "vpxd")):
        return "vpxd is not in this build yet"
    return None


pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose only once reaped; kvcenter-up reaps.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


class Up:
    def __init__(self, tmp, hosts, vms):
        self.port = free_port()
        self.p = subprocess.Popen([UP, "--dir", os.path.join(tmp, "c"), "--hosts", str(hosts),
                                   "--vms", str(vms), "--backend", "sim", "--port",
                                   str(self.port), "--heartbeat", "200"],
                                  stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "up.err"), "wb"),
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        self.lines = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        self.errpath = os.path.join(tmp, "up.err")

    def _read(self):
        for raw in self.p.stdout:
            self.lines.append(raw.decode().rstrip("\n"))

    def wait_ready(self, timeout=90):
        def ready():
            if self.p.poll() is not None:
                with open(self.errpath) as f:
                    raise RuntimeError("kvcenter-up exited %s:\n%s" % (self.p.returncode, f.read()))
            return "READY" in self.lines
        wait_for(ready, timeout, "kvcenter-up READY")

    def get(self, key):
        return [l.split(" ", 1)[1] for l in self.lines if l.startswith(key + " ")]


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory(prefix="kvc-up-") as d:
        yield d


def test_up_three_hosts_then_stop_cleanly(tmp):
    up = Up(tmp, 3, 2)
    try:
        up.wait_ready()
        url, = up.get("URL")
        user, = up.get("USER")
        password, = up.get("PASSWORD")
        thumb, = up.get("THUMBPRINT")
        assert url == "https://127.0.0.1:%d" % up.port
        assert len(thumb) == 95
        hosts = [h.split() for h in up.get("HOST")]
        assert len(hosts) == 3
        pids = [int(h[1]) for h in hosts]
        for pid in pids:
            assert alive(pid)
            assert os.getpgid(pid) == pid      # leads its own process group
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        req = urllib.request.Request(url + "/api/session", method="POST")
        req.add_header("Authorization", "Basic " + base64.b64encode(
            ("%s:%s" % (user, password)).encode()).decode())
        token = json.loads(urllib.request.urlopen(req, context=ctx).read())

        def get(path):
            r = urllib.request.Request(url + path)
            r.add_header("vmware-api-session-id", token)
            return json.loads(urllib.request.urlopen(r, context=ctx).read())
        states = {h["host"]: h["connection_state"] for h in get("/api/vcenter/host")}
        assert all(states[h[0]] == "CONNECTED" for h in hosts)
        vms = get("/api/vcenter/vm")
        assert len(vms) == 2
        assert all(v["power_state"] == "POWERED_ON" for v in vms)
        everything = [up.p.pid] + children(up.p.pid)
    finally:
        up.p.send_signal(signal.SIGTERM)
        rc = up.p.wait(60)
    assert rc == 0
    # No stray process: every process and process group it started is gone.
    for pid in everything:
        wait_for(lambda: not alive(pid), 10, "pid %d gone" % pid)
    for pid in pids:
        assert not group_alive(pid)
