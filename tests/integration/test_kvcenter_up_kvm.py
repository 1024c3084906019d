"""kvcenter-up with the kvm backend: each host is hostd + its own vmkd + one
vmx per running VM, all in one process group led by the PID of its HOST
line; the guests really run, so their tools heartbeat reaches the REST API,
a guest shutdown goes through the guest, and killing a host's group takes
its VMs down with it."""
import base64
import json
import os
import re
import signal
import ssl
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request

import pytest

from kvctest import BUILDDIR, free_port, kvm_usable, wait_for

UP = os.path.join(BUILDDIR, "kvcenter-up")


def skip_reason():
    if not os.path.exists(UP):
        return "kvcenter-up not built"
    for rel in ("vpxd/vpxd", "hostd/hostd", "vmkernel-kvm/vmkd", "vmkernel-kvm/vmx",
                "vmkernel-kvm/guest/kvc-guest.elf"):
        if not os.path.exists(os.path.join(BUILDDIR, rel)):
            return "%s is not built" % rel
    if os.geteuid() != 0:
        return "vmkd needs root (cgroups)"
    if not kvm_usable():
        return "no usable /dev/kvm on this machine"
    return None


pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")


def group_members(pgid):
    """(pid, comm) of every live process in process group PGID."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append((int(d), comm))
    return out


class Cluster:
    def __init__(self, tmp, hosts, vms, backend="kvm"):
        self.port = free_port()
        self.dir = os.path.join(tmp, "c")
        self.errpath = os.path.join(tmp, "up.err")
        self.p = subprocess.Popen([UP, "--dir", os.path.join(tmp, "c"), "--hosts", str(hosts),
                                   "--vms", str(vms), "--backend", backend, "--port",
                                   str(self.port), "--heartbeat", "200"],
                                  stdout=subprocess.PIPE, stderr=open(self.errpath, "wb"),
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.token = None

    def _read(self):
        for raw in self.p.stdout:
            self.lines.append(raw.decode().rstrip("\n"))

    def wait_ready(self, timeout=120):
        def ready():
            if self.p.poll() is not None:
                with open(self.errpath) as f:
                    raise RuntimeError("kvcenter-up exited %s:\n%s" % (self.p.returncode, f.read()))
            return "READY" in self.lines
        wait_for(ready, timeout, "kvcenter-up READY")
        user = self.get("USER")[0]
        password = self.get("PASSWORD")[0]
        req = urllib.request.Request(self.url() + "/api/session", method="POST")
        req.add_header("Authorization", "Basic " + base64.b64encode(
            ("%s:%s" % (user, password)).encode()).decode())
        self.token = json.loads(urllib.request.urlopen(req, context=self.ctx).read())

    def get(self, key):
        return [l.split(" ", 1)[1] for l in self.lines if l.startswith(key + " ")]

    def url(self):
        return self.get("URL")[0]

    def api(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.url() + path, data=data, method=method)
        r.add_header("vmware-api-session-id", self.token)
        if data is not None:
            r.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(r, context=self.ctx, timeout=60) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, json.loads(raw) if raw else None

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        return self.p.wait(60)


@pytest.fixture
def cluster():
    with tempfile.TemporaryDirectory(prefix="kvc-up-kvm-") as tmp:
        c = Cluster(tmp, 2, 2)
        try:
            yield c
        finally:
            c.stop()


def test_kvm_hosts_groups_tools_guest_shutdown_and_host_kill(cluster):
    c = cluster
    c.wait_ready()
    hosts = [h.split() for h in c.get("HOST")]
    assert len(hosts) == 2
    assert all("backend=kvm" in h for h in hosts)
    leaders = [int(h[1]) for h in hosts]

    # Each host's group: its hostd (the leader), its vmkd, and a vmx per VM
    # it runs; the two VMs together make two vmx.
    def groups_complete():
        comms = [sorted(c for _, c in group_members(pg)) for pg in leaders]
        if any("hostd" not in g or "vmkd" not in g for g in comms):
            return None
        return comms if sum(g.count("vmx") for g in comms) == 2 else None
    comms = wait_for(groups_complete, 30, "hostd, vmkd and the vmx of each host in its group")
    for pg in leaders:
        assert os.getpgid(pg) == pg

    # The guests really heartbeat: tools RUNNING through vpxd.
    st, vms = c.api("GET", "/api/vcenter/vm")
    assert st == 200 and len(vms) == 2
    assert all(v["power_state"] == "POWERED_ON" for v in vms)

    def tools_running():
        states = [c.api("GET", "/api/vcenter/vm/%s/tools" % v["vm"])[1]["run_state"]
                  for v in vms]
        return all(s == "RUNNING" for s in states)
    wait_for(tools_running, 30, "tools RUNNING on both VMs")

    # esxcli vm process list on each host (kvcli at the host's own HTTPS
    # endpoint): a running VM's Process ID is its vmx, in that host's group.
    hpw = c.get("HOSTPASSWORD")[0]
    seen = []
    for h in c.get("HOST"):
        w = h.split()
        f = dict(kv.split("=", 1) for kv in w[2:] if "=" in kv)
        k = subprocess.run([os.path.join(BUILDDIR, "cli", "kvcli"), "--server", f["api"], "--user",
                            "root", "--password", hpw, "--thumbprint", f["thumbprint"], "vm",
                            "process", "list"], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin", "HOME": c.dir})
        assert k.returncode == 0, k.stderr
        vmx = {pid for pid, comm in group_members(int(w[1])) if comm == "vmx"}
        for pid in re.findall(r"Process ID: (\d+)", k.stdout):
            assert int(pid) in vmx, (pid, vmx, k.stdout)
            seen.append(int(pid))
    assert len(seen) == 2, seen

    # A guest shutdown is done by the guest (through vmx's tools device): the
    # VM powers off and its vmx goes.
    first = vms[0]["vm"]
    st, _ = c.api("POST", "/api/vcenter/vm/%s/guest/power?action=shutdown" % first)
    assert st in (200, 204), st
    wait_for(lambda: c.api("GET", "/api/vcenter/vm/%s/power" % first)[1]["state"]
             == "POWERED_OFF", 30, "guest-shutdown VM POWERED_OFF")
    wait_for(lambda: sum(cm.count("vmx") for cm in
                         [[x for _, x in group_members(pg)] for pg in leaders]) == 1,
             30, "one vmx left")

    # kill -9 of one whole host: hostd, vmkd and its vmx all go at once.
    victim = next(pg for pg in leaders if "vmx" in [x for _, x in group_members(pg)])
    os.killpg(victim, signal.SIGKILL)
    wait_for(lambda: not group_members(victim), 15, "the killed host's processes gone")
    other = [pg for pg in leaders if pg != victim][0]
    assert group_members(other), "the other host is untouched"


def test_suspend_resume_keeps_the_running_guest(cluster):
    c = cluster
    c.wait_ready()
    st, vms = c.api("GET", "/api/vcenter/vm")
    vm = vms[0]
    wait_for(lambda: c.api("GET", "/api/vcenter/vm/%s/tools" % vm["vm"])[1]["run_state"]
             == "RUNNING", 30, "tools RUNNING")
    folder = os.path.join(c.dir, "datastores", "shared", vm["name"])
    serial = os.path.join(folder, "serial.log")

    def readies():
        with open(serial) as f:
            return f.read().count("KVC-GUEST: ready")
    assert readies() == 1
    leaders = [int(h.split()[1]) for h in c.get("HOST")]

    def vmx_count():
        return sum([x for _, x in group_members(pg)].count("vmx") for pg in leaders)
    assert vmx_count() == 2

    st, body = c.api("POST", "/api/vcenter/vm/%s/power?action=suspend" % vm["vm"])
    assert st == 204, (st, body)
    wait_for(lambda: c.api("GET", "/api/vcenter/vm/%s/power" % vm["vm"])[1]["state"]
             == "SUSPENDED", 30, "SUSPENDED")
    wait_for(lambda: vmx_count() == 1, 30, "the suspended VM's vmx gone")
    assert os.path.exists(os.path.join(folder, vm["name"] + ".vmss"))

    # Resume: the same guest runs on (no second boot), tools beat again, and
    # the suspend file is gone.
    st, body = c.api("POST", "/api/vcenter/vm/%s/power?action=start" % vm["vm"])
    assert st == 204, (st, body)
    assert c.api("GET", "/api/vcenter/vm/%s/power" % vm["vm"])[1]["state"] == "POWERED_ON"
    wait_for(lambda: vmx_count() == 2, 30, "vmx running again")
    wait_for(lambda: c.api("GET", "/api/vcenter/vm/%s/tools" % vm["vm"])[1]["run_state"]
             == "RUNNING", 30, "tools RUNNING after resume")
    assert readies() == 1, "resumed, not rebooted"
    assert not os.path.exists(os.path.join(folder, vm["name"] + ".vmss"))

    # Suspend again, then power off: the suspended state is discarded.
    st, body = c.api("POST", "/api/vcenter/vm/%s/power?action=suspend" % vm["vm"])
    assert st == 204, (st, body)
    wait_for(lambda: vmx_count() == 1, 30, "vmx gone")
    st, body = c.api("POST", "/api/vcenter/vm/%s/power?action=stop" % vm["vm"])
    assert st == 204, (st, body)
    assert c.api("GET", "/api/vcenter/vm/%s/power" % vm["vm"])[1]["state"] == "POWERED_OFF"
    assert not os.path.exists(os.path.join(folder, vm["name"] + ".vmss"))


def test_stop_leaves_no_vmx(cluster):
    c = cluster
    c.wait_ready()
    leaders = [int(h.split()[1]) for h in c.get("HOST")]
    wait_for(lambda: sum([x for _, x in group_members(pg)].count("vmx") for pg in leaders) == 2,
             30, "two vmx running")
    assert c.stop() == 0
    for pg in leaders:
        wait_for(lambda: not group_members(pg), 15, "host group %d gone" % pg)
