"""Live migration that carries the disk (vmxctl migrate ... disk, vmx
--incoming-disk; docs/storage-migration.md "Disk over the migration
stream").  The source's disk is base + snapshot delta in folder a and the
test guest writes and verifies its pattern pass after pass; the destination
in folder b has only an empty placeholder base.  After the migration the
guest goes on verifying on the destination from b's files, b holds every
layer with the last pass's data, the snapshot still merges there, and a's
files are as they were.  Mismatched ends (disk without --incoming-disk and
the reverse), a cancel during the disk's first pass and hostile disk
records leave the source running and nothing but the placeholder in b.
Skips where /dev/kvm is not usable."""
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile

import pytest

from kvctest import Daemon, binpath, kvm_usable, wait_for
from test_vmx_disk_move import DISK_FILES, DISK_MB, SECTORS, SEED, TEST_MB, sector_bytes

VMX = binpath("vmkernel-kvm/vmx")
VMXCTL = binpath("vmkernel-kvm/vmxctl")
GUEST = binpath("vmkernel-kvm/guest/kvc-guest.elf")

_ok, _why = kvm_usable()
pytestmark = pytest.mark.skipif(not _ok, reason=_why or "no /dev/kvm")

EXIT_MIGRATED = 3
HELLO, DISK_BEGIN, DISK_FILE, DISK_DATA, DISK_END = 0x100, 0x130, 0x131, 0x132, 0x133
MAGIC = 0x315247494d43564b


def config(folder, extra=""):
    with open(os.path.join(folder, "vm.conf"), "w") as f:
        f.write("name = t\nuuid = 4c4c4544-0000-0000-0000-0000000000d2\nmemory_mb = 32\n"
                "guest.image = %s\nserial.log = serial.log\ndisk.path = t.img\n"
                "guest.disk_test = loop\nguest.disk_seed = %d\nguest.disk_mb = %d\n%s"
                % (GUEST, SEED, TEST_MB, extra))
    with open(os.path.join(folder, "t.img"), "wb") as f:
        f.truncate(DISK_MB << 20)


class Vmx:
    def __init__(self, folder, *args):
        self.dir = folder
        self.sock = os.path.join(folder, "vmx.sock")
        self.serial = os.path.join(folder, "serial.log")
        self.d = Daemon([VMX, "-c", os.path.join(folder, "vm.conf"), "-s", self.sock] + list(args))

    @classmethod
    def source(cls, folder):
        v = cls(folder)
        v.d.wait_log(r"VMX-READY pid=\d+", timeout=20)
        return v

    @classmethod
    def incoming(cls, folder, addr, *args):
        v = cls(folder, "--incoming", addr, *args)
        m = v.d.wait_log(r"VMX-INCOMING pid=\d+ listen=(\S+)", timeout=20)
        v.listen = m.group(1)
        return v

    def ctl(self, *args, check=True):
        p = subprocess.run([VMXCTL, "-s", self.sock] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=120)
        out = dict(line.partition("=")[::2] for line in p.stdout.splitlines())
        if check and p.returncode != 0:
            raise AssertionError("vmxctl %s failed: %s\nvmx log:\n%s" % (args, p.stderr, self.d.log()[-3000:]))
        return out if check else (p.returncode, out, p.stderr)

    def serial_text(self):
        try:
            with open(self.serial, "rb") as f:
                return f.read().decode("ascii", "replace")
        except FileNotFoundError:
            return ""

    def passes(self):
        return [int(x) for x in re.findall(r"disk loop pass=(\d+) seed=\d+\n", self.serial_text())]

    def wait_passes(self, n, timeout=30):
        def check():
            if self.d.proc.poll() is not None:
                raise RuntimeError("vmx exited (%s):\n%s" % (self.d.proc.returncode, self.d.log()[-2000:]))
            p = self.passes()
            return p[-1] if p and p[-1] >= n else None
        return wait_for(check, timeout, "guest loop pass %d in %s" % (n, self.dir))

    def verify_lines(self):
        lines = re.findall(r"KVC-GUEST: disk verify [^\n]*\n", self.serial_text())
        return [l for l in lines if "KVC-GUEST:" not in l[len("KVC-GUEST:"):]]

    def wait_exit(self, timeout=30):
        wait_for(lambda: self.d.proc.poll() is not None, timeout, "vmx in %s to exit" % self.dir)
        return self.d.proc.returncode


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="vmx-xmig-")
    for f in ("a", "b"):
        os.makedirs(os.path.join(d, f))
        config(os.path.join(d, f))
    vms = []
    yield d, vms
    for v in vms:
        v.d.stop()
    shutil.rmtree(d, ignore_errors=True)


def digest(folder, names):
    out = {}
    for n in names:
        with open(os.path.join(folder, n), "rb") as f:
            out[n] = f.read()
    return out


def running_source(root, vms):
    src = Vmx.source(os.path.join(root, "a"))
    vms.append(src)
    src.wait_passes(0)
    src.ctl("snapshot", "s1.snap")          # base + delta: the guest writes into the delta
    assert src.ctl("disk-info")["layers"] == "2"
    src.wait_passes(src.passes()[-1] + 1)
    return src


def only_placeholder(folder):
    left = sorted(n for n in os.listdir(folder) if n not in ("vm.conf", "serial.log", "vmx.sock"))
    assert left == ["t.img"], left


def test_disk_and_memory_move_together_under_a_writing_guest(tmp):
    root, vms = tmp
    a, b = os.path.join(root, "a"), os.path.join(root, "b")
    src = running_source(root, vms)
    dst = Vmx.incoming(b, "unix:" + os.path.join(root, "m.sock"), "--incoming-disk")
    vms.append(dst)
    before = len(src.verify_lines())
    r = src.ctl("migrate", dst.listen, "disk", "verify", "wait")
    assert r["phase"] == "MIGRATE_COMPLETED", (r, src.d.log()[-3000:], dst.d.log()[-3000:])
    assert int(r["disk_total_bytes"]) > 0, r
    assert int(r["disk_sent_bytes"]) >= int(r["disk_total_bytes"]), r
    assert src.wait_exit() == EXIT_MIGRATED
    assert re.search(r"VMX-MIGRATE disk received files=4 bytes=\d+ layers=2", dst.d.log()), dst.d.log()[-3000:]
    # the destination runs from b's files: base + delta, every layer there
    info = dst.ctl("disk-info")
    assert info["path"] == os.path.join(b, "t.img") and info["layers"] == "2", info
    for f in DISK_FILES:
        assert os.path.exists(os.path.join(b, f)), f
    # a's files stay as they were (the source only read them)
    for f in DISK_FILES:
        assert os.path.exists(os.path.join(a, f)), f
    # the guest goes on: whole write+verify passes on the destination
    p0 = dst.wait_passes(0)
    dst.wait_passes(p0 + 2)
    lines = src.verify_lines()[before:] + dst.verify_lines()
    assert dst.verify_lines(), dst.serial_text()[-2000:]
    bad = [l for l in lines if "bad=0 errors=0" not in l]
    assert not bad, bad[:5]
    # the data on b: the last finished pass's pattern
    d = dst.ctl("snapshot-delete", "../a/s1.snap")
    assert d["merged_layer"] == "t-000001-delta" and d["into_layer"] == "-", d
    dst.wait_passes(dst.passes()[-1] + 1)
    assert dst.ctl("pause")["state"] == "PAUSED"
    last = dst.passes()[-1] + SEED
    with open(os.path.join(b, "t.img"), "rb") as f:
        for s in (0, 1, 8, 1000, 4096, SECTORS - 1):
            f.seek(s * 512)
            assert f.read(512) in (sector_bytes(last, s), sector_bytes(last + 1, s)), "sector %d" % s
    dst.ctl("resume")
    assert dst.ctl("poweroff")["state"] == "POWERED_OFF"
    assert dst.wait_exit() == 0


def test_mismatched_ends_and_cancel_leave_the_source(tmp):
    root, vms = tmp
    a, b = os.path.join(root, "a"), os.path.join(root, "b")
    src = running_source(root, vms)
    files = digest(a, ("t.img", "t-000001-delta.map", "t.img.chain"))

    # a destination with its own disk does not take one
    dst = Vmx.incoming(b, "unix:" + os.path.join(root, "m1.sock"))
    vms.append(dst)
    r = src.ctl("migrate", dst.listen, "disk", "wait", check=False)[1]
    assert r["phase"] == "MIGRATE_FAILED" and "does not take a disk" in r["error"], r
    assert dst.wait_exit() == 1
    only_placeholder(b)
    # one that expects the disk refuses a stream without it
    dst = Vmx.incoming(b, "unix:" + os.path.join(root, "m2.sock"), "--incoming-disk")
    vms.append(dst)
    r = src.ctl("migrate", dst.listen, "wait", check=False)[1]
    assert r["phase"] == "MIGRATE_FAILED" and "expects the disk" in r["error"], r
    assert dst.wait_exit() == 1
    only_placeholder(b)
    # a cancel during the disk's first pass (8 MiB of data at 2 MiB/s)
    dst = Vmx.incoming(b, "unix:" + os.path.join(root, "m3.sock"), "--incoming-disk")
    vms.append(dst)
    src.ctl("migrate", dst.listen, "disk", "bandwidth=2097152")
    wait_for(lambda: int(src.ctl("migrate-status")["disk_sent_bytes"]) > (1 << 20), 20, "disk bytes sent")
    assert int(src.ctl("migrate-status")["disk_sent_bytes"]) < int(src.ctl("migrate-status")["disk_total_bytes"])
    src.ctl("migrate-cancel")
    r = wait_for(lambda: (lambda s: s if s["phase"] in ("MIGRATE_CANCELLED", "MIGRATE_FAILED") else None)(
        src.ctl("migrate-status")), 20, "the cancel")
    assert r["phase"] == "MIGRATE_CANCELLED", r
    assert dst.wait_exit() == 1
    only_placeholder(b)
    # the source runs on, on its own files, and can take a snapshot again
    # (the disk is no longer marked)
    assert src.ctl("disk-info")["path"] == os.path.join(a, "t.img")
    src.wait_passes(src.passes()[-1] + 1)
    src.ctl("snapshot", "s2.snap")
    assert src.ctl("disk-info")["layers"] == "3"
    assert digest(a, ("t.img",)) == {"t.img": files["t.img"]}     # frozen: never written
    bad = [l for l in src.verify_lines() if "bad=0 errors=0" not in l]
    assert not bad, bad[:5]


def lease_fields(path):
    with open(path) as f:
        return dict(l.partition("=")[::2] for l in f.read().splitlines() if "=" in l)


def test_each_folder_has_its_own_lease(tmp):
    """The destination's files are its own: it takes a lease in its folder
    when it starts (before any byte arrives); the source's lease is not
    handed over but released when it exits as migrated."""
    root, vms = tmp
    a, b = os.path.join(root, "a"), os.path.join(root, "b")
    conf = "lease.path = t.lck\nlease.owner = %s\nlease.owner_name = %s\nlease.duration_ms = 2000\n"
    config(a, conf % ("host-a", "esx-a"))
    config(b, conf % ("host-b", "esx-b"))
    la, lb = os.path.join(a, "t.lck"), os.path.join(b, "t.lck")
    src = Vmx.source(a)
    vms.append(src)
    src.wait_passes(0)
    assert lease_fields(la)["owner"] == "host-a"
    dst = Vmx.incoming(b, "unix:" + os.path.join(root, "m.sock"), "--incoming-disk")
    vms.append(dst)
    dst.d.wait_log(r"VMX-LEASE acquired path=%s" % re.escape(lb))
    assert lease_fields(lb)["owner"] == "host-b" and lease_fields(lb)["state"] == "held"
    r = src.ctl("migrate", dst.listen, "disk", "wait")
    assert r["phase"] == "MIGRATE_COMPLETED", (r, dst.d.log()[-2000:])
    assert src.wait_exit() == EXIT_MIGRATED
    assert "VMX-LEASE transferred" not in src.d.log() and "VMX-LEASE adopted" not in dst.d.log()
    assert lease_fields(la)["state"] == "free", lease_fields(la)
    hb = lease_fields(lb)["heartbeat"]
    wait_for(lambda: lease_fields(lb)["heartbeat"] != hb, 10, "the destination to renew its lease")
    assert lease_fields(lb)["owner"] == "host-b"
    dst.wait_passes(dst.passes()[-1] + 1 if dst.passes() else 0)
    assert dst.ctl("poweroff")["state"] == "POWERED_OFF"
    assert dst.wait_exit() == 0
    assert lease_fields(lb)["state"] == "free"


def test_memory_only_to_another_folder_takes_its_own_lease(tmp):
    """A VM without a disk moving to a folder that is not the source's:
    without --incoming-own-lease the destination refuses at the handshake
    (it would adopt a lease file that is not there, after the source left);
    with it, it holds its own lease and the source releases its own."""
    root, vms = tmp
    a, b = os.path.join(root, "a"), os.path.join(root, "b")
    for f, owner in ((a, "host-a"), (b, "host-b")):
        with open(os.path.join(f, "vm.conf"), "w") as c:
            c.write("name = t\nmemory_mb = 32\nguest.image = %s\nguest.workload = counter\n"
                    "serial.log = serial.log\nlease.path = t.lck\nlease.owner = %s\n"
                    "lease.duration_ms = 2000\n" % (GUEST, owner))
        os.unlink(os.path.join(f, "t.img"))
    la, lb = os.path.join(a, "t.lck"), os.path.join(b, "t.lck")
    src = Vmx.source(a)
    vms.append(src)
    dst = Vmx.incoming(b, "unix:" + os.path.join(root, "n1.sock"))
    vms.append(dst)
    r = src.ctl("migrate", dst.listen, "wait", check=False)[1]
    assert r["phase"] == "MIGRATE_FAILED" and "does not see the source's folder" in r["error"], r
    assert dst.wait_exit() == 1
    assert src.ctl("info")["state"] == "RUNNING" and lease_fields(la)["owner"] == "host-a"
    assert not os.path.exists(lb)
    dst = Vmx.incoming(b, "unix:" + os.path.join(root, "n2.sock"), "--incoming-own-lease")
    vms.append(dst)
    dst.d.wait_log(r"VMX-LEASE acquired path=%s" % re.escape(lb))
    r = src.ctl("migrate", dst.listen, "wait")
    assert r["phase"] == "MIGRATE_COMPLETED", r
    assert src.wait_exit() == EXIT_MIGRATED
    assert "VMX-LEASE transferred" not in src.d.log()
    assert lease_fields(la)["state"] == "free" and lease_fields(lb)["owner"] == "host-b"
    hb = lease_fields(lb)["heartbeat"]
    wait_for(lambda: lease_fields(lb)["heartbeat"] != hb, 10, "the destination to renew its lease")
    assert dst.ctl("info")["state"] == "RUNNING"
    assert dst.ctl("poweroff")["state"] == "POWERED_OFF"
    assert dst.wait_exit() == 0


def rec(t, body=b"", arg=0, length=None):
    return struct.pack("<IIQ", t, arg, len(body) if length is None else length) + body


def hello():
    return rec(HELLO, struct.pack("<QIQIIII", MAGIC, 1, 32 << 20, 1, 4096, 0, 10000))


def begin(n=2, cap=DISK_MB << 20, base=b"t.img"):
    return rec(DISK_BEGIN, struct.pack("<IQI", n, cap, len(base)) + base)


def dfile(i, name, size):
    return rec(DISK_FILE, struct.pack("<Q", size) + name, arg=i)


HOSTILE = [
    ("other base", begin(base=b"u.img"), r"source's disk is u.img"),
    ("other size", begin(cap=1 << 20), r"source's disk is t.img, 1048576 bytes"),
    ("too many files", begin(n=100000), r"has 100000 files"),
    ("config name", begin() + dfile(0, b"t.img", DISK_MB << 20) + dfile(1, b"vm.conf", 10),
     r"not a disk layer's"),
    ("path escape", begin() + dfile(0, b"t.img", DISK_MB << 20) + dfile(1, b"../x-delta.img", 10),
     r"not a disk layer's"),
    ("base not first", begin() + dfile(0, b"t-000009-delta.img", DISK_MB << 20), r"base must come first"),
    ("huge map", begin() + dfile(0, b"t.img", DISK_MB << 20) + dfile(1, b"t-000009-delta.map", 1 << 40),
     r"too large"),
    ("write past the file", begin() + dfile(0, b"t.img", DISK_MB << 20)
     + rec(DISK_DATA, struct.pack("<Q", DISK_MB << 20) + b"x" * 512), r"DISK_DATA outside t.img"),
    ("data before file", begin() + rec(DISK_DATA, struct.pack("<Q", 0) + b"x" * 512, arg=1),
     r"not announced"),
    ("end too early", begin() + dfile(0, b"t.img", DISK_MB << 20) + rec(DISK_END), r"after 1 of 2 files"),
]


@pytest.mark.parametrize("name,data,why", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_disk_records_are_refused(tmp, name, data, why):
    root, vms = tmp
    b = os.path.join(root, "b")
    with open(os.path.join(root, "x-delta.img"), "wb") as f:
        f.write(b"outside")
    path = os.path.join(root, "h.sock")
    dst = Vmx.incoming(b, "unix:" + path, "--incoming-disk")
    vms.append(dst)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    try:
        s.sendall(hello() + data)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()
    assert dst.wait_exit() == 1, dst.d.log()[-2000:]
    log = dst.d.log()
    assert re.search(r"VMX-MIGRATE failed reason=.*" + why, log), (name, log[-2000:])
    assert "VMX-READY" not in log
    only_placeholder(b)
    with open(os.path.join(root, "x-delta.img"), "rb") as f:
        assert f.read() == b"outside"
    with open(os.path.join(b, "vm.conf")) as f:
        assert "disk.path = t.img" in f.read()
