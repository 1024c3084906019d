"""Two vSwitch instances (kvc-vswitch driver processes) on different
loopback addresses join a distributed port group over the VXLAN uplink.

The wire format is checked with a raw UDP socket acting as a third VTEP.
"""
import os
import select
import signal
import socket
import struct
import subprocess
import time

import pytest

from kvctest import binpath

DRIVER = binpath("vmkernel-kvm/vswitch/kvc-vswitch")
MAC_A = "00:50:56:00:00:0a"
MAC_B = "00:50:56:00:00:0b"
MAC_R = "02:00:00:00:00:77"
BCAST = "ff:ff:ff:ff:ff:ff"
VNI = 5001


def macb(m):
    return bytes(int(x, 16) for x in m.split(":"))


def frame(dst, src, payload=b"\x11" * 46, ethertype=0x88B5):
    return macb(dst) + macb(src) + struct.pack("!H", ethertype) + payload


class Switch:
    """A kvc-vswitch process; commands and replies are single lines."""

    def __init__(self, name):
        self.proc = subprocess.Popen([DRIVER, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        assert self._line(10) == "ready"

    def _line(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from kvc-vswitch")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                c = os.read(fd, 1)
                if not c:
                    raise RuntimeError("kvc-vswitch exited (%s)" % self.proc.poll())
                buf += c
        return buf.decode().strip()

    def cmd(self, line, timeout=10):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        return self._line(timeout)

    def ok(self, line):
        r = self.cmd(line)
        assert r.startswith("ok"), "%s -> %s" % (line, r)
        return r[3:]

    def inject(self, port, data):
        self.ok("inject %s %s" % (port, data.hex()))

    def recv(self, port, timeout_ms=5000):
        r = self.cmd("recv %s %d" % (port, timeout_ms), timeout=timeout_ms / 1000 + 10)
        if r.startswith("ok "):
            return bytes.fromhex(r[3:])
        assert r == "err EAGAIN", r
        return None

    def stats(self, what):
        r = self.ok(what)
        return {k: int(v) for k, v in (kv.split("=") for kv in r.split())}

    def wait_stat(self, what, key, value, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            s = self.stats(what)
            if s[key] >= value:
                return s
            if time.monotonic() > deadline:
                raise TimeoutError("%s %s=%d, wanted %d" % (what, key, s[key], value))
            time.sleep(0.01)

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.flush()
                self.proc.wait(10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc.stdin.close()
        self.proc.stdout.close()
        return self.proc.returncode


def udp_socket(ip):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    return s


def free_udp_port(ip):
    s = udp_socket(ip)
    p = s.getsockname()[1]
    s.close()
    return p


@pytest.fixture
def pair():
    if not os.path.exists(DRIVER):
        pytest.skip("kvc-vswitch not built")
    h1, h2 = "127.0.0.2", "127.0.0.3"
    try:
        p1, p2 = free_udp_port(h1), free_udp_port(h2)
    except OSError as e:
        pytest.skip("cannot bind to 127.0.0.2/3 here: %s" % e)
    raw = udp_socket("127.0.0.4")
    rport = raw.getsockname()[1]
    s1, s2 = Switch("host1"), Switch("host2")
    try:
        for s, ip, port, peer in ((s1, h1, p1, (h2, p2)), (s2, h2, p2, (h1, p1))):
            s.ok("pg add dpg vlan=10 vni=%d dist=1" % VNI)
            s.ok("vxlan uplink0 %s %d" % (ip, port))
            s.ok("vtep add %d %s %d" % (VNI, peer[0], peer[1]))
            s.ok("start")
        s1.ok("port add a dpg %s" % MAC_A)
        s2.ok("port add b dpg %s" % MAC_B)
        yield s1, s2, raw, (h1, p1), (h2, p2)
    finally:
        raw.close()
        s1.stop()
        s2.stop()


def test_frames_cross_hosts(pair):
    s1, s2, raw, a1, a2 = pair
    f = frame(BCAST, MAC_A)
    s1.inject("a", f)
    assert s2.recv("b") == f
    g = frame(MAC_A, MAC_B, b"\x22" * 100)
    s2.inject("b", g)
    assert s1.recv("a") == g
    # Remote MACs are learned behind the uplink, so unicast goes straight.
    assert s1.ok("mac 10 %s" % MAC_B) == "uplink0"
    assert s2.ok("mac 10 %s" % MAC_A) == "uplink0"
    for i in range(50):
        s1.inject("a", frame(MAC_B, MAC_A, bytes([i]) * 60))
    for i in range(50):
        assert s2.recv("b") == frame(MAC_B, MAC_A, bytes([i]) * 60)
    st = s1.stats("stats uplink0")
    assert st["tx_packets"] == 51 and st["rx_packets"] == 1
    assert s2.stats("pgstats dpg")["tx_packets"] == 51


def test_rfc7348_on_the_wire(pair):
    s1, s2, raw, a1, a2 = pair
    rip, rport = raw.getsockname()
    s1.ok("vtep add %d %s %d" % (VNI, rip, rport))
    f = frame(BCAST, MAC_A, b"\x33" * 46)
    s1.inject("a", f)
    raw.settimeout(10)
    data, src = raw.recvfrom(65535)
    assert src == a1                                   # from host1's VTEP
    assert len(data) == 8 + len(f)
    flags, r1, vni_field = struct.unpack("!B3sI", data[:8])
    assert flags == 0x08 and r1 == b"\0\0\0"           # I flag, reserved zero
    assert vni_field >> 8 == VNI and vni_field & 0xFF == 0
    assert data[8:] == f                               # inner frame untagged
    assert s2.recv("b") == f                           # head-end replication
    # The raw VTEP can send in, too; its MAC is learned behind it.
    g = frame(MAC_A, MAC_R, b"\x44" * 46)
    raw.sendto(struct.pack("!B3sI", 0x08, b"\0\0\0", VNI << 8) + g, a1)
    assert s1.recv("a") == g
    assert s1.ok("mac 10 %s" % MAC_R) == "uplink0"


def test_bad_vxlan_input_is_dropped_and_counted(pair):
    s1, s2, raw, a1, a2 = pair
    g = frame(MAC_A, MAC_R)
    hdr = struct.pack("!B3sI", 0x08, b"\0\0\0", VNI << 8)
    raw.sendto(hdr + g, a1)                                            # unknown VTEP
    raw.sendto(struct.pack("!B3sI", 0x08, b"\0\0\0", 999 << 8) + g, a1)  # unknown VNI
    raw.sendto(struct.pack("!B3sI", 0x00, b"\0\0\0", VNI << 8) + g, a1)  # no I flag
    raw.sendto(b"\x08\0\0", a1)                                        # short
    raw.sendto(hdr + g[:10], a1)                                       # runt inner
    raw.sendto(hdr + b"\x00" * 9100, a1)                               # oversized inner
    s1.wait_stat("stats uplink0", "drop_unknown_vtep", 1)
    s1.wait_stat("stats uplink0", "drop_unknown_vni", 1)
    s1.wait_stat("stats uplink0", "drop_malformed", 2)
    s1.wait_stat("stats uplink0", "drop_runt", 1)
    s1.wait_stat("stats uplink0", "drop_oversize", 1)
    assert s1.recv("a", 200) is None
    # Still switching afterwards.
    f = frame(BCAST, MAC_A)
    s1.inject("a", f)
    assert s2.recv("b") == f


def test_vni_isolation_and_local_vlan(pair):
    s1, s2, raw, a1, a2 = pair
    # A port on another VLAN of host2 sees nothing of the distributed group.
    s2.ok("pg add local vlan=20")
    s2.ok("port add c local")
    s1.inject("a", frame(BCAST, MAC_A))
    assert s2.recv("b") is not None
    assert s2.recv("c", 300) is None
    # Distributed defaults reject forged transmits (as a vDS does).
    s1.inject("a", frame(BCAST, MAC_R))
    s1.wait_stat("stats a", "drop_forged", 1)
    assert s2.recv("b", 300) is None


def test_driver_rejects_bad_commands(pair):
    s1, s2, raw, a1, a2 = pair
    assert s1.cmd("pg add x vlan=4096") == "err EINVAL"
    assert s1.cmd("port add y nosuchpg") == "err ENOENT"
    assert s1.cmd("inject a zz") == "err EINVAL"
    assert s1.cmd("pg remove dpg") == "err EBUSY"
    assert s1.cmd("vxlan second 127.0.0.2 0").startswith("err")
    assert s1.cmd("bogus") == "err EINVAL"
