"""`network vswitch standard [portgroup] list|add|remove|set` and `vm
process list|kill` end to end: kvcli against vpxd (--host) and against a
host directly, and the host's SSH shell, on a kvcenter-up cluster (sim
backend); every formatter, esxcli's --vlan-id error, REST bad input that
changes nothing, add/remove round trips visible in /api/vcenter/network and
in the shell.  With /dev/kvm and root, a kvm-backend host shows the change
really reaches vmkd's data plane (vmkdctl, and vmkd's state file)."""
import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from kvctest import BUILDDIR, binpath, free_port, kvm_usable, wait_for

UP = os.path.join(BUILDDIR, "kvcenter-up")
NS = "{http://www.vmware.com/Products/ESX/5.0/esxcli/}"
SSH = shutil.which("ssh")
SSH_KEYGEN = shutil.which("ssh-keygen")
COMMON = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
          "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20", "-F", "/dev/null"]


def skip_reason():
    for p in (UP, os.path.join(BUILDDIR, "vpxd", "vpxd"), binpath("cli/kvcli")):
        if not os.path.exists(p):
            return "%s not built" % p
    if not (SSH and SSH_KEYGEN):
        return "OpenSSH client not installed (Debian package openssh-client)"
    return None


pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")


class Cluster:
    def __init__(self, tmp, backend, vms):
        self.tmp = tmp
        self.port = free_port()
        self.key = os.path.join(tmp, "id")
        subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", self.key],
                       check=True)
        self.err = open(os.path.join(tmp, "up.err"), "wb")
        self.p = subprocess.Popen([UP, "--dir", os.path.join(tmp, "c"), "--hosts", "1",
                                   "--vms", str(vms), "--backend", backend, "--port",
                                   str(self.port), "--ssh-key", self.key + ".pub", "--no-cim"],
                                  stdout=subprocess.PIPE, stderr=self.err,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.p.stdout:
            self.lines.append(raw.decode().rstrip("\n"))

    def wait_ready(self):
        def ready():
            if self.p.poll() is not None:
                with open(os.path.join(self.tmp, "up.err")) as f:
                    raise RuntimeError("kvcenter-up exited %s:\n%s" % (self.p.returncode,
                                                                       f.read()[-4000:]))
            return "READY" in self.lines
        wait_for(ready, 120, "kvcenter-up READY")
        get = lambda k: [l.split(" ", 1)[1] for l in self.lines if l.startswith(k + " ")]
        self.url, = get("URL")
        self.user, = get("USER")
        self.password, = get("PASSWORD")
        self.thumb, = get("THUMBPRINT")
        self.host_password = get("HOSTPASSWORD")[0]
        w = get("HOST")[0].split()
        self.host = dict(x.split("=", 1) for x in w[2:])
        self.host_id = w[0]
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        req = urllib.request.Request(self.url + "/api/session", method="POST")
        req.add_header("Authorization", "Basic " + base64.b64encode(
            ("%s:%s" % (self.user, self.password)).encode()).decode())
        self.token = json.loads(urllib.request.urlopen(req, context=self.ctx, timeout=30).read())

    def rest(self, method, path, body=None):
        """(status, decoded reply) of a vpxd REST call."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, method=method, data=data)
        req.add_header("vmware-api-session-id", self.token)
        if data:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, json.loads(raw) if raw else None

    def networks(self):
        st, nets = self.rest("GET", "/api/vcenter/network")
        assert st == 200
        return sorted(n["name"] for n in nets)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(10)
        self.err.close()


@pytest.fixture(scope="module")
def cl():
    with tempfile.TemporaryDirectory(prefix="kvc-net-") as d:
        c = Cluster(d, "sim", 1)
        try:
            c.wait_ready()
            yield c
        finally:
            c.stop()


def env():
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            e[k] = os.environ[k]
    return e


def kvcli(c, *args):
    """kvcli against vpxd."""
    g = ["--server", c.url, "--user", c.user, "--password", c.password, "--thumbprint", c.thumb]
    return subprocess.run([binpath("cli/kvcli")] + g + list(args), capture_output=True,
                          text=True, timeout=60, env=env(), stdin=subprocess.DEVNULL)


def hostcli(c, *args):
    """kvcli against the host itself (its HTTPS API)."""
    g = ["--server", c.host["api"], "--user", "root", "--password", c.host_password,
         "--thumbprint", c.host["thumbprint"]]
    return subprocess.run([binpath("cli/kvcli")] + g + list(args), capture_output=True,
                          text=True, timeout=60, env=env(), stdin=subprocess.DEVNULL)


def ssh(c, *cmd):
    argv = [SSH] + COMMON + ["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", c.key,
                             "-p", c.host["ssh"], "root@127.0.0.1"] + list(cmd)
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def ok(r):
    assert r.returncode == 0, (r.args[-6:], r.stderr)
    assert r.stderr == ""
    return r.stdout


def H(c):
    return ["--host", c.host_id]


# ---- formatters ------------------------------------------------------------

def test_vswitch_list_every_formatter(cl):
    out = ok(kvcli(cl, "network", "vswitch", "standard", "list", *H(cl)))
    assert out.startswith("vSwitch0\n   Name: vSwitch0\n   Class: cswitch\n   Num Ports: 128\n"
                          "   Used Ports: ")
    assert "   Configured Ports: 128\n   MTU: 1500\n   Uplinks: \n" in out
    assert "   Portgroups: VM Network\n" in out
    j = json.loads(ok(kvcli(cl, "--formatter=json", "network", "vswitch", "standard", "list",
                            *H(cl))))
    assert j[0]["Name"] == "vSwitch0" and j[0]["MTU"] == 1500
    assert j[0]["Portgroups"] == ["VM Network"] and j[0]["Uplinks"] == []
    csv = ok(kvcli(cl, "--formatter=csv", "network", "vswitch", "standard", "list", *H(cl)))
    assert csv.splitlines()[0] == ("Class,ConfiguredPorts,MTU,Name,NumPorts,Portgroups,"
                                   "Uplinks,UsedPorts,")
    kv = ok(kvcli(cl, "--formatter=keyvalue", "network", "vswitch", "standard", "list",
                  *H(cl)))
    assert "VirtualSwitch.Name.string=vSwitch0\n" in kv
    assert "VirtualSwitch.MTU.integer=1500\n" in kv
    root = ET.fromstring(ok(kvcli(cl, "--formatter=xml", "network", "vswitch", "standard",
                                  "list", *H(cl))))
    s = root.find("%sroot/%slist/%sstructure" % (NS, NS, NS))
    assert s.get("typeName") == "VirtualSwitch"
    f = {x.get("name"): x for x in s.findall(NS + "field")}
    assert f["Name"].find(NS + "string").text == "vSwitch0"
    assert f["MTU"].find(NS + "integer").text == "1500"
    assert [x.text for x in f["Portgroups"].iter(NS + "string")] == ["VM Network"]


def test_portgroup_list_every_formatter(cl):
    out = ok(kvcli(cl, "network", "vswitch", "standard", "portgroup", "list", *H(cl)))
    lines = out.splitlines()
    assert lines[0].split() == ["Name", "Virtual", "Switch", "Active", "Clients", "VLAN", "ID"]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split()[:3] == ["VM", "Network", "vSwitch0"]
    j = json.loads(ok(kvcli(cl, "--formatter=json", "network", "vswitch", "standard",
                            "portgroup", "list", *H(cl))))
    assert j[0] == {"Name": "VM Network", "VirtualSwitch": "vSwitch0",
                    "ActiveClients": j[0]["ActiveClients"], "VLANID": 0}
    assert ok(kvcli(cl, "--formatter=csv", "network", "vswitch", "standard", "portgroup",
                    "list", *H(cl))).splitlines()[0] == "ActiveClients,Name,VLANID,VirtualSwitch,"
    kv = ok(kvcli(cl, "--formatter=keyvalue", "network", "vswitch", "standard", "portgroup",
                  "list", *H(cl)))
    assert "PortGroup.Name.string=VM Network\nPortGroup.VirtualSwitch.string=vSwitch0\n" in kv
    root = ET.fromstring(ok(kvcli(cl, "--formatter=xml", "network", "vswitch", "standard",
                                  "portgroup", "list", *H(cl))))
    s = root.find("%sroot/%slist/%sstructure" % (NS, NS, NS))
    assert s.get("typeName") == "PortGroup"


# ---- errors ------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["4096", "abc", "-1"])
def test_vlan_id_error_changes_nothing(cl, bad):
    before = ok(kvcli(cl, "network", "vswitch", "standard", "portgroup", "list", *H(cl)))
    r = kvcli(cl, "network", "vswitch", "standard", "portgroup", "set", "-p", "VM Network",
              "--vlan-id", bad, *H(cl))
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.startswith("Error: While processing '--vlan-id'. Expected an integer in "
                               "the range (0 - 4095), got '%s'.\n" % bad)
    assert "Usage: kvcli network vswitch standard portgroup set [cmd options]" in r.stderr
    # The same from the host's shell, which says esxcli.
    s = ssh(cl, "esxcli", "network", "vswitch", "standard", "portgroup", "set", "-p",
            "'VM Network'", "-v", bad)
    assert s.returncode == 1
    assert s.stderr.startswith("Error: While processing '--vlan-id'. Expected an integer")
    assert "Usage: esxcli network vswitch standard portgroup set" in s.stderr
    assert ok(kvcli(cl, "network", "vswitch", "standard", "portgroup", "list",
                    *H(cl))) == before


def test_rest_bad_input_changes_nothing(cl):
    base = "/api/kvc/host/%s" % cl.host_id
    _, sw0 = cl.rest("GET", base + "/vswitches")
    _, pg0 = cl.rest("GET", base + "/portgroups")
    bad = [
        ("POST", "/vswitches", {"name": "a/b"}),
        ("POST", "/vswitches", {"name": "x" * 64}),
        ("POST", "/vswitches", {"name": "vs9", "ports": 4097}),
        ("POST", "/vswitches", {"name": "vs9", "mtu": 67}),
        ("POST", "/vswitches", {"name": "vs9", "colour": "red"}),
        ("POST", "/vswitches", ["vs9"]),
        ("POST", "/portgroups", {"name": "pg9", "vswitch": "vSwitch0", "vlan": 4096}),
        ("POST", "/portgroups", {"name": "pg9", "vswitch": "vSwitch0", "vlan": "7"}),
        ("POST", "/portgroups", {"name": "pg9"}),
        ("PATCH", "/portgroups/VM%20Network", {"vlan": -1}),
        ("PATCH", "/portgroups/VM%20Network", {}),
    ]
    for method, path, body in bad:
        st, err = cl.rest(method, base + path, body)
        assert st == 400, (method, path, body, st, err)
        assert err["error_type"] == "INVALID_ARGUMENT", (path, body, err)
    # Refused by the host: the names it knows.
    st, err = cl.rest("POST", base + "/vswitches", {"name": "vSwitch0"})
    assert (st, err["error_type"]) == (400, "ALREADY_EXISTS")
    st, err = cl.rest("POST", base + "/portgroups", {"name": "pg9", "vswitch": "nope"})
    assert st == 404 and err["error_type"] == "NOT_FOUND"
    st, err = cl.rest("DELETE", base + "/vswitches/vSwitch0")
    assert (st, err["error_type"]) == (400, "RESOURCE_IN_USE")
    assert "VM Network" in err["messages"][0]["default_message"]
    st, err = cl.rest("DELETE", base + "/portgroups/nope")
    assert st == 404
    st, err = cl.rest("GET", "/api/kvc/host/host-999999/vswitches")
    assert st == 404
    # vpxd lists a host's switches only with --host.
    r = kvcli(cl, "network", "vswitch", "standard", "list")
    assert r.returncode == 1
    assert r.stderr.endswith(" (on vpxd, name the host with --host)\n"), r.stderr
    assert cl.rest("GET", base + "/vswitches") == (200, sw0)
    assert cl.rest("GET", base + "/portgroups") == (200, pg0)


def test_routes_in_openapi(cl):
    st, doc = cl.rest("GET", "/api/openapi.json")
    assert st == 200
    for p, methods in (("/api/kvc/host/{host}/vswitches", ("get", "post")),
                       ("/api/kvc/host/{host}/vswitches/{vswitch}", ("delete",)),
                       ("/api/kvc/host/{host}/portgroups", ("get", "post")),
                       ("/api/kvc/host/{host}/portgroups/{portgroup}", ("patch", "delete")),
                       ("/api/kvc/vm-processes", ("get",))):
        for m in methods:
            assert m in doc["paths"][p], (p, m)


# ---- round trips -----------------------------------------------------------

def test_round_trip_through_vpxd(cl):
    net = ["network", "vswitch", "standard"]
    ok(kvcli(cl, *net, "add", "-v", "vSwitch7", "--ports", "64", *H(cl)))
    out = ok(kvcli(cl, *net, "list", "-v", "vSwitch7", *H(cl)))
    assert out.startswith("vSwitch7\n   Name: vSwitch7\n") and "   Num Ports: 64\n" in out
    ok(kvcli(cl, *net, "portgroup", "add", "-p", "Web 42", "-v", "vSwitch7", *H(cl)))
    ok(kvcli(cl, *net, "portgroup", "set", "-p", "Web 42", "--vlan-id", "42", *H(cl)))
    wait_for(lambda: "Web 42" in cl.networks(), 20, "Web 42 in /api/vcenter/network")
    j = json.loads(ok(kvcli(cl, "--formatter=json", *net, "portgroup", "list", *H(cl))))
    assert {"Name": "Web 42", "VirtualSwitch": "vSwitch7", "ActiveClients": 0,
            "VLANID": 42} in j
    # The host's own shell sees what vpxd changed.
    s = ok(ssh(cl, "esxcli", *net, "portgroup", "list"))
    row = [l for l in s.splitlines() if l.startswith("Web 42 ")]
    assert row and row[0].split()[2:] == ["vSwitch7", "0", "42"]
    assert "Portgroups: Web 42" in ok(ssh(cl, "esxcli", *net, "list", "-v", "vSwitch7"))
    # A switch with a port group stays; esxcli's error, exit 1.
    r = kvcli(cl, *net, "remove", "-v", "vSwitch7", *H(cl))
    assert r.returncode == 1 and r.stderr.startswith("Error: vSwitch vSwitch7 still has port "
                                                     "group Web 42")
    # The port group must be on the switch named.
    r = kvcli(cl, *net, "portgroup", "remove", "-p", "Web 42", "-v", "vSwitch0", *H(cl))
    assert r.returncode == 1
    assert r.stderr == "Error: Unable to find portgroup Web 42 on vswitch vSwitch0\n"
    ok(kvcli(cl, *net, "portgroup", "remove", "-p", "Web 42", "-v", "vSwitch7", *H(cl)))
    wait_for(lambda: "Web 42" not in cl.networks(), 20, "Web 42 gone from /api/vcenter/network")
    assert "Web 42" not in ok(ssh(cl, "esxcli", *net, "portgroup", "list"))
    ok(kvcli(cl, *net, "remove", "-v", "vSwitch7", *H(cl)))
    assert "vSwitch7" not in ok(kvcli(cl, *net, "list", *H(cl)))


def test_round_trip_through_the_host_and_its_shell(cl):
    net = ["network", "vswitch", "standard"]
    # kvcli straight to the host (no --host).
    ok(hostcli(cl, *net, "portgroup", "add", "-p", "Direct PG", "-v", "vSwitch0"))
    wait_for(lambda: "Direct PG" in cl.networks(), 20, "Direct PG in /api/vcenter/network")
    st, pgs = cl.rest("GET", "/api/kvc/host/%s/portgroups" % cl.host_id)
    assert {"name": "Direct PG", "vswitch": "vSwitch0", "active_clients": 0, "vlan": 0} in pgs
    # The SSH shell changes it, vpxd follows.
    ok(ssh(cl, "esxcli", *net, "portgroup", "set", "-p", "'Direct PG'", "--vlan-id", "4095"))
    j = json.loads(ok(kvcli(cl, "--formatter=json", *net, "portgroup", "list", *H(cl))))
    assert {"Name": "Direct PG", "VirtualSwitch": "vSwitch0", "ActiveClients": 0,
            "VLANID": 4095} in j
    ok(ssh(cl, "esxcli", *net, "portgroup", "remove", "-p", "'Direct PG'", "-v", "vSwitch0"))
    wait_for(lambda: "Direct PG" not in cl.networks(), 20, "Direct PG gone")
    assert "Direct PG" not in ok(hostcli(cl, *net, "portgroup", "list"))
    # kvcli on the host and the shell print the same bytes.
    for words in ([*net, "list"], ["--formatter=xml", *net, "portgroup", "list"]):
        assert ok(hostcli(cl, *words)) == ok(ssh(cl, "esxcli", *words))


def test_a_portgroup_with_a_running_vm_stays(cl):
    net = ["network", "vswitch", "standard", "portgroup"]
    ok(kvcli(cl, *net, "add", "-p", "Busy PG", "-v", "vSwitch0", *H(cl)))
    wait_for(lambda: "Busy PG" in cl.networks(), 20, "Busy PG in /api/vcenter/network")
    _, nets = cl.rest("GET", "/api/vcenter/network?names=Busy%20PG")
    _, dss = cl.rest("GET", "/api/vcenter/datastore")
    st, vm = cl.rest("POST", "/api/vcenter/vm", {
        "name": "busy01", "guest_OS": "OTHER_LINUX_64",
        "placement": {"host": cl.host_id, "datastore": dss[0]["datastore"]},
        "nics": [{"backing": {"type": "STANDARD_PORTGROUP", "network": nets[0]["network"]}}]})
    assert st == 201, vm
    assert cl.rest("POST", "/api/vcenter/vm/%s/power?action=start" % vm)[0] == 204
    j = json.loads(ok(kvcli(cl, "--formatter=json", *net, "list", *H(cl))))
    assert {"Name": "Busy PG", "VirtualSwitch": "vSwitch0", "ActiveClients": 1,
            "VLANID": 0} in j
    r = kvcli(cl, *net, "remove", "-p", "Busy PG", "-v", "vSwitch0", *H(cl))
    assert r.returncode == 1
    assert r.stderr == ("Error: The portgroup Busy PG has 1 active client(s) "
                        "(powered-on VMs)\n")
    assert "Busy PG" in cl.networks()
    assert cl.rest("POST", "/api/vcenter/vm/%s/power?action=stop" % vm)[0] == 204
    ok(kvcli(cl, *net, "remove", "-p", "Busy PG", "-v", "vSwitch0", *H(cl)))
    wait_for(lambda: "Busy PG" not in cl.networks(), 20, "Busy PG gone")
    assert cl.rest("DELETE", "/api/vcenter/vm/%s" % vm)[0] == 204


# ---- vm process ------------------------------------------------------------

def test_vm_process_list_and_kill(cl):
    def procs(run, *extra):
        return json.loads(ok(run(cl, "--formatter=json", "vm", "process", "list", *extra)))

    mine = procs(kvcli)
    assert mine, "a running VM"
    assert procs(kvcli, *H(cl)) == mine
    on_host = procs(hostcli)
    # vpxd derives the world id as the host does.
    assert [(p["WorldID"], p["UUID"], p["DisplayName"]) for p in mine] == \
        [(p["WorldID"], p["UUID"], p["DisplayName"]) for p in on_host]
    out = ok(kvcli(cl, "vm", "process", "list"))
    assert out.startswith("%s\n   World ID: %d\n" % (mine[0]["DisplayName"], mine[0]["WorldID"]))
    # Bad type: esxcli's error, nothing sent.
    r = kvcli(cl, "vm", "process", "kill", "-t", "gentle", "-w", str(mine[0]["WorldID"]))
    assert r.returncode == 1 and r.stderr.startswith("Error: While processing '--type'.")
    r = kvcli(cl, "vm", "process", "kill", "-t", "hard", "-w", "12")
    assert r.returncode == 1 and "no running virtual machine has world id 12" in r.stderr
    st, vms = cl.rest("GET", "/api/vcenter/vm?power_states=POWERED_ON")
    vm = [v["vm"] for v in vms if v["name"] == mine[0]["DisplayName"]][0]
    # soft: the guest shuts down (tools run in the sim guest).
    ok(kvcli(cl, "vm", "process", "kill", "--type", "soft", "--world-id",
             str(mine[0]["WorldID"])))
    wait_for(lambda: cl.rest("GET", "/api/vcenter/vm/%s/power" % vm)[1]["state"] ==
             "POWERED_OFF", 20, "soft kill powers the VM off")
    assert procs(kvcli) == []
    # hard, on the host itself.
    ok(kvcli(cl, "vm", "power", "on", "--vm", vm))
    wait_for(lambda: procs(hostcli) != [], 20, "the VM runs again")
    ok(hostcli(cl, "vm", "process", "kill", "-t", "hard", "-w", str(mine[0]["WorldID"])))
    wait_for(lambda: cl.rest("GET", "/api/vcenter/vm/%s/power" % vm)[1]["state"] ==
             "POWERED_OFF", 20, "hard kill on the host powers the VM off")
    # force, through the shell.
    ok(kvcli(cl, "vm", "power", "on", "--vm", vm))
    wait_for(lambda: procs(kvcli) != [], 20, "the VM runs again")
    ok(ssh(cl, "esxcli", "vm", "process", "kill", "-t", "force", "-w",
           str(mine[0]["WorldID"])))
    wait_for(lambda: procs(kvcli) == [], 20, "force kill powers the VM off")
    ok(kvcli(cl, "vm", "power", "on", "--vm", vm))
    wait_for(lambda: procs(kvcli) != [], 20, "the VM runs again")


# ---- kvm: the change reaches vmkd -------------------------------------------

def kvm_skip():
    for rel in ("hostd/hostd", "vmkernel-kvm/vmkd", "vmkernel-kvm/vmkdctl", "vmkernel-kvm/vmx",
                "vmkernel-kvm/guest/kvc-guest.elf"):
        if not os.path.exists(os.path.join(BUILDDIR, rel)):
            return "%s is not built" % rel
    if os.geteuid() != 0:
        return "vmkd needs root (cgroups)"
    if not kvm_usable():
        return "no usable /dev/kvm on this machine"
    return None


def test_kvm_change_reaches_vmkd():
    why = kvm_skip()
    if why:
        pytest.skip(why)
    with tempfile.TemporaryDirectory(prefix="kvc-net-kvm-") as d:
        c = Cluster(d, "kvm", 0)
        try:
            c.wait_ready()
            assert c.host["backend"] == "kvm"
            hd = os.path.join(d, "c", "hosts", "esx-0")
            vmkdctl = lambda *a: subprocess.run(
                [binpath("vmkernel-kvm/vmkdctl"), "-s", os.path.join(hd, "vmkd.sock")] +
                list(a), capture_output=True, text=True, timeout=30)
            # hostd gave its configured port group to vmkd at start-up.
            assert 'portgroup name="VM Network" vswitch="vSwitch0" vlan=0' in \
                vmkdctl("vswitch-list").stdout
            net = ["network", "vswitch", "standard"]
            ok(kvcli(c, *net, "add", "-v", "vSwitch1", *H(c)))
            ok(kvcli(c, *net, "portgroup", "add", "-p", "Kvm PG", "-v", "vSwitch1", *H(c)))
            ok(kvcli(c, *net, "portgroup", "set", "-p", "Kvm PG", "-v", "77", *H(c)))
            want = 'portgroup name="Kvm PG" vswitch="vSwitch1" vlan=77'
            wait_for(lambda: want in vmkdctl("vswitch-list").stdout, 20,
                     "vmkd has the new port group")
            assert 'vswitch name="vSwitch1" ports=128' in vmkdctl("vswitch-list").stdout
            # vmkd keeps it for its next start.
            with open(os.path.join(hd, "vmkd-state", "vswitch.state")) as f:
                assert "portgroup\tKvm PG\tvSwitch1\t77\n" in f.read()
            wait_for(lambda: "Kvm PG" in c.networks(), 20, "Kvm PG in /api/vcenter/network")
            ok(ssh(c, "esxcli", *net, "portgroup", "remove", "-p", "'Kvm PG'", "-v",
                   "vSwitch1"))
            ok(kvcli(c, *net, "remove", "-v", "vSwitch1", *H(c)))
            wait_for(lambda: "vSwitch1" not in vmkdctl("vswitch-list").stdout, 20,
                     "vmkd dropped vSwitch1")
            assert "Kvm PG" not in vmkdctl("vswitch-list").stdout
            wait_for(lambda: "Kvm PG" not in c.networks(), 20, "Kvm PG gone")
        finally:
            c.stop()
