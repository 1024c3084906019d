"""VM leases across hosts (lib/lease.h, docs/hosts.md "Leases"): two hosts
on one shared datastore directory, each a real hostd (sim backend; and the
kvm backend with its own vmkd and the real vmx where /dev/kvm works).

- A power-on on host B of a VM running on host A is refused (EBUSY, naming A).
- SIGKILL of host A's whole process group: its lease is not renewed, and
  after the lease duration host B powers the VM on.
- Host A comes back: it does not run the VM (its power-on is refused, naming B).
- Fencing: a holder that finds a record it did not write powers off at once.

Lease durations are short here (1.5-2 s).  Every wait polls with a deadline."""
import os
import re
import signal
import tempfile
import time
import uuid

import pytest

from hostd_util import Driver, Hostd, rpc_missing_reason
from kvctest import Daemon, binpath, kvm_usable, wait_for

LEASE_MS = 1500

_reason = rpc_missing_reason()
pytestmark = pytest.mark.skipif(_reason is not None, reason=_reason or "")


def read_lease(path):
    """The lease file as a dict (lib/lease.h format), or None if absent."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    assert lines[0] == "kvc-lease 1" and lines[-1] == "end", lines
    return dict(l.split("=", 1) for l in lines[1:-1])


def write_lease(path, **kv):
    """Write a record the way another host would: under the contenders' lock
    file (link(2) of a file of ours to PATH.lock), temp file + rename."""
    keys = ["owner", "owner_name", "vm", "state", "generation", "heartbeat", "time_ms",
            "duration_ms"]
    text = "kvc-lease 1\n" + "".join("%s=%s\n" % (k, kv[k]) for k in keys) + "end\n"
    mine = "%s.lock.test.%d" % (path, os.getpid())
    with open(mine, "w") as f:
        f.write("test %d %d\n" % (os.getpid(), int(time.time() * 1000)))

    def locked():
        try:
            os.link(mine, path + ".lock")
            return True
        except FileExistsError:
            return False
    try:
        wait_for(locked, 10, "the lease lock of %s" % path)
    finally:
        os.unlink(mine)
    try:
        tmp = path + ".test.tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, path)
    finally:
        os.unlink(path + ".lock")


def register_on(state_dir, config_path):
    """Host B holds the VM too (its registry, as VM_REGISTER would leave it)."""
    os.makedirs(state_dir, exist_ok=True)
    with open(os.path.join(state_dir, "vms"), "a") as f:
        f.write(config_path + "\n")


def power(drv, hid, u, op="on"):
    return drv.call("power %s %s %s" % (hid, u, op), timeout=60)


def take_over(drv, hid, u, what):
    """Power-on until it succeeds; every refusal before must be EBUSY."""
    seen = []

    def attempt():
        r = power(drv, hid, u)
        if r.startswith("OK"):
            return r
        assert r.startswith("ERR 16 "), r
        seen.append(r)
        time.sleep(0.1)
        return None
    r = wait_for(attempt, 30, what)
    assert "power=POWERED_ON" in r, r
    return seen


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory(prefix="kvc-lease-") as d:
        yield d


# ---- sim backend ------------------------------------------------------------

def sim_host(tmp, name, state=None, port=None):
    extra = ["--lease-ms", str(LEASE_MS)]
    if port:
        extra += ["--port", str(port)]
    return Hostd(tmp, name=name, state=state, extra=extra)


def test_sim_two_hosts_one_vm(tmp):
    drv = Driver(tmp)
    a = b = a2 = None
    try:
        a = sim_host(tmp, "esx-a")
        ha = drv.add(a.hosts[0])
        u = str(uuid.uuid4())
        drv.ok("create %s %s vm1 shared" % (ha, u))
        vmdir = os.path.join(tmp, "shared", "vm1")
        lck = os.path.join(vmdir, "vm1.lck")
        register_on(os.path.join(tmp, "hostd-esx-b"), os.path.join(vmdir, "vm1.vmx"))
        b = sim_host(tmp, "esx-b")
        hb = drv.add(b.hosts[0])
        assert read_lease(lck) is None

        r = power(drv, ha, u)
        assert "power=POWERED_ON" in r, r
        l1 = read_lease(lck)
        assert l1["owner"] == a.hosts[0]["uuid"] and l1["state"] == "held", l1
        assert l1["owner_name"] == "esx-a" and l1["duration_ms"] == str(LEASE_MS)
        # A renews it (the heartbeat moves) ...
        wait_for(lambda: int(read_lease(lck)["heartbeat"]) >= 2, 10, "renewals")
        # ... so B is refused, and told who runs it.
        r = power(drv, hb, u)
        assert r.startswith("ERR 16 ") and "running on host esx-a" in r, r

        # Host A dies with everything in its process group.
        a.kill9()
        refused = take_over(drv, hb, u, "host B to take the VM over")
        assert refused, "B's first power-on must have been refused (the lease was live)"
        l2 = read_lease(lck)
        assert l2["owner"] == b.hosts[0]["uuid"], l2
        assert int(l2["generation"]) > int(l1["generation"]), (l1, l2)
        assert "taking over the expired lease of host esx-a" in b.d.log()

        # A comes back: it does not run the VM, and may not start it.
        a2 = sim_host(tmp, "esx-a", state=a.state, port=a.hosts[0]["port"])
        drv.wait_state(ha, "connected", timeout=20)
        # (hostd decides what still runs before it serves: "host ready")
        assert "VM vm1 is still running" not in a2.d.log()
        r = power(drv, ha, u)
        assert r.startswith("ERR 16 ") and "running on host esx-b" in r, r
        assert read_lease(lck)["owner"] == b.hosts[0]["uuid"]

        # B powers it off: the lease is free, and A may run it again.
        drv.ok("power %s %s off" % (hb, u))
        l3 = read_lease(lck)
        assert l3["state"] == "free", l3
        r = power(drv, ha, u)
        assert "power=POWERED_ON" in r, r
        assert read_lease(lck)["owner"] == a.hosts[0]["uuid"]

        # Fencing: another host's record appears (a takeover A did not
        # write): A powers the VM off at once.
        m = drv.mark()
        cur = read_lease(lck)
        write_lease(lck, owner="host-c-test", owner_name="esx-c", vm="vm1", state="held",
                    generation=int(cur["generation"]) + 1, heartbeat=0,
                    time_ms=int(time.time() * 1000), duration_ms=LEASE_MS)
        drv.wait_event(r"^vm %s %s POWERED_OFF" % (ha, u), since=m, timeout=15)
        a2.d.wait_log(r"VM vm1: lease lost, powering off: .*held by host esx-c", timeout=5)
        assert read_lease(lck)["owner"] == "host-c-test"
        # A corrupt lease: a clear refusal, nothing changes, hostd keeps serving.
        with open(lck, "w") as f:
            f.write("kvc-lease 1\nowner=x\n")
        r = power(drv, ha, u)
        assert r.startswith("ERR ") and "corrupt" in r, r
        assert drv.state(ha) == "connected"
    finally:
        for h in (a2, b):
            if h:
                h.stop()
        if a and a.d.alive():
            a.stop()
        drv.stop()


# ---- kvm backend: vmkd and the real vmx -------------------------------------

VMKD = binpath("vmkernel-kvm/vmkd")
VMX = binpath("vmkernel-kvm/vmx")
GUEST = binpath("vmkernel-kvm/guest/kvc-guest.elf")
KVM_LEASE_MS = 2000


def kvm_skip_reason():
    if os.geteuid() != 0:
        return "vmkd needs root (cgroups)"
    ok, why = kvm_usable()
    if not ok:
        return why
    for p in (VMKD, VMX, GUEST):
        if not os.path.exists(p):
            return "%s is not built" % p
    return None


class Vmkd:
    def __init__(self, tmp, name):
        d = os.path.join(tmp, "vmkd-" + name)
        os.makedirs(d, exist_ok=True)
        self.sock = os.path.join(d, "vmkd.sock")
        self.conf = os.path.join(d, "vmkd.conf")
        with open(self.conf, "w") as f:
            f.write('[vmkd]\nstate-dir = "%s"\nsocket = "%s"\nvmx = "%s"\n'
                    'ready-timeout = 30s\nstop-timeout = 5s\nstop-vms-on-exit = true\n'
                    '[cgroup]\nparent = "kvcenter-leasetest-%s-%d"\n'
                    'remove-parent-on-exit = true\n'
                    % (os.path.join(d, "state"), self.sock, VMX, name, os.getpid()))
        self.start()

    def start(self):
        self.d = Daemon([VMKD, "-f", self.conf])
        self.d.wait_log(r"vmkd ready", timeout=15)

    def stop(self):
        return self.d.stop()


def kvm_host(tmp, name, vmkd, state=None, port=None):
    extra = ["--vmkd-socket", vmkd.sock, "--guest-image", GUEST,
             "--lease-ms", str(KVM_LEASE_MS)]
    if port:
        extra += ["--port", str(port)]
    return Hostd(tmp, name=name, state=state, extra=extra, backend="kvm")


@pytest.mark.skipif(kvm_skip_reason() is not None, reason=kvm_skip_reason() or "")
def test_kvm_two_hosts_one_vm(tmp):
    drv = Driver(tmp)
    va = vb = a = b = a2 = None
    try:
        va, vb = Vmkd(tmp, "a"), Vmkd(tmp, "b")
        a = kvm_host(tmp, "esx-a", va)
        ha = drv.add(a.hosts[0])
        u = str(uuid.uuid4())
        drv.ok("create %s %s kvm1 shared" % (ha, u))
        vmdir = os.path.join(tmp, "shared", "kvm1")
        lck = os.path.join(vmdir, "kvm1.lck")
        register_on(os.path.join(tmp, "hostd-esx-b"), os.path.join(vmdir, "kvm1.vmx"))
        b = kvm_host(tmp, "esx-b", vb)
        hb = drv.add(b.hosts[0])

        r = power(drv, ha, u)
        assert "power=POWERED_ON" in r, r
        log = os.path.join(vmdir, "vmware.log")
        # vmx itself holds and renews the lease.
        wait_for(lambda: os.path.exists(log) and "VMX-LEASE acquired" in open(log).read(),
                 20, "vmx's lease")
        wait_for(lambda: "KVC-GUEST: ready" in open(os.path.join(vmdir, "serial.log")).read(),
                 30, "the guest on A")
        wait_for(lambda: int(read_lease(lck)["heartbeat"]) >= 2, 20, "vmx renewing")
        assert read_lease(lck)["owner"] == a.hosts[0]["uuid"]
        r = power(drv, hb, u)
        assert r.startswith("ERR 16 ") and "running on host esx-a" in r, r

        # Host A dies: hostd, vmkd and its vmx (vmkd's process group).
        va.d.kill(signal.SIGKILL)
        a.kill9()
        va.d.proc.wait(5)
        refused = take_over(drv, hb, u, "host B to take the VM over")
        assert refused
        assert read_lease(lck)["owner"] == b.hosts[0]["uuid"]
        # B's vmx runs the guest (the serial log now holds both boots).
        wait_for(lambda: open(os.path.join(vmdir, "serial.log")).read().count("KVC-GUEST: ready")
                 >= 2, 30, "the guest on B")

        # Host A comes back: it does not run the VM and may not start it.
        va.start()
        a2 = kvm_host(tmp, "esx-a", va, state=a.state, port=a.hosts[0]["port"])
        drv.wait_state(ha, "connected", timeout=20)
        assert "VM kvm1 is running under vmkd" not in a2.d.log()
        r = power(drv, ha, u)
        assert r.startswith("ERR 16 ") and "running on host esx-b" in r, r

        # Fencing: a record B's vmx did not write powers the guest off.
        m = drv.mark()
        cur = read_lease(lck)
        write_lease(lck, owner="host-c-test", owner_name="esx-c", vm="kvm1", state="held",
                    generation=int(cur["generation"]) + 1, heartbeat=0,
                    time_ms=int(time.time() * 1000), duration_ms=KVM_LEASE_MS)
        drv.wait_event(r"^vm %s %s POWERED_OFF" % (hb, u), since=m, timeout=20)
        wait_for(lambda: re.search(r"VMX-EXIT state=poweredOff detail=lease-lost",
                                   open(log).read()), 10, "vmx's lease-lost exit")
        assert "lease was taken over by another host" in b.d.log()
    finally:
        for h in (a2, b):
            if h:
                h.stop()
        if a and a.d.alive():
            a.stop()
        for v in (va, vb):
            if v:
                v.stop()
        drv.stop()


@pytest.mark.skipif(kvm_usable()[0] is False or not os.path.exists(VMX),
                    reason="no usable /dev/kvm or vmx not built")
def test_vmx_refuses_a_live_lease_and_releases_its_own(tmp):
    lck = os.path.join(tmp, "t.lck")
    conf = os.path.join(tmp, "t.vmx-run")
    with open(conf, "w") as f:
        f.write('name = t\nmemory_mb = 16\nguest.image = "%s"\nserial.log = serial.log\n'
                'lease.path = t.lck\nlease.owner = host-b-test\nlease.owner_name = esx-b\n'
                'lease.duration_ms = 2000\n' % GUEST)
    write_lease(lck, owner="host-a-test", owner_name="esx-a", vm="t", state="held",
                generation=5, heartbeat=0, time_ms=int(time.time() * 1000), duration_ms=60000)
    import subprocess
    p = subprocess.run([VMX, "-c", conf, "-s", os.path.join(tmp, "s")], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "not starting: VM t is running on host esx-a (host-a-test)" in p.stderr, p.stderr
    assert read_lease(lck)["owner"] == "host-a-test"
    # A free lease is taken; a clean power-off frees it again.
    write_lease(lck, owner="host-a-test", owner_name="esx-a", vm="t", state="free",
                generation=6, heartbeat=0, time_ms=int(time.time() * 1000), duration_ms=60000)
    d = Daemon([VMX, "-c", conf, "-s", os.path.join(tmp, "s")])
    try:
        d.wait_log(r"VMX-READY pid=%d" % d.pid, timeout=30)
        l = read_lease(lck)
        assert l["owner"] == "host-b-test" and l["state"] == "held" and l["generation"] == "7"
    finally:
        assert d.stop() == 0, d.log()[-2000:]
    l = read_lease(lck)
    assert l["state"] == "free" and l["generation"] == "8", l
    # Corrupt: refused with a clear message.
    with open(lck, "w") as f:
        f.write("kvc-lease 1\nowner=host-a")
    p = subprocess.run([VMX, "-c", conf, "-s", os.path.join(tmp, "s")], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 1 and "corrupt" in p.stderr, p.stderr
