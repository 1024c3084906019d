"""kvcenter-up starts vpxd and N hosts on loopback, sets them up through the
REST API, prints the documented lines, and stops everything it started."""
import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import urllib.request

import pytest

from kvctest import BUILDDIR, Daemon, free_port, wait_for

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
    def __init__(self, tmp, hosts, vms, extra=()):
        self.port = free_port()
        self.p = subprocess.Popen([UP, "--dir", os.path.join(tmp, "c"), "--hosts", str(hosts),
                                   "--vms", str(vms), "--backend", "sim", "--port",
                                   str(self.port), "--heartbeat", "200"] + list(extra),
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

    def hosts(self):
        """HOST lines as dicts: id, pid and the key=value fields."""
        out = []
        for h in self.get("HOST"):
            w = h.split()
            d = dict(kv.split("=", 1) for kv in w[2:])
            d.update(id=w[0], pid=int(w[1]))
            out.append(d)
        return out

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        return self.p.wait(60)


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


SSH = shutil.which("ssh")
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-F", "/dev/null"]

CIM_ENUM = ('<?xml version="1.0" encoding="utf-8" ?>\n<CIM CIMVERSION="2.0" DTDVERSION="2.0">'
            '<MESSAGE ID="1" PROTOCOLVERSION="1.0"><SIMPLEREQ>'
            '<IMETHODCALL NAME="EnumerateInstances"><LOCALNAMESPACEPATH>'
            '<NAMESPACE NAME="root"/><NAMESPACE NAME="cimv2"/></LOCALNAMESPACEPATH>'
            '<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="%s"/></IPARAMVALUE>'
            '<IPARAMVALUE NAME="DeepInheritance"><VALUE>TRUE</VALUE></IPARAMVALUE>'
            '</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>')


def cim_enum(url, user, password, cls):
    """EnumerateInstances as CIM-XML over HTTP (what wbemcli ei sends)."""
    req = urllib.request.Request(url + "/cimom", data=(CIM_ENUM % cls).encode(), method="POST")
    req.add_header("Content-Type", 'application/xml; charset="utf-8"')
    req.add_header("CIMProtocolVersion", "1.0")
    req.add_header("CIMOperation", "MethodCall")
    req.add_header("CIMMethod", "EnumerateInstances")
    req.add_header("CIMObject", "root%2Fcimv2")
    req.add_header("Authorization", "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode())
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=30) as r:
        assert r.headers.get("CIMOperation") == "MethodResponse"
        return r.read().decode()


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif(SSH is None, reason="OpenSSH client not installed (openssh-client)")
def test_up_announces_ssh_api_and_cim_per_host(tmp):
    key = os.path.join(tmp, "id")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True,
                   timeout=30)
    up = Up(tmp, 2, 2, extra=["--ssh-key", key + ".pub"])
    try:
        up.wait_ready()
        assert up.get("HOSTUSER") == ["root"]
        hpw, = up.get("HOSTPASSWORD")
        hosts = up.hosts()
        assert len(hosts) == 2
        running = {}
        for i, h in enumerate(hosts):
            # The SSH shell of each host, exec mode, with the key we gave.
            r = subprocess.run([SSH] + SSH_OPTS + ["-i", key, "-p", h["ssh"], "root@127.0.0.1",
                                                   "esxcli", "system", "hostname", "get"],
                               capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
            assert r.returncode == 0, r.stderr
            assert r.stdout == "   Host Name: esx-%d\n" % i
            r = subprocess.run([SSH] + SSH_OPTS + ["-i", key, "-p", h["ssh"], "root@127.0.0.1",
                                                   "vm process list"],
                               capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
            assert r.returncode == 0, r.stderr
            running[h["id"]] = [b.splitlines()[0] for b in r.stdout.split("\n\n") if b.strip()]
            # kvcli against the host's own HTTPS endpoint, as root.
            k = subprocess.run([os.path.join(BUILDDIR, "cli", "kvcli"), "--server", h["api"],
                                "--user", "root", "--password", hpw, "--thumbprint",
                                h["thumbprint"], "vm", "process", "list"],
                               capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin",
                                                              "HOME": tmp})
            assert k.returncode == 0, k.stderr
            assert k.stdout == r.stdout
            # The host's CIM server, with the same root password.
            assert h["cim"].startswith("http://127.0.0.1:")
            body = cim_enum(h["cim"], "root", hpw, "CIM_ComputerSystem")
            assert '<VALUE>esx-%d</VALUE>' % i in body
        # Every VM runs on exactly one host, and the hosts say which.
        assert sorted(sum(running.values(), [])) == ["vm-0", "vm-1"]

        # CIM lists each host's VMs (kept current from vpxd's inventory).
        def cim_vms(h):
            body = cim_enum(h["cim"], "root", hpw, "KVC_VirtualMachine")
            return sorted(n for n in ("vm-0", "vm-1") if "<VALUE>%s</VALUE>" % n in body)
        for h in hosts:
            wait_for(lambda: cim_vms(h) == sorted(running[h["id"]]), 20,
                     "CIM VMs of %s" % h["id"])
        # kvc-cimd is in its host's process group: a host killed as a whole
        # (its group) loses its CIM server with it, the other host keeps its own.
        h0, h1 = hosts
        os.killpg(h0["pid"], signal.SIGKILL)
        cim0 = int(h0["cim"].rsplit(":", 1)[1])
        wait_for(lambda: not port_open(cim0), 10, "esx-0's CIM server gone with its group")
        assert port_open(int(h1["cim"].rsplit(":", 1)[1]))
        assert port_open(int(h1["ssh"]))
    finally:
        rc = up.stop()
    assert rc == 0


SNMPD = shutil.which("snmpd") or "/usr/sbin/snmpd"
SNMPWALK = shutil.which("snmpwalk")
KVC_ROOT = ".1.3.6.1.4.1.32473"


@pytest.mark.skipif(not (os.path.exists(SNMPD) and SNMPWALK),
                    reason="net-snmp missing (Debian packages snmpd, snmp)")
def test_up_agentx_serves_the_inventory_through_snmpd(tmp):
    # A private snmpd master: its own UDP port, AgentX socket and state.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    udp = s.getsockname()[1]
    s.close()
    agentx = os.path.join(tmp, "agentx")
    persist = os.path.join(tmp, "snmp-persist")
    os.makedirs(os.path.join(persist, "cert_indexes"))
    conf = os.path.join(tmp, "snmpd.conf")
    with open(conf, "w") as f:
        f.write("agentAddress udp:127.0.0.1:%d\nmaster agentx\nagentXSocket unix:%s\n"
                "rocommunity public 127.0.0.1\n" % (udp, agentx))
    env = dict(os.environ, MIBS="", SNMP_PERSISTENT_DIR=persist)
    snmpd = Daemon([SNMPD, "-f", "-Lo", "-C", "-c", conf, "-p", os.path.join(tmp, "snmpd.pid")],
                   logpath=os.path.join(tmp, "snmpd.log"), env=env)
    up = None
    try:
        snmpd.wait_log(r"NET-SNMP version")
        wait_for(lambda: os.path.exists(agentx), 10, "AgentX socket")
        up = Up(tmp, 2, 1, extra=["--agentx", "unix:" + agentx])
        up.wait_ready()

        def walk(oid):
            r = subprocess.run([SNMPWALK, "-v2c", "-c", "public", "-On", "-Oq", "-t", "5",
                                "-r", "1", "127.0.0.1:%d" % udp, oid], capture_output=True,
                               text=True, timeout=60, env=env)
            assert r.returncode == 0, r.stderr
            return {l.split(" ", 1)[0]: l.split(" ", 1)[1].strip('"')
                    for l in r.stdout.splitlines() if l.startswith(oid + ".")}
        # Host names (kvcHostTable column 2) and the VM's row.
        names = wait_for(lambda: sorted(walk(KVC_ROOT + ".3.1.1.2").values())
                         == ["esx-0", "esx-1"], 30, "the hosts in kvcHostTable")
        assert names
        vms = wait_for(lambda: walk(KVC_ROOT + ".2.1.1.2"), 20, "a VM in kvcVmTable")
        assert list(vms.values()) == ["vm-0"]
        idx = next(iter(vms)).rsplit(".", 1)[1]
        state = walk(KVC_ROOT + ".2.1.1.6")
        assert state[KVC_ROOT + ".2.1.1.6." + idx] == "powered on"
        hosts = {h["id"]: h for h in up.hosts()}
        row = walk(KVC_ROOT + ".3.1.1.9")       # kvcHostID
        assert sorted(row.values()) == sorted(hosts)
    finally:
        if up:
            rc = up.stop()
            assert rc == 0
        snmpd.stop()


def test_second_run_in_the_same_dir_starts_afresh(tmp):
    """README's demo command runs kvcenter-up on the same --dir every time:
    a second run must work (fresh cluster, new password), and a directory
    kvcenter-up did not make is never emptied."""
    for _ in range(2):
        up = Up(tmp, 1, 1)
        try:
            up.wait_ready()
            assert len(up.get("HOST")) == 1
        finally:
            up.p.send_signal(signal.SIGTERM)
            assert up.p.wait(60) == 0
    other = os.path.join(tmp, "mine")
    os.makedirs(other)
    with open(os.path.join(other, "keep"), "w") as f:
        f.write("x")
    r = subprocess.run([UP, "--dir", other, "--hosts", "1", "--backend", "sim"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "not empty" in r.stderr
    assert os.path.exists(os.path.join(other, "keep"))
