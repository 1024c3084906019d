"""virtio-blk with the real test guest: data written in one boot is read
back in the next, requests the guest gets wrong fail for the guest only, a
VM snapshot freezes the disk into a delta and a restore goes back to it,
deleting the snapshot consolidates the delta into the base, and corrupt
delta metadata is refused with a clear reason.  Skips where /dev/kvm is not
usable."""
import os
import re
import struct
import subprocess
import tempfile

import pytest

from kvctest import Daemon, binpath, kvm_usable, wait_for

VMX = binpath("vmkernel-kvm/vmx")
VMXCTL = binpath("vmkernel-kvm/vmxctl")
GUEST = binpath("vmkernel-kvm/guest/kvc-guest.elf")

_ok, _why = kvm_usable()
pytestmark = pytest.mark.skipif(not _ok, reason=_why or "no /dev/kvm")

M64 = (1 << 64) - 1
DISK_MB = 16
TEST_MB = 4
SECTORS = TEST_MB * 2048


def pattern_word(seed, sector, w):
    """The guest's pattern (guest/blk.c pattern())."""
    z = (seed * 0x9e3779b97f4a7c15 + ((sector << 6) | w) + 0x632be59bd9b4e019) & M64
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
    return z ^ (z >> 31)


def sector_bytes(seed, sector):
    return struct.pack("<64Q", *(pattern_word(seed, sector, w) for w in range(64)))


class Vm:
    def __init__(self, tmp, test="off", seed=1, extra="", tag=""):
        self.tmp = tmp
        self.conf = os.path.join(tmp, "vm%s.conf" % tag)
        self.sock = os.path.join(tmp, "vmx%s.sock" % tag)
        self.serial = os.path.join(tmp, "serial%s.log" % tag)
        # a fresh serial log per boot, so each boot's lines are its own
        if os.path.exists(self.serial):
            os.unlink(self.serial)
        with open(self.conf, "w") as f:
            f.write("name = t\nuuid = 4c4c4544-0000-0000-0000-0000000000b1\nmemory_mb = 32\n"
                    "guest.image = %s\nserial.log = %s\ndisk.path = t.img\n"
                    "guest.disk_test = %s\nguest.disk_seed = %d\nguest.disk_mb = %d\n%s"
                    % (GUEST, os.path.basename(self.serial), test, seed, TEST_MB, extra))
        self.d = None

    def start(self, *args, env=None):
        self.d = Daemon([VMX, "-c", self.conf, "-s", self.sock] + list(args), env=env)
        self.d.wait_log(r"VMX-READY pid=%d" % self.d.pid, timeout=20)
        return self

    def ctl(self, *args, check=True):
        p = subprocess.run([VMXCTL, "-s", self.sock] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("vmxctl %s failed: %s\nvmx log:\n%s"
                                 % (args, p.stderr, self.d.log()[-3000:] if self.d else ""))
        out = {}
        for line in p.stdout.splitlines():
            k, _, v = line.partition("=")
            out[k] = v
        return out if check else (p.returncode, out, p.stderr)

    def serial_text(self):
        try:
            with open(self.serial, "rb") as f:
                return f.read().decode("ascii", "replace")
        except FileNotFoundError:
            return ""

    def wait_serial(self, pattern, timeout=30):
        rx = re.compile(pattern)

        def check():
            m = rx.search(self.serial_text())
            if m:
                return m
            if self.d and self.d.proc.poll() is not None:
                raise RuntimeError("vmx exited (%s) before serial %r:\n%s\nserial:\n%s"
                                   % (self.d.proc.returncode, pattern, self.d.log()[-2000:],
                                      self.serial_text()[-2000:]))
            return None
        return wait_for(check, timeout, "serial output %r" % pattern)

    def wait_done(self):
        self.wait_serial(r"KVC-GUEST: disk done")
        return self.serial_text()

    def poweroff(self):
        assert self.ctl("poweroff")["state"] == "POWERED_OFF"
        wait_for(lambda: self.d.proc.poll() is not None, 20, "vmx to exit")
        assert self.d.proc.returncode == 0, self.d.log()[-2000:]

    def stop(self):
        if self.d:
            self.d.stop()


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory(prefix="vmx-blk-") as d:
        with open(os.path.join(d, "t.img"), "wb") as f:
            f.truncate(DISK_MB << 20)      # sparse, like hostd's vmstore
        yield d


@pytest.fixture
def vms():
    started = []
    yield started
    for v in started:
        v.stop()


def boot(tmp, vms, test, seed, *args, extra="", env=None):
    v = Vm(tmp, test, seed, extra)
    vms.append(v)
    return v.start(*args, env=env)


def base_sectors(tmp, sectors):
    with open(os.path.join(tmp, "t.img"), "rb") as f:
        out = {}
        for s in sectors:
            f.seek(s * 512)
            out[s] = f.read(512)
        return out


def assert_base_holds(tmp, seed):
    got = base_sectors(tmp, [0, 1, 511, 4095, SECTORS - 1])
    for s, data in got.items():
        assert data == sector_bytes(seed, s), "base sector %d does not hold seed %d" % (s, seed)


def test_data_survives_power_cycles_and_bad_requests_fail_alone(tmp, vms):
    v = boot(tmp, vms, "write", 11)
    out = v.wait_done()
    assert "KVC-GUEST: disk ready capacity=%d ro=0 id=4c4c4544-0000-0000-0\n" % (DISK_MB * 2048) in out
    # past the end, straddling the end, odd length: IOERR; unknown type: UNSUPP
    assert "KVC-GUEST: disk probe past_end=1 straddle=1 odd_len=1 bad_type=2" in out
    assert "KVC-GUEST: disk write sectors=%d errors=0 flush=0" % SECTORS in out
    assert "KVC-GUEST: disk verify sectors=%d bad=0 errors=0" % SECTORS in out
    info = v.ctl("disk-info")
    assert info["present"] == "1" and info["layers"] == "1" and info["layer0"] == "-"
    assert int(info["capacity_sectors"]) == DISK_MB * 2048
    assert int(info["errors"]) == 4 and int(info["unsupported"]) == 1
    assert int(info["write_bytes"]) == SECTORS * 512
    assert int(info["flush_requests"]) == 1
    # the bad requests changed nothing: the VM runs on, the queue serves
    st = v.ctl("stats")
    assert st["state"] == "RUNNING" and st["tools.heartbeat_lost"] == "0"
    v.poweroff()
    assert_base_holds(tmp, 11)
    # sparse: only what the guest wrote is allocated
    st = os.stat(os.path.join(tmp, "t.img"))
    assert st.st_blocks * 512 < (TEST_MB + 1) << 20

    v = boot(tmp, vms, "verify", 11)
    out = v.wait_done()
    assert "KVC-GUEST: disk verify sectors=%d bad=0 errors=0" % SECTORS in out
    assert "disk write" not in out
    v.poweroff()
    # the check can fail: another seed does not match anywhere
    v = boot(tmp, vms, "verify", 12)
    out = v.wait_done()
    assert "KVC-GUEST: disk verify sectors=%d bad=%d errors=0" % (SECTORS, SECTORS) in out
    v.poweroff()

    # read-only: writes fail (for the guest), reads work, the disk is unchanged
    v = boot(tmp, vms, "write", 13, extra="disk.readonly = true\n")
    out = v.wait_done()
    assert "ro=1" in out
    assert "KVC-GUEST: disk write sectors=%d errors=%d flush=0" % (SECTORS, SECTORS // 512) in out
    assert "bad=%d" % SECTORS in out           # still seed 11's data
    assert v.ctl("disk-info")["readonly"] == "1"
    code, _, err = v.ctl("snapshot", "ro.snap", check=False)
    assert code == 0, err                       # a read-only disk needs no delta
    assert not os.path.exists(os.path.join(tmp, "t.img.chain"))
    v.poweroff()
    assert_base_holds(tmp, 11)


def test_snapshot_delta_restore_and_delete(tmp, vms):
    # 1: seed 1 on the base, then a snapshot: the base is frozen
    v = boot(tmp, vms, "write", 1)
    assert "bad=0 errors=0" in v.wait_done()
    snap = v.ctl("snapshot", "s1.snap")
    assert snap["state"] == "RUNNING"
    assert re.search(r"VMX-SNAPSHOT path=.*s1\.snap", v.d.log())
    info = v.ctl("disk-info")
    assert info["layers"] == "2" and info["layer1"] == "t-000001-delta", info
    for f in ("t-000001-delta.img", "t-000001-delta.map", "t.img.chain"):
        assert os.path.exists(os.path.join(tmp, f)), f
    with open(os.path.join(tmp, "t.img.chain")) as f:
        chain = f.read()
    assert chain.startswith("kvc-disk-chain 1\n") and "top t-000001-delta" in chain
    v.poweroff()

    p = subprocess.run([VMX, "-c", os.path.join(tmp, "vm.conf"), "-n"], capture_output=True, text=True)
    assert p.returncode == 0 and "disk %d sectors in 2 layer(s)" % (DISK_MB * 2048) in p.stdout, p
    # corrupt delta metadata: vmx refuses to start (and -n refuses), and says why
    mp = os.path.join(tmp, "t-000001-delta.map")
    with open(mp, "r+b") as f:
        f.seek(20)
        b = f.read(1)
        f.seek(20)
        f.write(bytes([b[0] ^ 0x10]))
    p = subprocess.run([VMX, "-c", os.path.join(tmp, "vm.conf"), "-s", os.path.join(tmp, "x.sock")],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1 and "checksum mismatch" in p.stderr + p.stdout, p.stderr
    p = subprocess.run([VMX, "-c", os.path.join(tmp, "vm.conf"), "-n"], capture_output=True, text=True)
    assert p.returncode == 1 and "checksum mismatch" in p.stderr, p
    with open(mp, "r+b") as f:
        f.seek(20)
        f.write(b)

    # 2: a new boot writes seed 2: into the delta, the base keeps seed 1
    v = boot(tmp, vms, "write", 2)
    assert "bad=0 errors=0" in v.wait_done()
    info = v.ctl("disk-info")
    assert info["layers"] == "2" and int(info["layer1.clusters"]) == SECTORS // 8
    v.poweroff()
    assert_base_holds(tmp, 1)

    # 3: restore the snapshot: back to the disk as it was then
    v = boot(tmp, vms, "off", 0, "--restore", os.path.join(tmp, "s1.snap"))
    info = v.ctl("disk-info")
    assert info["layers"] == "2" and info["layer1"] == "t-000002-delta", info
    assert int(info["layer1.clusters"]) == 0
    assert not os.path.exists(os.path.join(tmp, "t-000001-delta.img"))
    assert v.ctl("info")["restored"] == "1"
    v.poweroff()
    v = boot(tmp, vms, "verify", 1)
    assert "KVC-GUEST: disk verify sectors=%d bad=0 errors=0" % SECTORS in v.wait_done()
    v.poweroff()

    # 4: write seed 3 after the restore, then delete the snapshot: the delta
    # is merged into the base while the guest runs on
    v = boot(tmp, vms, "write", 3)
    assert "bad=0 errors=0" in v.wait_done()
    d = v.ctl("snapshot-delete", "s1.snap")
    assert d["merged_layer"] == "t-000002-delta" and d["into_layer"] == "-", d
    assert int(d["clusters"]) == SECTORS // 8
    assert re.search(r"VMX-SNAPSHOT-DELETE path=.*s1\.snap merged=t-000002-delta into=-", v.d.log())
    assert not os.path.exists(os.path.join(tmp, "s1.snap"))
    assert not os.path.exists(os.path.join(tmp, "t-000002-delta.img"))
    assert not os.path.exists(os.path.join(tmp, "t-000002-delta.map"))
    info = v.ctl("disk-info")
    assert info["layers"] == "1", info
    assert v.ctl("stats")["state"] == "RUNNING"
    # a snapshot that is gone cannot be deleted twice
    code, _, err = v.ctl("snapshot-delete", "s1.snap", check=False)
    assert code != 0 and "s1.snap" in err
    v.poweroff()
    assert_base_holds(tmp, 3)
    with open(os.path.join(tmp, "t.img.chain")) as f:
        chain = f.read()
    assert not re.search(r"^layer ", chain, re.M) and re.search(r"^top -$", chain, re.M)

    v = boot(tmp, vms, "verify", 3)
    assert "KVC-GUEST: disk verify sectors=%d bad=0 errors=0" % SECTORS in v.wait_done()
    v.poweroff()


def test_snapshot_of_running_writer_and_bad_restore(tmp, vms):
    # A snapshot file whose disk layer is gone is refused at restore with the
    # reason; the disk is not touched.
    v = boot(tmp, vms, "write", 5)
    v.wait_done()
    v.ctl("snapshot", "a.snap")
    v.ctl("snapshot", "b.snap")
    info = v.ctl("disk-info")
    assert info["layers"] == "3", info
    # deleting the older one merges its child into the base; the newer one
    # still restores (its layer now resolves to the base)
    d = v.ctl("snapshot-delete", "a.snap")
    assert d["merged_layer"] == "t-000001-delta" and d["into_layer"] == "-", d
    assert v.ctl("disk-info")["layers"] == "2"
    v.poweroff()
    v = boot(tmp, vms, "off", 0, "--restore", os.path.join(tmp, "b.snap"))
    assert v.ctl("info")["restored"] == "1"
    v.poweroff()
    v = boot(tmp, vms, "verify", 5)
    assert "bad=0 errors=0" in v.wait_done()
    v.poweroff()
    # a chain file that names a delta that is gone: a clear start failure
    with open(os.path.join(tmp, "t.img.chain")) as f:
        chain = f.read()
    top = re.search(r"^top (\S+)$", chain, re.M).group(1)
    os.unlink(os.path.join(tmp, top + ".map"))
    p = subprocess.run([VMX, "-c", os.path.join(tmp, "vm.conf"), "-s", os.path.join(tmp, "x.sock")],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1 and top + ".map" in p.stderr, p.stderr


def test_live_migration_hands_the_disk_over(tmp, vms):
    # Both vmx run on the same files (one folder: a shared datastore). The
    # source writes, snapshots (so the disk is base + delta) and migrates;
    # the destination reloads the chain and maps when the state arrives.
    src = boot(tmp, vms, "write", 21)
    assert "bad=0 errors=0" in src.wait_done()
    src.ctl("snapshot", "m.snap")
    dst = Vm(tmp, "off", 0, tag="-dst")
    vms.append(dst)
    dst.d = Daemon([VMX, "-c", dst.conf, "-s", dst.sock, "--incoming",
                    "unix:" + os.path.join(tmp, "mig.sock")])
    addr = dst.d.wait_log(r"VMX-INCOMING pid=%d listen=(\S+)" % dst.d.pid, timeout=20).group(1)
    # nothing touches the disk's layers on a destination still waiting
    code, _, err = dst.ctl("snapshot-delete", "m.snap", check=False)
    assert code != 0 and "not running" in err, err
    assert os.path.exists(os.path.join(tmp, "m.snap"))
    r = src.ctl("migrate", addr, "wait")
    assert r["phase"] == "MIGRATE_COMPLETED", r
    wait_for(lambda: src.d.proc.poll() is not None, 20, "the source to exit")
    dst.d.wait_log(r"VMX-READY pid=%d" % dst.d.pid)
    info = dst.ctl("disk-info")
    assert info["layers"] == "2" and info["layer1"] == "t-000001-delta", info
    assert "ready workload" not in dst.serial_text()     # it did not boot again
    # the snapshot taken on the source is deleted on the destination
    d = dst.ctl("snapshot-delete", "m.snap")
    assert d["merged_layer"] == "t-000001-delta", d
    dst.poweroff()
    v = boot(tmp, vms, "verify", 21)
    assert "KVC-GUEST: disk verify sectors=%d bad=0 errors=0" % SECTORS in v.wait_done()
    v.poweroff()


def test_merge_interrupted_by_a_crash_finishes_at_the_next_start(tmp, vms):
    v = boot(tmp, vms, "write", 31)
    v.wait_done()
    v.ctl("snapshot", "c.snap")
    v.poweroff()
    # vmx dies in the merge, after the copy, before the chain file says so
    v = boot(tmp, vms, "write", 32, env={"KVC_VMX_FAULT": "disk-merge-copied"})
    assert "bad=0 errors=0" in v.wait_done()
    code, _, err = v.ctl("snapshot-delete", "c.snap", check=False)
    assert code != 0
    wait_for(lambda: v.d.proc.poll() is not None, 20, "vmx to die in the merge")
    assert v.d.proc.returncode == 99, v.d.log()[-2000:]
    assert not os.path.exists(os.path.join(tmp, "c.snap"))       # deleted first
    with open(os.path.join(tmp, "t.img.chain")) as f:
        assert re.search(r"^merge t-000001-delta$", f.read(), re.M)
    assert os.path.exists(os.path.join(tmp, "t-000001-delta.map"))
    assert_base_holds(tmp, 32)        # the copy was done; the delta still shadows it
    # -n (read-only) sees the same disk through the delta
    p = subprocess.run([VMX, "-c", os.path.join(tmp, "vm.conf"), "-n"], capture_output=True, text=True)
    assert p.returncode == 0 and "in 2 layer(s)" in p.stdout, p
    # the next start finishes the merge, and the data is the latest
    v = boot(tmp, vms, "verify", 32)
    assert "KVC-GUEST: disk verify sectors=%d bad=0 errors=0" % SECTORS in v.wait_done()
    assert "finishing the merge of t-000001-delta" in v.d.log()
    assert v.ctl("disk-info")["layers"] == "1"
    assert not os.path.exists(os.path.join(tmp, "t-000001-delta.map"))
    v.poweroff()
