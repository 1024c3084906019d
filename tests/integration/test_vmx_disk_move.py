"""Storage migration at the vmx level (VMX_DISK_MOVE, vmxctl disk-move): the
test guest writes and verifies its disk pattern pass after pass while vmx
moves the disk (base + snapshot delta) to another folder; every pass
verifies, the new folder holds the data and the old one is emptied.  A
cancel, a target without room, a target that fails writes, a target that
is the disk's own folder or holds a file of the disk leave the VM on its
source, unchanged, and no partial copy behind.  Skips where /dev/kvm is not
usable."""
import os
import re
import shutil
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
SEED = 100
DISK_FILES = ("t.img", "t-000001-delta.img", "t-000001-delta.map", "t.img.chain")


def pattern_word(seed, sector, w):
    """The guest's pattern (guest/blk.c pattern())."""
    z = (seed * 0x9e3779b97f4a7c15 + ((sector << 6) | w) + 0x632be59bd9b4e019) & M64
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
    return z ^ (z >> 31)


def sector_bytes(seed, sector):
    return struct.pack("<64Q", *(pattern_word(seed, sector, w) for w in range(64)))


class Vm:
    """A vmx whose config and disk live in SRC; the guest loops write+verify."""

    def __init__(self, src, env=None, prefix=()):
        self.src = src
        self.conf = os.path.join(src, "vm.conf")
        self.sock = os.path.join(src, "vmx.sock")
        self.serial = os.path.join(src, "serial.log")
        with open(os.path.join(src, "t.img"), "wb") as f:
            f.truncate(DISK_MB << 20)
        with open(self.conf, "w") as f:
            f.write("name = t\nuuid = 4c4c4544-0000-0000-0000-0000000000d1\nmemory_mb = 32\n"
                    "guest.image = %s\nserial.log = serial.log\ndisk.path = t.img\n"
                    "guest.disk_test = loop\nguest.disk_seed = %d\nguest.disk_mb = %d\n"
                    % (GUEST, SEED, TEST_MB))
        self.d = Daemon(list(prefix) + [VMX, "-c", self.conf, "-s", self.sock], env=env)
        self.d.wait_log(r"VMX-READY pid=\d+", timeout=20)

    def ctl(self, *args, check=True):
        p = subprocess.run([VMXCTL, "-s", self.sock] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError("vmxctl %s failed: %s\nvmx log:\n%s"
                                 % (args, p.stderr, self.d.log()[-3000:]))
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

    def passes(self):
        """Loop passes the guest finished (each wrote and verified its seed)."""
        return [int(x) for x in re.findall(r"disk loop pass=(\d+) seed=\d+\n", self.serial_text())]

    def wait_passes(self, n, timeout=30):
        def check():
            if self.d.proc.poll() is not None:
                raise RuntimeError("vmx exited (%s):\n%s" % (self.d.proc.returncode, self.d.log()[-2000:]))
            p = self.passes()
            return p[-1] if p and p[-1] >= n else None
        return wait_for(check, timeout, "guest loop pass %d" % n)

    def assert_all_verified(self):
        text = self.serial_text()
        lines = re.findall(r"KVC-GUEST: disk verify [^\n]*\n", text)   # whole lines
        # A line cut short by a killed vmx runs on into the next boot's first
        # line (the serial log is appended to): not a verify result.
        lines = [l for l in lines if "KVC-GUEST:" not in l[len("KVC-GUEST:"):]]
        assert lines, text[-2000:]
        bad = [l for l in lines if "bad=0 errors=0" not in l]
        assert not bad, bad[:5]
        assert "disk write sectors=%d errors=0" % SECTORS in text

    def status(self):
        return self.ctl("disk-move-status")

    def wait_phase(self, phases, timeout=30):
        return wait_for(lambda: (lambda s: s if s["phase"] in phases else None)(self.status()),
                        timeout, "disk move phase in %s" % (phases,))

    def poweroff(self):
        assert self.ctl("poweroff")["state"] == "POWERED_OFF"
        wait_for(lambda: self.d.proc.poll() is not None, 20, "vmx to exit")
        assert self.d.proc.returncode == 0, self.d.log()[-2000:]


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="vmx-dmove-")
    os.makedirs(os.path.join(d, "a"))
    os.makedirs(os.path.join(d, "b"))
    vms = []
    yield d, vms
    for v in vms:
        v.d.stop()
    shutil.rmtree(d, ignore_errors=True)


def assert_source_intact(vm, src, dst):
    assert vm.ctl("disk-info")["path"].endswith("a/t.img")
    assert os.path.exists(os.path.join(src, "t.img"))
    assert os.listdir(dst) == [], os.listdir(dst)


def test_move_under_a_writing_guest_keeps_every_write(tmp):
    root, vms = tmp
    src, dst = os.path.join(root, "a"), os.path.join(root, "b")
    vm = Vm(src)
    vms.append(vm)
    vm.wait_passes(0)
    # a snapshot freezes the base: the disk is base + delta, the guest
    # writes into the delta from here on
    vm.ctl("snapshot", "s1.snap")
    assert vm.ctl("disk-info")["layers"] == "2"
    vm.wait_passes(vm.passes()[-1] + 1)

    # bad targets: a clear error, nothing created, the VM runs on
    code, _, err = vm.ctl("disk-move", src, check=False)
    assert code != 0 and "folder already" in err, err
    code, _, err = vm.ctl("disk-move", "b", check=False)
    assert code != 0 and "absolute" in err, err
    code, _, err = vm.ctl("disk-move", os.path.join(root, "nope"), check=False)
    assert code != 0 and "No such file" in err, err
    with open(os.path.join(dst, "t-000001-delta.map"), "w") as f:
        f.write("someone else's")
    code, _, err = vm.ctl("disk-move", dst, check=False)
    assert code != 0 and "exists already" in err, err
    with open(os.path.join(dst, "t-000001-delta.map")) as f:
        assert f.read() == "someone else's"
    os.unlink(os.path.join(dst, "t-000001-delta.map"))
    assert os.listdir(dst) == []
    assert vm.status()["phase"] == "DISK_MOVE_NONE"

    # the move, while the guest writes flat out: the first pass (8 MiB at
    # 2 MiB/s) outlasts whole guest passes, which must all be caught
    r = vm.ctl("disk-move", dst, "bandwidth=2097152")
    assert r["phase"] == "DISK_MOVE_COPYING", r
    vm.wait_passes(vm.passes()[-1] + 2)
    s = vm.status()
    assert s["phase"] == "DISK_MOVE_COPYING", s     # those passes ran during the copy
    r = vm.ctl("disk-move-status")
    r = vm.wait_phase(("DISK_MOVE_COMPLETED", "DISK_MOVE_FAILED"))
    assert r["phase"] == "DISK_MOVE_COMPLETED", r
    assert r["files"] == str(len(DISK_FILES)) and r["percent"] == "100", r
    assert r["to_path"] == os.path.join(dst, "t.img") and r["error"] == "", r
    assert int(r["recopied_clusters"]) > 0, r      # guest writes landed during the copy
    assert int(r["copied_bytes"]) >= int(r["total_bytes"]) > 0, r
    assert re.search(r"VMX-DISK-MOVE phase=completed from=\S+ to=%s/t.img files=4" % re.escape(dst),
                     vm.d.log())
    info = vm.ctl("disk-info")
    assert info["path"] == os.path.join(dst, "t.img") and info["layers"] == "2", info
    # the old folder holds no disk file; the new one all, no marker left
    for f in DISK_FILES:
        assert not os.path.exists(os.path.join(src, f)), f
        assert os.path.exists(os.path.join(dst, f)), f
    assert sorted(os.listdir(dst)) == sorted(DISK_FILES)

    # whole passes after the switch: written to and verified from the new files
    vm.wait_passes(vm.passes()[-1] + 2)
    vm.assert_all_verified()
    # the moved disk is a full disk: the snapshot's delta merges into the
    # base in the new folder
    d = vm.ctl("snapshot-delete", "s1.snap")
    assert d["merged_layer"] == "t-000001-delta" and d["into_layer"] == "-", d
    assert sorted(os.listdir(dst)) == ["t.img", "t.img.chain"]
    vm.wait_passes(vm.passes()[-1] + 1)
    assert vm.ctl("pause")["state"] == "PAUSED"
    last = vm.passes()[-1] + SEED          # seed of the last finished pass
    with open(os.path.join(dst, "t.img"), "rb") as f:
        for s in (0, 1, 7, 8, 1000, 4095, 4096, SECTORS - 1):
            f.seek(s * 512)
            got = f.read(512)
            assert got in (sector_bytes(last, s), sector_bytes(last + 1, s)), "sector %d" % s
    vm.ctl("resume")
    vm.assert_all_verified()
    vm.poweroff()


def test_cancel_and_busy_leave_the_source(tmp):
    root, vms = tmp
    src, dst = os.path.join(root, "a"), os.path.join(root, "b")
    vm = Vm(src)
    vms.append(vm)
    vm.wait_passes(0)
    # slow enough (4 MiB at 256 KiB/s) to be cancelled in the first pass
    r = vm.ctl("disk-move", dst, "bandwidth=262144")
    assert r["phase"] == "DISK_MOVE_COPYING", r
    assert os.path.exists(os.path.join(dst, "t.img.moving"))
    code, _, err = vm.ctl("disk-move", dst, check=False)
    assert code != 0 and "in progress" in err, err
    # nothing may change the layer tree meanwhile
    code, _, err = vm.ctl("snapshot", "x.snap", check=False)
    assert code != 0 and "busy" in err, err
    assert not os.path.exists(os.path.join(src, "x.snap"))
    assert vm.ctl("disk-info")["layers"] == "1"
    code, _, err = vm.ctl("migrate", "unix:" + os.path.join(root, "m.sock"), check=False)
    assert code != 0 and "disk move" in err, err
    r = vm.ctl("disk-move-cancel")
    s = vm.wait_phase(("DISK_MOVE_CANCELLED",))
    assert s["error"] == "cancelled", s
    assert_source_intact(vm, src, dst)
    code, _, err = vm.ctl("disk-move-cancel", check=False)
    assert code != 0 and "no disk move" in err, err
    vm.wait_passes(vm.passes()[-1] + 2)
    vm.assert_all_verified()
    # and a move after the cancel goes through
    r = vm.ctl("disk-move", dst, "wait")
    assert r["phase"] == "DISK_MOVE_COMPLETED", r
    vm.wait_passes(vm.passes()[-1] + 1)
    vm.assert_all_verified()
    vm.poweroff()


def test_target_without_room_or_failing_writes_leaves_the_source(tmp):
    root, vms = tmp
    src, dst, small = os.path.join(root, "a"), os.path.join(root, "b"), os.path.join(root, "small")
    os.makedirs(small)
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a private 1 MiB tmpfs")
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs -o size=1m kvc %s" % small], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot mount a tmpfs in a mount namespace: %s" % probe.stderr.decode())
    # vmx in its own mount namespace, where SMALL is a 1 MiB tmpfs; the
    # fault makes every write into a target fail after the first MiB
    prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c",
              'mount -t tmpfs -o size=1m kvc "$0" && exec "$@"', small]
    vm = Vm(src, env={"KVC_VMX_FAULT": "disk-move-eio"}, prefix=prefix)
    vms.append(vm)
    vm.wait_passes(0)
    inside = "/proc/%d/root%s" % (vm.d.pid, small)
    code, _, err = vm.ctl("disk-move", small, check=False)
    assert code != 0 and "no space" in err and "No space left" in err, err
    assert os.listdir(inside) == [], os.listdir(inside)
    assert vm.status()["phase"] == "DISK_MOVE_NONE"

    r = vm.ctl("disk-move", dst)
    s = vm.wait_phase(("DISK_MOVE_FAILED", "DISK_MOVE_COMPLETED"))
    assert s["phase"] == "DISK_MOVE_FAILED" and "Input/output error" in s["error"], s
    assert re.search(r"VMX-DISK-MOVE phase=failed", vm.d.log())
    assert_source_intact(vm, src, dst)
    vm.wait_passes(vm.passes()[-1] + 2)
    vm.assert_all_verified()
    # the disk still takes snapshots (the move let go of it)
    vm.ctl("snapshot", "after.snap")
    assert vm.ctl("disk-info")["layers"] == "2"
    vm.wait_passes(vm.passes()[-1] + 1)
    vm.assert_all_verified()
    vm.poweroff()


def digest(folder, names):
    import hashlib
    out = {}
    for n in names:
        with open(os.path.join(folder, n), "rb") as f:
            out[n] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_vmx_killed_mid_copy_leaves_the_source_and_a_marked_partial_copy(tmp):
    root, vms = tmp
    src, dst = os.path.join(root, "a"), os.path.join(root, "b")
    vm = Vm(src)
    vms.append(vm)
    vm.wait_passes(0)
    vm.ctl("snapshot", "k.snap")
    vm.wait_passes(vm.passes()[-1] + 1)
    # no guest writes from here: the source files can be compared after
    assert vm.ctl("pause")["state"] == "PAUSED"
    names = [n for n in DISK_FILES]
    before = digest(src, names)
    r = vm.ctl("disk-move", dst, "bandwidth=262144")
    assert r["phase"] == "DISK_MOVE_COPYING", r
    wait_for(lambda: int(vm.status()["copied_bytes"]) > 0, 20, "the copy under way")
    vm.d.proc.kill()
    vm.d.proc.wait(10)
    # the source is the disk, unchanged; the target says it is partial
    assert digest(src, names) == before
    assert os.path.exists(os.path.join(dst, "t.img.moving"))
    with open(os.path.join(dst, "t.img.moving")) as f:
        assert f.read().startswith("moving from ")
    # vmx starts again from the source; a move into the folder with the
    # leftover marker is refused until it is cleaned up
    os.unlink(os.path.join(src, "vmx.sock"))
    vm2 = Vm.__new__(Vm)
    vm2.src, vm2.conf, vm2.sock, vm2.serial = vm.src, vm.conf, vm.sock, vm.serial
    vm2.d = Daemon([VMX, "-c", vm2.conf, "-s", vm2.sock])
    vms.append(vm2)
    vm2.d.wait_log(r"VMX-READY pid=\d+", timeout=20)
    info = vm2.ctl("disk-info")
    assert info["path"].endswith("a/t.img") and info["layers"] == "2", info
    code, _, err = vm2.ctl("disk-move", dst, check=False)
    assert code != 0 and "interrupted" in err, err
    for n in os.listdir(dst):
        os.unlink(os.path.join(dst, n))
    r = vm2.ctl("disk-move", dst, "wait")
    assert r["phase"] == "DISK_MOVE_COMPLETED", r
    vm2.wait_passes(0)
    vm2.assert_all_verified()
    vm2.poweroff()


def read_lease(path):
    with open(path) as f:
        return dict(l.split("=", 1) for l in f.read().splitlines() if "=" in l)


def test_folder_follows_the_disk_lease_serial_and_log(tmp):
    """disk-move, then folder-move: vmx holds and renews the lease in the new
    folder (the old one released, never lapsed), the serial log and vmx's
    log there hold everything they had plus what comes after, and later
    snapshots and a reset use the new folder."""
    root, vms = tmp
    src, dst = os.path.join(root, "a"), os.path.join(root, "b")
    with open(os.path.join(src, "t.img"), "wb") as f:
        f.truncate(DISK_MB << 20)
    conf = os.path.join(src, "vm.conf")
    with open(conf, "w") as f:
        f.write("name = t\nuuid = 4c4c4544-0000-0000-0000-0000000000d2\nmemory_mb = 32\n"
                "guest.image = %s\nserial.log = serial.log\ndisk.path = t.img\n"
                "guest.disk_test = loop\nguest.disk_seed = %d\nguest.disk_mb = %d\n"
                "lease.path = t.lck\nlease.owner = host-a\nlease.owner_name = esx-a\n"
                "lease.duration_ms = 1000\n" % (GUEST, SEED, TEST_MB))
    vm = Vm.__new__(Vm)
    vm.src, vm.conf, vm.sock = src, conf, os.path.join(root, "vmx.sock")
    vm.serial = os.path.join(src, "serial.log")
    vmxlog = os.path.join(src, "vmx.log")
    vm.d = Daemon([VMX, "-c", conf, "-s", vm.sock, "-l", vmxlog])
    vms.append(vm)
    vm.d.wait_log(r"VMX-READY pid=\d+", timeout=20)
    vm.wait_passes(0)
    old_lease = read_lease(os.path.join(src, "t.lck"))
    assert old_lease["state"] == "held" and old_lease["owner"] == "host-a", old_lease

    # refusals change nothing: the disk is not there yet, bad targets
    for target, words in ((dst, "move it there first"), ("b", "absolute"),
                          (os.path.join(root, "nope"), "No such file"), (src, "folder already"),
                          (os.path.join(src, "t.img"), "not a folder")):
        code, _, err = vm.ctl("folder-move", target, check=False)
        assert code != 0 and words in err, (target, err)
    assert os.listdir(dst) == []
    assert vm.ctl("info")["config_path"] == conf

    # while the disk moves, the folder may not
    r = vm.ctl("disk-move", dst, "bandwidth=1048576")
    assert r["phase"] == "DISK_MOVE_COPYING", r
    code, _, err = vm.ctl("folder-move", dst, check=False)
    assert code != 0 and "disk move is in progress" in err, err
    r = vm.wait_phase(("DISK_MOVE_COMPLETED", "DISK_MOVE_FAILED"))
    assert r["phase"] == "DISK_MOVE_COMPLETED", r
    # a serial log in the way is refused, and left alone
    with open(os.path.join(dst, "serial.log"), "w") as f:
        f.write("not ours")
    code, _, err = vm.ctl("folder-move", dst, check=False)
    assert code != 0 and "exists already" in err, err
    assert read_lease(os.path.join(src, "t.lck"))["state"] == "held"
    assert not os.path.exists(os.path.join(dst, "t.lck"))
    with open(os.path.join(dst, "serial.log")) as f:
        assert f.read() == "not ours"
    os.unlink(os.path.join(dst, "serial.log"))

    vm.wait_passes(vm.passes()[-1] + 1)
    r = vm.ctl("folder-move", dst)
    assert r["to_dir"] == dst and r["from_dir"] == src, r
    assert r["lease_path"] == os.path.join(dst, "t.lck"), r
    assert r["serial_log"] == os.path.join(dst, "serial.log"), r
    assert r["log_path"] == os.path.join(dst, "vmx.log"), r
    assert r["config_path"] == os.path.join(dst, "vm.conf"), r
    assert vm.ctl("info")["config_path"] == os.path.join(dst, "vm.conf")

    # the old lease was released (free, generation bumped); the new one is
    # held by the same owner and renewed by vmx
    ol = read_lease(os.path.join(src, "t.lck"))
    assert ol["state"] == "free" and int(ol["generation"]) > int(old_lease["generation"]), ol
    nl = read_lease(os.path.join(dst, "t.lck"))
    assert nl["state"] == "held" and nl["owner"] == "host-a" and nl["owner_name"] == "esx-a", nl
    assert int(nl["generation"]) == int(r["lease_generation"]), (nl, r)
    hb = int(nl["heartbeat"])
    wait_for(lambda: int(read_lease(os.path.join(dst, "t.lck"))["heartbeat"]) >= hb + 3, 10,
             "vmx renewing the lease in the new folder")
    assert read_lease(os.path.join(src, "t.lck")) == ol     # nobody writes the old one

    # the serial log in the new folder: all of the old one, then new lines
    with open(os.path.join(src, "serial.log"), "rb") as f:
        old_serial = f.read()
    assert int(r["serial_bytes"]) == len(old_serial) > 0, r
    vm.serial = os.path.join(dst, "serial.log")
    n = vm.passes()[-1]
    vm.wait_passes(n + 2)
    with open(vm.serial, "rb") as f:
        new_serial = f.read()
    assert new_serial.startswith(old_serial) and len(new_serial) > len(old_serial)
    with open(os.path.join(src, "serial.log"), "rb") as f:
        assert f.read() == old_serial                      # the guest writes the new one only
    vm.assert_all_verified()
    # vmx's log too
    with open(os.path.join(dst, "vmx.log")) as f:
        text = f.read()
    assert "VMX-READY" in text and "VMX-FOLDER-MOVE from=%s to=%s" % (src, dst) in text, text[-2000:]

    # later operations use the new folder: a relative snapshot path, a reset
    s = vm.ctl("snapshot", "after.snap")
    assert s["path"] == os.path.join(dst, "after.snap"), s
    assert os.path.exists(os.path.join(dst, "after.snap"))
    assert not os.path.exists(os.path.join(src, "after.snap"))
    assert vm.ctl("reset")["state"] == "RUNNING"
    wait_for(lambda: vm.ctl("info")["resets"] == "1", 20, "the reset")
    size = os.path.getsize(vm.serial)
    wait_for(lambda: re.search(r"disk loop pass=1 seed=", vm.serial_text()[size:]), 60,
             "guest passes after the reset, in the new serial log")
    vm.assert_all_verified()
    with open(os.path.join(dst, "vmx.log")) as f:
        assert "VMX-RESET count=1" in f.read()
    assert read_lease(os.path.join(dst, "t.lck"))["state"] == "held"
    vm.poweroff()
    # at exit vmx releases the lease it holds: the new one
    assert read_lease(os.path.join(dst, "t.lck"))["state"] == "free"
    assert read_lease(os.path.join(src, "t.lck")) == ol
