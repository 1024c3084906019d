"""VM networking end to end: a real vmkd hosting the vSwitch, real vmx with
the test guest's virtio-net driver (guest/net.c), two or more VMs per test.

Covers: ping and UDP echo between two VMs of one port group, VLAN isolation,
a trunk port (VLAN 4095) seeing and sending tags, promiscuous mode, forged
transmits (reject and accept), traffic shaping capping a flood, link
down/up through vmx's control socket, two vmkd "hosts" on 127.0.0.32 and
127.0.0.33 joined by the VXLAN uplink, and running VMs getting their ports
back from a vmkd restarted after kill -9 (and the port socket refusing
whoever is not the VM's vmx).  Skips without a usable /dev/kvm or
without root (cgroups)."""
import array
import os
import re
import signal
import socket
import subprocess
import tempfile

import pytest

from kvctest import Daemon, binpath, kvm_usable, wait_for

VMKD = binpath("vmkernel-kvm/vmkd")
VMKDCTL = binpath("vmkernel-kvm/vmkdctl")
VMX = binpath("vmkernel-kvm/vmx")
VMXCTL = binpath("vmkernel-kvm/vmxctl")
GUEST = binpath("vmkernel-kvm/guest/kvc-guest.elf")

_ok, _why = kvm_usable()
pytestmark = [
    pytest.mark.skipif(not _ok, reason=_why or "no /dev/kvm"),
    pytest.mark.skipif(os.geteuid() != 0, reason="vmkd needs root (cgroups)"),
]

_seq = [0]


def kv(line):
    return dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))


class Host:
    """One vmkd with a vSwitch configured from PORTGROUPS (text)."""

    def __init__(self, tmp, name, portgroups, vswitch="", env=None):
        self.env = env
        _seq[0] += 1
        self.tmp = os.path.join(tmp, name)
        os.makedirs(self.tmp)
        self.sock = os.path.join(self.tmp, "vmkd.sock")
        self.state = os.path.join(self.tmp, "state")
        self.conf = os.path.join(self.tmp, "vmkd.conf")
        with open(self.conf, "w") as f:
            f.write('[vmkd]\nstate-dir = "%s"\nsocket = "%s"\nvmx = "%s"\nready-timeout = 20s\n'
                    'stop-timeout = 5s\nstop-vms-on-exit = true\nlog-level = dbg\n'
                    '[cgroup]\nparent = "kvcenter-nettest-%d-%d"\nremove-parent-on-exit = true\n'
                    '[vswitch]\n%s\n%s'
                    % (self.state, self.sock, VMX, os.getpid(), _seq[0], vswitch, portgroups))
        self.d = Daemon([VMKD, "-f", self.conf], env=env)
        try:
            self.d.wait_log(r"vmkd ready", timeout=15)
        except BaseException:
            self.stop()         # never leave a vmkd (and its VMs) behind
            raise
        self.vms = {}

    def ctl(self, *args, check=True):
        p = subprocess.run([VMKDCTL, "-s", self.sock] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("vmkdctl %s failed (%d): %s%s\nvmkd log:\n%s"
                                 % (" ".join(map(str, args)), p.returncode, p.stdout, p.stderr,
                                    self.d.log()[-3000:]))
        return p

    def vm(self, name, pg, mac, ip, mode="listen", peer=None, **kw):
        """Power on a VM with one adapter on port group PG."""
        conf = os.path.join(self.tmp, name + ".vmx")
        serial = os.path.join(self.tmp, name + ".serial")
        extra = "".join("guest.net_%s = %s\n" % (k, v) for k, v in kw.items())
        with open(conf, "w") as f:
            f.write('name = "%s"\nmemory_mb = 32\nguest.image = "%s"\nserial.log = "%s"\n'
                    'net.enabled = true\nnet.mac = "%s"\nnet.portgroup = "%s"\n'
                    'guest.net_mode = %s\nguest.ip = %s\n%s%s'
                    % (name, GUEST, serial, mac, pg, mode, ip,
                       "guest.peer = %s\n" % peer if peer else "", extra))
        self.ctl("power-on", name, conf, "--nic", "%s,%s" % (pg, mac))
        v = Vm(self, name, serial)
        self.vms[name] = v
        v.wait_serial(r"KVC-GUEST: net up mac=%s ip=%s" % (mac, ip))
        return v

    def kill9(self):
        """kill -9 vmkd alone: its vmx run on."""
        old = self.d
        old.kill(signal.SIGKILL, group=False)     # not the group: the vmx are in it
        old.proc.wait(10)
        old._log.close()
        self.d = None

    def restart(self):
        """Start vmkd again on the same state: it re-adopts the VMs."""
        self.d = Daemon([VMKD, "-f", self.conf], env=self.env)
        self.d.wait_log(r"vmkd ready", timeout=15)

    def vmx_pids(self):
        return {kv(line)["id"]: int(kv(line)["pid"])
                for line in self.ctl("list").stdout.splitlines() if "id=" in line}

    def port(self, name):
        out = self.ctl("net-stats", name).stdout
        return {k: (int(v) if v.isdigit() else v) for k, v in kv(out).items()}

    def stop(self):
        if self.d:
            self.d.stop()
            self.d = None


class Vm:
    def __init__(self, host, name, serial):
        self.host, self.name, self.serial = host, name, serial
        self.sock = os.path.join(host.state, "vms", name, "vmx.sock")

    def text(self):
        try:
            with open(self.serial, "rb") as f:
                return f.read().decode("ascii", "replace")
        except FileNotFoundError:
            return ""

    def wait_serial(self, pattern, timeout=30):
        rx = re.compile(pattern)

        def check():
            m = rx.search(self.text())
            if m:
                return m
            return None
        try:
            return wait_for(check, timeout, "%s serial %r" % (self.name, pattern))
        except TimeoutError:
            raise AssertionError("%s: no %r in serial:\n%s\nvmkd log:\n%s"
                                 % (self.name, pattern, self.text()[-2000:],
                                    self.host.d.log()[-3000:]))

    def last_stats(self):
        lines = re.findall(r"KVC-GUEST: net stats (.*)", self.text())
        return {k: int(v) for k, v in kv(lines[-1]).items()} if lines else {}

    def vmxctl(self, *args):
        p = subprocess.run([VMXCTL, "-s", self.sock] + list(args), capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        return dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)

    def nic(self):
        return {k: (int(v) if v.isdigit() else v) for k, v in self.vmxctl("net-stats").items()}


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="test_vmx_net-")
    yield d
    subprocess.run(["rm", "-rf", d])


@pytest.fixture
def hosts():
    started = []
    yield started
    for h in started:
        h.stop()


PG_BASIC = '[portgroup "VM Network"]\nvlan = 0\n'


def test_ping_and_udp_echo(tmp, hosts):
    h = Host(tmp, "h1", PG_BASIC)
    hosts.append(h)
    b = h.vm("b", "VM Network", "00:50:56:00:01:02", "10.1.0.2", mode="echo")
    a = h.vm("a", "VM Network", "00:50:56:00:01:01", "10.1.0.1", mode="ping",
             peer="10.1.0.2", count=5)
    a.wait_serial(r"net arp peer=10\.1\.0\.2 mac=00:50:56:00:01:02")
    m = a.wait_serial(r"net ping done sent=(\d+) received=(\d+)")
    assert m.groups() == ("5", "5"), a.text()
    assert len(re.findall(r"net ping seq=\d+ rtt_us=\d+", a.text())) == 5
    # UDP echo round trips from a third VM to the same echo server.
    c = h.vm("c", "VM Network", "00:50:56:00:01:03", "10.1.0.3", mode="udping",
             peer="10.1.0.2", count=50, size=200)
    m = c.wait_serial(r"net udping done sent=(\d+) received=(\d+) min_us10=(\d+)")
    assert m.group(1) == "50" and m.group(2) == "50", c.text()
    assert int(m.group(3)) > 0
    # Counters agree on both sides of the ring: vmx's device and vmkd's port.
    na, pa = a.nic(), h.port("a")
    assert na["backend"] == 1 and na["link_up"] == 1 and na["mac"] == "00:50:56:00:01:01"
    assert na["tx_packets"] >= 6 and na["rx_packets"] >= 6
    assert pa["rx_packets"] == na["tx_packets"], (pa, na)
    assert pa["portgroup"] == '"VM Network"'
    assert not any(k.startswith("drop_") for k in pa), pa
    # The guest reports its IP through the tools device.
    assert a.vmxctl("stats")["tools.ip"] == "10.1.0.1"


def test_without_ioeventfd(tmp, hosts):
    """Guest kicks through plain MMIO exits (the fallback when KVM_IOEVENTFD
    is refused): the vCPU thread moves the frames itself."""
    h = Host(tmp, "h1", PG_BASIC, env={"KVC_NET_NO_IOEVENTFD": "1"})
    hosts.append(h)
    h.vm("b", "VM Network", "00:50:56:00:09:02", "10.9.0.2", mode="echo")
    a = h.vm("a", "VM Network", "00:50:56:00:09:01", "10.9.0.1", mode="udping",
             peer="10.9.0.2", count=20)
    m = a.wait_serial(r"net udping done sent=(\d+) received=(\d+)")
    assert m.groups() == ("20", "20"), a.text()


def test_hostile_guest(tmp, hosts):
    """A guest that sends runts, giants, a GSO header and a multicast source
    MAC, then a descriptor outside its RAM: each is dropped and counted
    where it belongs, its vmx runs on, and the other VMs keep talking."""
    h = Host(tmp, "h1", PG_BASIC)
    hosts.append(h)
    b = h.vm("b", "VM Network", "00:50:56:00:0b:02", "10.11.0.2", mode="echo")
    bad = h.vm("bad", "VM Network", "00:50:56:00:0b:66", "10.11.0.66", mode="hostile")
    m = bad.wait_serial(r"net hostile done status=([0-9a-f]+)")
    assert int(m.group(1), 16) & 64             # DEVICE_NEEDS_RESET
    wait_for(lambda: bad.nic()["queue_broken"] == 1, 20, "the broken tx queue counted")
    st = bad.nic()
    assert st["tx_runt"] == 1 and st["tx_oversize"] == 1 and st["tx_bad_hdr"] == 1, st
    assert st["queue_broken"] == 1 and st["tx_packets"] == 1, st
    wait_for(lambda: h.port("bad").get("drop_bad_src", 0) == 1, 20, "the switch's bad_src drop")
    assert h.port("b")["tx_packets"] == 0      # nothing of it reached b
    a = h.vm("a", "VM Network", "00:50:56:00:0b:01", "10.11.0.1", mode="ping", peer="10.11.0.2",
             count=3)
    m = a.wait_serial(r"net ping done sent=(\d+) received=(\d+)")
    assert m.groups() == ("3", "3"), a.text()
    # Its rx queue still works (the ARP broadcast reached it) and its vmx
    # still answers.
    wait_for(lambda: bad.nic()["rx_packets"] >= 1, 20, "frames into the hostile guest")
    assert bad.vmxctl("info")["state"] == "RUNNING"


def test_link_down_and_up(tmp, hosts):
    h = Host(tmp, "h1", PG_BASIC)
    hosts.append(h)
    b = h.vm("b", "VM Network", "00:50:56:00:02:02", "10.2.0.2", mode="echo")
    r = b.vmxctl("net-link", "down")
    assert r["link_up"] == "0"
    a = h.vm("a", "VM Network", "00:50:56:00:02:01", "10.2.0.1", mode="ping",
             peer="10.2.0.2", count=3)
    # A's ARP requests reach B's adapter and are dropped there: link down.
    wait_for(lambda: b.nic()["rx_link_down"] >= 3, 20, "frames dropped on B's link-down adapter")
    assert "net arp peer" not in a.text()
    assert b.vmxctl("net-link", "up")["link_up"] == "1"
    m = a.wait_serial(r"net ping done sent=(\d+) received=(\d+)")
    assert m.groups() == ("3", "3"), a.text()


def test_vlans_isolate_and_trunk_sees_tags(tmp, hosts):
    h = Host(tmp, "h1", '[portgroup "V10"]\nvlan = 10\n[portgroup "V20"]\nvlan = 20\n'
             '[portgroup "Trunk"]\nvlan = 4095\n')
    hosts.append(h)
    b20 = h.vm("b20", "V20", "00:50:56:00:03:02", "10.3.0.2", mode="echo")
    c10 = h.vm("c10", "V10", "00:50:56:00:03:03", "10.3.0.3", mode="echo")
    t = h.vm("t", "Trunk", "00:50:56:00:03:04", "10.3.0.4", mode="listen")
    # a10 looks for 10.3.0.2, which lives on VLAN 20: it never answers.
    a10 = h.vm("a10", "V10", "00:50:56:00:03:01", "10.3.0.1", mode="ping", peer="10.3.0.2",
               count=3)
    wait_for(lambda: h.port("a10")["rx_packets"] >= 5, 20, "a10's ARP requests")
    wait_for(lambda: h.port("c10")["tx_packets"] >= 5, 20, "the broadcasts on VLAN 10")
    assert h.port("b20")["tx_packets"] == 0, h.port("b20")
    assert b20.nic()["rx_packets"] == 0
    assert "net arp peer" not in a10.text()
    # The trunk port got VLAN 10's broadcasts with their tag.
    st = t.wait_serial(r"net stats .*tagged=([1-9]\d*) vid=10 ")
    assert st
    # A guest on the trunk that tags its own frames with VLAN 10 reaches c10.
    t10 = h.vm("t10", "Trunk", "00:50:56:00:03:05", "10.3.0.5", mode="ping", peer="10.3.0.3",
               count=3, vlan=10)
    m = t10.wait_serial(r"net ping done sent=(\d+) received=(\d+)")
    assert m.groups() == ("3", "3"), t10.text()
    assert h.port("b20")["tx_packets"] == 0


def test_promiscuous_policy(tmp, hosts):
    h = Host(tmp, "h1", PG_BASIC + '[portgroup "Sniff"]\nvlan = 0\npromiscuous = accept\n')
    hosts.append(h)
    b = h.vm("b", "VM Network", "00:50:56:00:04:02", "10.4.0.2", mode="echo")
    sniff = h.vm("sniff", "Sniff", "00:50:56:00:04:03", "10.4.0.3")
    other = h.vm("other", "VM Network", "00:50:56:00:04:04", "10.4.0.4")
    a = h.vm("a", "VM Network", "00:50:56:00:04:01", "10.4.0.1", mode="ping", peer="10.4.0.2",
             count=5)
    m = a.wait_serial(r"net ping done sent=(\d+) received=(\d+)")
    assert m.groups() == ("5", "5")
    # The promiscuous port sees the unicast requests and replies; the other
    # port of the same VLAN (promiscuous reject, ESXi's default) only the
    # broadcast ARP request.
    sniff.wait_serial(r"net stats .*foreign=(?:[1-9]\d+|[5-9]) ")
    assert h.port("sniff")["tx_packets"] >= 11
    assert h.port("other")["tx_packets"] <= 2, h.port("other")
    assert other.last_stats().get("foreign", 0) == 0


def test_forged_transmits(tmp, hosts):
    h = Host(tmp, "h1", '[portgroup "Strict"]\nvlan = 0\nforged-transmits = reject\n'
             '[portgroup "Lax"]\nvlan = 5\n')
    hosts.append(h)
    h.vm("bs", "Strict", "00:50:56:00:05:02", "10.5.0.2", mode="echo")
    bl = h.vm("bl", "Lax", "00:50:56:00:05:12", "10.5.0.2", mode="echo")
    # Same forging guest on both: its frames carry a source MAC that is not
    # its adapter's.
    as_ = h.vm("as", "Strict", "00:50:56:00:05:01", "10.5.0.1", mode="ping", peer="10.5.0.2",
               count=3, forge="true")
    al = h.vm("al", "Lax", "00:50:56:00:05:11", "10.5.0.1", mode="ping", peer="10.5.0.2",
              count=3, forge="true")
    # Accept: the echo requests (forged source) reach bl, which answers to
    # the forged MAC, a MAC no port has: those replies never reach al.
    m = al.wait_serial(r"net ping done sent=(\d+) received=(\d+)")
    assert m.group(1) == "3"
    wait_for(lambda: bl.last_stats().get("icmp_req", 0) == 3, 20, "bl to see the 3 requests")
    assert not any(k.startswith("drop_") for k in h.port("al")), h.port("al")
    # Reject: nothing al's twin sends gets past its port.
    wait_for(lambda: h.port("as").get("drop_forged", 0) >= 3, 20, "forged frames dropped")
    assert h.port("bs")["tx_packets"] == 0
    assert "net arp peer" not in as_.text()


def test_shaping_caps_a_flood(tmp, hosts):
    h = Host(tmp, "h1", '[portgroup "Shaped"]\nvlan = 0\nshaping-average = 100000\n'
             'shaping-burst = 10000\n')
    hosts.append(h)
    b = h.vm("b", "Shaped", "00:50:56:00:06:02", "10.6.0.2", mode="listen")
    a = h.vm("a", "Shaped", "00:50:56:00:06:01", "10.6.0.1", mode="flood", peer="10.6.0.2",
             count=3000, size=1000)
    m = a.wait_serial(r"net flood done sent=(\d+) bytes=(\d+)", timeout=60)
    assert m.group(1) == "3000"
    sent = int(m.group(2))
    pa = h.port("a")
    # The policer dropped most of 3 MB offered at 100 kbit/s with a 10 KB
    # burst (at that rate the flood would have to last 2 minutes to get half
    # of it through).
    assert pa.get("drop_shaped", 0) > 0, pa
    wait_for(lambda: b.last_stats().get("udp_disc", 0) > 0, 20, "some flood frames at b")
    assert h.port("b")["tx_bytes"] < sent // 2, (h.port("b"), sent)


def test_vxlan_between_two_hosts(tmp, hosts):
    # Two "hosts" on loopback addresses of their own (test_vswitch_vxlan
    # uses .2-.4), on a free UDP port so a parallel test cannot collide.
    a1, a2 = "127.0.0.32", "127.0.0.33"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a1, 0))
    port = s.getsockname()[1]
    s.close()
    pg = '[portgroup "Dist"]\nvlan = 100\nvni = 5001\nvteps = "%s:%d"\n'
    vs = 'vxlan-local = "%s"\nvxlan-port = %d\n'
    h1 = Host(tmp, "h1", pg % (a2, port), vswitch=vs % (a1, port))
    hosts.append(h1)
    h2 = Host(tmp, "h2", pg % (a1, port), vswitch=vs % (a2, port))
    hosts.append(h2)
    h2.vm("b", "Dist", "00:50:56:00:07:02", "10.7.0.2", mode="echo")
    a = h1.vm("a", "Dist", "00:50:56:00:07:01", "10.7.0.1", mode="ping", peer="10.7.0.2",
              count=4)
    m = a.wait_serial(r"net ping done sent=(\d+) received=(\d+)")
    assert m.groups() == ("4", "4"), a.text()
    assert h1.port("a")["rx_packets"] >= 5


def test_snapshot_keeps_the_adapter(tmp, hosts):
    """The adapter's state (transport, queues, MAC, link) goes into a
    snapshot; a restore brings the driver's setup back, and a VM with
    another MAC refuses the file."""
    h = Host(tmp, "h1", PG_BASIC)
    hosts.append(h)
    a = h.vm("a", "VM Network", "00:50:56:00:0a:01", "10.10.0.1", mode="echo")
    assert a.vmxctl("net-link", "down")["link_up"] == "0"
    snap = os.path.join(tmp, "a.snap")
    r = a.vmxctl("snapshot", snap)
    assert int(r["bytes"]) > 0
    h.ctl("power-off", "a", "--force")
    conf = os.path.join(h.tmp, "a.vmx")
    sock = os.path.join(tmp, "restored.sock")
    d = Daemon([VMX, "-c", conf, "-s", sock, "--restore", snap])
    try:
        d.wait_log(r"VMX-READY pid=%d" % d.pid, timeout=20)
        p = subprocess.run([VMXCTL, "-s", sock, "net-stats"], capture_output=True, text=True,
                           timeout=30)
        st = dict(line.split("=", 1) for line in p.stdout.splitlines())
        assert st["present"] == "1" and st["mac"] == "00:50:56:00:0a:01"
        assert int(st["status"]) & 4            # DRIVER_OK, as the guest left it
        assert st["backend"] == "0"             # started without vmkd: no port
        p = subprocess.run([VMXCTL, "-s", sock, "info"], capture_output=True, text=True,
                           timeout=30)
        assert "restored=1" in p.stdout
    finally:
        d.stop()
    with open(conf) as f:
        text = f.read().replace("00:50:56:00:0a:01", "00:50:56:00:0a:99")
    with open(conf, "w") as f:
        f.write(text)
    p = subprocess.run([VMX, "-c", conf, "-s", sock, "--restore", snap], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 1, p.stderr


def test_bad_config_refused(tmp, hosts):
    h = Host(tmp, "h1", PG_BASIC)
    hosts.append(h)
    conf = os.path.join(tmp, "bad.vmx")
    with open(conf, "w") as f:
        f.write('name = "x"\nguest.image = "%s"\nnet.enabled = true\nnet.mac = "01:00:5e:00:00:01"\n'
                % GUEST)
    p = subprocess.run([VMX, "-c", conf, "-n"], capture_output=True, text=True)
    assert p.returncode == 1 and "not a unicast MAC" in p.stderr
    # vmkd refuses an unknown port group and changes nothing.
    with open(conf, "w") as f:
        f.write('name = "x"\nguest.image = "%s"\nnet.enabled = true\nnet.mac = "00:50:56:00:08:01"\n'
                % GUEST)
    p = h.ctl("power-on", "x", conf, "--nic", "Nowhere,00:50:56:00:08:01", check=False)
    assert p.returncode != 0 and "Nowhere" in p.stderr, p.stderr
    p = h.ctl("power-on", "x", conf, "--nic", "VM Network,ff:ff:ff:ff:ff:ff", check=False)
    assert p.returncode != 0 and "unicast" in p.stderr, p.stderr
    assert "id=" not in h.ctl("list").stdout
    # vmkd -n checks the network sections.
    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write('[vswitch]\nvxlan-local = "nope"\n[portgroup "x"]\nvlan = 5000\n')
    p = subprocess.run([VMKD, "-n", "-f", bad], capture_output=True, text=True)
    assert p.returncode == 1 and "vlan" in p.stderr
    with open(bad, "w") as f:
        f.write('[portgroup "x"]\nshaping-average = 1000\nshaping-peak = 10\n')
    p = subprocess.run([VMKD, "-n", "-f", bad], capture_output=True, text=True)
    assert p.returncode == 1 and "shaping-peak" in p.stderr


def test_vmkd_restart_gives_ports_back(tmp, hosts):
    """kill -9 vmkd while two VMs ping each other on a VLAN port group: the
    VMs run on and their adapters' links go down; the restarted vmkd
    re-adopts them, makes their ports (same port group, MAC, VLAN) and each
    vmx fetches its own from the port socket: the pings come back without
    a guest reboot."""
    h = Host(tmp, "h1", '[portgroup "V10"]\nvlan = 10\n')
    hosts.append(h)
    pids = {}
    try:
        b = h.vm("b", "V10", "00:50:56:00:0c:02", "10.12.0.2", mode="echo")
        a = h.vm("a", "V10", "00:50:56:00:0c:01", "10.12.0.1", mode="ping", peer="10.12.0.2",
                 count=0)
        a.wait_serial(r"net ping seq=3 ")
        pids = h.vmx_pids()
        assert set(pids) == {"a", "b"}
        h.kill9()
        # The links closed with vmkd: both adapters lose their backend, the
        # guests see the link down (the pinger's stats line says link=0).
        for v in (a, b):
            out = os.path.join(h.state, "vms", v.name, "vmx.out")
            wait_for(lambda: "VMX-EVENT net-port-lost" in open(out).read(), 20,
                     "%s's vmx saw its port go" % v.name)
            st = v.nic()
            assert st["backend"] == 0 and st["link_up"] == 0, st
        a.wait_serial(r"net stats .* link=0\n")
        h.restart()
        h.d.wait_log(r"VM a: port on port group V10 handed to its running vmx pid %d"
                     % pids["a"], timeout=20)
        h.d.wait_log(r"VM b: port on port group V10 handed to its running vmx pid %d"
                     % pids["b"], timeout=20)
        assert h.vmx_pids() == pids                 # the same processes, re-adopted
        seen = max(int(x) for x in re.findall(r"net ping seq=(\d+) ", a.text()))
        a.wait_serial(r"net ping seq=%d " % (seen + 3), timeout=30)
        a.wait_serial(r"link=0\n(.|\n)*net stats .* link=1\n")
        for v in (a, b):
            st = v.nic()
            assert st["backend"] == 1 and st["link_up"] == 1, st
            assert v.text().count("KVC-GUEST: ready") == 1, v.text()   # no reboot
            out = open(os.path.join(h.state, "vms", v.name, "vmx.out")).read()
            assert "VMX-EVENT net-port-attached portgroup=V10" in out, out[-2000:]
            # The guest saw the link go down, then up (config interrupts).
            assert re.search(r"link down: the switch port is gone(.|\n)*link up: on a new switch "
                             r"port", out), out[-2000:]
        pa, pb = h.port("a"), h.port("b")
        assert pa["portgroup"] == pb["portgroup"] == "\"V10\""
        assert pa["rx_packets"] >= 1 and pb["rx_packets"] >= 1, (pa, pb)
    finally:
        h.stop()
        for pid in pids.values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _ask_port(path, data):
    """One request on vmkd's port socket: (answer text, fds received)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(path)
        s.sendall(data)
        fds = array.array("i")
        msg, anc, _flags, _addr = s.recvmsg(256, socket.CMSG_SPACE(4 * fds.itemsize))
        for level, typ, d in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(d[:len(d) - len(d) % fds.itemsize])
        for fd in fds:
            os.close(fd)
        try:
            rest = s.recv(16)   # vmkd closed after refusing
        except ConnectionResetError:
            rest = b""          # ... with part of the request unread
        return msg.decode(), len(fds), rest
    finally:
        s.close()


def test_port_socket_refuses_others(tmp, hosts):
    """Only the VM's own vmx gets its port: another process naming the VM,
    an unknown VM, a malformed or oversized request are refused with a
    reason, no fds, and the connection closed; the VM keeps its port and
    vmkd keeps serving."""
    h = Host(tmp, "h1", PG_BASIC)
    hosts.append(h)
    b = h.vm("b", "VM Network", "00:50:56:00:0d:02", "10.13.0.2", mode="echo")
    path = os.path.join(h.state, "port.sock")
    assert os.stat(path).st_mode & 0o077 == 0
    cases = [
        (b"KVC-PORT 1 b\n", r"^ERR pid %d is not the vmx of VM b\n$" % os.getpid()),
        (b"KVC-PORT 1 nosuch\n", r"^ERR VM nosuch does not run on this host\n$"),
        (b"KVC-PORT 1 ../b\n", r"^ERR invalid VM id\n$"),
        (b"KVC-PORT 2 b\n", r"^ERR bad request"),
        (b"GET / HTTP/1.0\r\n\r\n", r"^ERR (bad request|bytes after)"),
        (b"KVC-PORT 1 " + b"x" * 300, r"^ERR request longer than 127 bytes\n$"),
        (b"KVC-PORT 1 b\x00\n", r"^ERR NUL in the request\n$"),
    ]
    for data, want in cases:
        msg, nfd, rest = _ask_port(path, data)
        assert re.search(want, msg), (data, msg)
        assert nfd == 0 and rest == b"", (data, nfd, rest)
    assert "refused pid %d" % os.getpid() in h.d.log()
    # The VM still has its port and talks; vmkd still serves.
    a = h.vm("a", "VM Network", "00:50:56:00:0d:01", "10.13.0.1", mode="ping", peer="10.13.0.2",
             count=3)
    m = a.wait_serial(r"net ping done sent=(\d+) received=(\d+)")
    assert m.groups() == ("3", "3"), a.text()
    assert b.nic()["backend"] == 1 and h.port("b")["tx_packets"] >= 3
    assert "handed to its running vmx" not in h.d.log()


def test_vmkd_restart_keeps_vxlan(tmp, hosts):
    """A VM on a distributed (VXLAN) port group pings a VM on another host;
    its host's vmkd is killed and restarted: the new port is on the same
    VNI and VLAN behind a new uplink, and the pings across hosts resume."""
    a1, a2 = "127.0.0.34", "127.0.0.35"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a1, 0))
    port = s.getsockname()[1]
    s.close()
    pg = '[portgroup "Dist"]\nvlan = 100\nvni = 5002\nvteps = "%s:%d"\n'
    vs = 'vxlan-local = "%s"\nvxlan-port = %d\n'
    h1 = Host(tmp, "h1", pg % (a2, port), vswitch=vs % (a1, port))
    hosts.append(h1)
    h2 = Host(tmp, "h2", pg % (a1, port), vswitch=vs % (a2, port))
    hosts.append(h2)
    h2.vm("b", "Dist", "00:50:56:00:0e:02", "10.14.0.2", mode="echo")
    a = h1.vm("a", "Dist", "00:50:56:00:0e:01", "10.14.0.1", mode="ping", peer="10.14.0.2",
              count=0)
    a.wait_serial(r"net ping seq=2 ")
    pid = h1.vmx_pids()["a"]
    try:
        h1.kill9()
        a.wait_serial(r"net stats .* link=0\n")
        h1.restart()
        h1.d.wait_log(r"VM a: port on port group Dist handed to its running vmx pid %d" % pid,
                      timeout=20)
        seen = max(int(x) for x in re.findall(r"net ping seq=(\d+) ", a.text()))
        a.wait_serial(r"net ping seq=%d " % (seen + 2), timeout=30)
        assert a.text().count("KVC-GUEST: ready") == 1
        assert h1.port("a")["rx_packets"] >= 1
    finally:
        h1.stop()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
