"""HA isolation with a real network cut: one host runs in a network
namespace the test creates, joined to the others by a veth pair; pulling
the link (ip link set ... down) cuts it off from vpxd, its peers and its
isolation address while its datastore (a directory every host sees) stays
reachable, so it keeps writing its datastore heartbeat.  vpxd must call it
isolated, not failed; the host must apply its isolation response (power
off) and release its VMs' leases; its VMs run again on the other host,
never two copies at once; and once the link is back, the host rejoins
without running them again."""
import os
import subprocess
import tempfile

import pytest

from kvctest import Daemon, binpath, kvm_usable, wait_for
from hostd_util import Hostd
from test_ha import Cluster, LEASE_MS, VMKD, reason

NS = "kvcha%d" % os.getpid()
OUT, IN = "kvh%do" % (os.getpid() % 100000), "kvh%di" % (os.getpid() % 100000)
NET = "10.213.%d" % (os.getpid() % 200 + 1)


def sh(*args, check=True):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=check)


def netns_reason():
    if reason:
        return reason
    if os.geteuid() != 0:
        return "network namespaces need root"
    if sh("ip", "netns", "list", check=False).returncode != 0:
        return "ip netns is not usable here"
    return None


pytestmark = pytest.mark.skipif(netns_reason() is not None, reason=netns_reason() or "")


@pytest.fixture
def netns():
    sh("ip", "netns", "add", NS)
    try:
        sh("ip", "link", "add", OUT, "type", "veth", "peer", "name", IN)
        sh("ip", "link", "set", IN, "netns", NS)
        sh("ip", "addr", "add", NET + ".1/24", "dev", OUT)
        sh("ip", "link", "set", OUT, "up")
        sh("ip", "netns", "exec", NS, "ip", "addr", "add", NET + ".2/24", "dev", IN)
        sh("ip", "netns", "exec", NS, "ip", "link", "set", IN, "up")
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
        yield
    finally:
        sh("ip", "link", "del", OUT, check=False)
        sh("ip", "netns", "del", NS, check=False)


class NsCluster(Cluster):
    """Host 1 lives in the namespace and listens on its veth address; vpxd
    (on the host side of the veth) dials it there."""

    def address(self, i):
        return NET + ".2" if i == 1 else "127.0.0.1"

    def start_hostd(self, i, **kw):
        if i != 1:
            return super().start_hostd(i, **kw)
        extra = ["--port", str(self.ports[i]), "--lease-ms", str(LEASE_MS),
                 "--listen", NET + ".2"]
        return Hostd(self.tmp, hosts=1, name="esx%d" % i, extra=extra,
                     state=os.path.join(self.tmp, "hostd-esx%d" % i),
                     prefix=["ip", "netns", "exec", NS], **kw)


def test_cut_link_isolates_the_host_and_its_vms_restart_once(netns):
    with tempfile.TemporaryDirectory(prefix="kvc-ha-netns-") as tmp:
        c = NsCluster(tmp, 2, ha={"isolation_response": "power_off"})
        try:
            b = c.ids[1]
            vms = [c.create_vm("ns-%d" % i, b) for i in range(2)]
            c.wait_running_once(vms)
            sh("ip", "link", "set", OUT, "down")
            c.wait_running_once(vms, not_on=(b,), timeout=40,
                                what="the cut-off host's VMs running on the other host")
            c.hostd[b].d.wait_log(r"host isolated: .*isolation response power_off", timeout=30)
            assert c.db("SELECT state FROM ha_host WHERE host = ?", b) == [("isolated",)]
            assert c.events("com.vmware.vc.HA.DasHostIsolatedEvent", b)
            # Its datastore heartbeat never stopped: isolated, not failed.
            assert not c.events("com.vmware.vc.HA.DasHostFailedEvent", b)
            sh("ip", "link", "set", OUT, "up")
            c.wait_host(b, "CONNECTED", timeout=40)
            wait_for(lambda: all(c.vm_uuid(vm) not in c.hostd[b].control("host 0 vms")
                                 for vm in vms) and c.running_once(vms, not_on=(b,)), 30,
                     "the isolated host's copies gone, the VMs on the other host once")
        finally:
            c.stop()


REAL_VMX = binpath("vmkernel-kvm/vmx")
GUEST = binpath("vmkernel-kvm/guest/kvc-guest.elf")


def kvm_reason():
    if not (os.path.exists(REAL_VMX) and os.path.exists(GUEST) and os.path.exists(VMKD)):
        return "vmx, vmkd or the test guest is not built"
    ok, why = kvm_usable()
    return None if ok else why


class NsKvmCluster(NsCluster):
    """The same on the kvm backend with real guests: each host a vmkd (real
    vmx) and a hostd.  Host 1's hostd, its management agent, runs in the
    namespace: the cut is its management network's; its vmkd and vmx stay
    outside (`ip netns exec` remounts /sys, which would hide the cgroups),
    reached over vmkd's unix socket as always."""

    def start_hostd(self, i, **kw):
        d = os.path.join(self.tmp, "kvm-esx%d" % i)
        os.makedirs(d, exist_ok=True)
        sock = os.path.join(d, "vmkd.sock")
        conf = os.path.join(d, "vmkd.conf")
        with open(conf, "w") as f:
            f.write('[vmkd]\nstate-dir = "%s"\nsocket = "%s"\nvmx = "%s"\n'
                    'ready-timeout = 30s\nstop-timeout = 5s\nstop-vms-on-exit = true\n'
                    '[cgroup]\nparent = "kvcenter-hans-%d-%d"\nremove-parent-on-exit = true\n'
                    % (os.path.join(d, "vmkd-state"), sock, REAL_VMX, os.getpid(), i))
        prefix = ["ip", "netns", "exec", NS] if i == 1 else []
        if not hasattr(self, "vmkd"):
            self.vmkd = {}
        v = Daemon([VMKD, "-f", conf])
        v.wait_log(r"vmkd ready", timeout=20)
        self.vmkd[i] = v
        extra = ["--port", str(self.ports[i]), "--lease-ms", str(LEASE_MS),
                 "--vmkd-socket", sock, "--guest-image", GUEST]
        if i == 1:
            extra += ["--listen", NET + ".2"]
        return Hostd(self.tmp, hosts=1, name="esx%d" % i, backend="kvm",
                     state=os.path.join(self.tmp, "hostd-esx%d" % i), extra=extra,
                     prefix=prefix, **kw)

    def stop(self):
        super().stop()
        for v in getattr(self, "vmkd", {}).values():
            v.stop()


@pytest.mark.skipif(kvm_reason() is not None, reason=kvm_reason() or "")
def test_cut_link_isolates_a_kvm_host_and_its_guests_restart_once(netns):
    with tempfile.TemporaryDirectory(prefix="kvc-ha-netns-kvm-") as tmp:
        c = NsKvmCluster(tmp, 2, ha={"isolation_response": "power_off"})
        try:
            b = c.ids[1]
            vms = [c.create_vm("nk-%d" % i, b) for i in range(2)]
            c.wait_running_once(vms, timeout=30)
            sh("ip", "link", "set", OUT, "down")
            c.wait_running_once(vms, not_on=(b,), timeout=60,
                                what="the cut-off kvm host's guests running on the other host")
            c.hostd[b].d.wait_log(r"host isolated: .*isolation response power_off", timeout=30)
            assert c.db("SELECT state FROM ha_host WHERE host = ?", b) == [("isolated",)]
            assert not c.events("com.vmware.vc.HA.DasHostFailedEvent", b)
            sh("ip", "link", "set", OUT, "up")
            c.wait_host(b, "CONNECTED", timeout=40)
            wait_for(lambda: all(c.vm_uuid(vm) not in c.hostd[b].control("host 0 vms")
                                 for vm in vms) and c.running_once(vms, not_on=(b,)), 30,
                     "the isolated host's copies gone, the guests on the other host once")
        finally:
            c.stop()
