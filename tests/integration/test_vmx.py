"""vmx with the real test guest: every workload, crash and hang detection,
control over the socket (power, pause, reset, console, stats, tools
requests), snapshot and restore with the counter continuing exactly, and bad
configs and snapshots refused.  Skips where /dev/kvm is not usable."""
import os
import re
import signal
import socket
import struct
import tempfile

import pytest

from kvctest import Daemon, binpath, kvm_usable, wait_for

VMX = binpath("vmkernel-kvm/vmx")
VMXCTL = binpath("vmkernel-kvm/vmxctl")
GUEST = binpath("vmkernel-kvm/guest/kvc-guest.elf")

_ok, _why = kvm_usable()
pytestmark = pytest.mark.skipif(not _ok, reason=_why or "no /dev/kvm")

SEED = 0xcbf29ce484222325
M64 = (1 << 64) - 1


class Vm:
    def __init__(self, tmp, workload="idle", vcpus=1, memory_mb=64, extra="", name="t"):
        self.tmp = tmp
        self.conf = os.path.join(tmp, "vm.conf")
        self.sock = os.path.join(tmp, "vmx.sock")
        self.serial = os.path.join(tmp, "serial.log")
        with open(self.conf, "w") as f:
            f.write("name = %s\nuuid = 4c4c4544-0000-0000-0000-000000000001\nmemory_mb = %d\n"
                    "vcpus = %d\nguest.image = %s\nguest.workload = %s\nserial.log = serial.log\n%s"
                    % (name, memory_mb, vcpus, GUEST, workload, extra))
        self.d = None

    def start(self, *extra_args, ready=True):
        self.d = Daemon([VMX, "-c", self.conf, "-s", self.sock] + list(extra_args))
        if ready:
            self.d.wait_log(r"VMX-READY pid=%d" % self.d.pid, timeout=20)
        return self

    def ctl(self, *args, check=True):
        import subprocess
        p = subprocess.run([VMXCTL, "-s", self.sock] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=30)
        if check and p.returncode != 0:
            raise AssertionError("vmxctl %s failed: %s\nvmx log:\n%s"
                                 % (args, p.stderr, self.d.log()[-2000:] if self.d else ""))
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

    def wait_serial(self, pattern, timeout=20, count=1):
        rx = re.compile(pattern)

        def check():
            if self.d and self.d.proc.poll() is not None:
                found = rx.findall(self.serial_text())
                if len(found) >= count:
                    return found
                raise RuntimeError("vmx exited (%s) before serial %r:\n%s\nserial:\n%s"
                                   % (self.d.proc.returncode, pattern, self.d.log()[-2000:],
                                      self.serial_text()[-1000:]))
            found = rx.findall(self.serial_text())
            return found if len(found) >= count else None
        return wait_for(check, timeout, "serial output %r" % pattern)

    def wait_exit(self, timeout=20):
        wait_for(lambda: self.d.proc.poll() is not None, timeout, "vmx to exit")
        return self.d.proc.returncode

    def stop(self):
        if self.d:
            self.d.stop()


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory(prefix="vmx-test-") as d:
        yield d


@pytest.fixture
def vms():
    started = []
    yield started
    for v in started:
        v.stop()


def test_config_check_and_bad_configs(tmp):
    import subprocess
    v = Vm(tmp, workload="counter")
    p = subprocess.run([VMX, "-c", v.conf, "-n"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "configuration OK" in p.stdout
    bad = [
        ("vcpus = 99\n", r"vcpus"),
        ("guest.workload = dance\n", r"guest\.workload"),
        ("bogus.key = 1\n", r"bogus\.key"),
        ("memory_mb = 63\n", r"even"),
    ]
    for extra, want in bad:
        with open(os.path.join(tmp, "bad.conf"), "w") as f:
            f.write("name = b\nguest.image = %s\n%s" % (GUEST, extra))
        for args in (["-n"], ["-s", os.path.join(tmp, "b.sock")]):
            p = subprocess.run([VMX, "-c", os.path.join(tmp, "bad.conf")] + args,
                               capture_output=True, text=True, timeout=20)
            assert p.returncode == 1, (extra, p.stdout, p.stderr)
            assert re.search(want, p.stderr), (extra, p.stderr)
            assert "VMX-READY" not in p.stdout
    with open(os.path.join(tmp, "bad.conf"), "w") as f:
        f.write("name = b\nguest.image = /nonexistent/guest.elf\n")
    p = subprocess.run([VMX, "-c", os.path.join(tmp, "bad.conf"), "-n"], capture_output=True, text=True)
    assert p.returncode == 1 and "nonexistent" in p.stderr
    # not an ELF: refused at start, with the reason
    junk = os.path.join(tmp, "junk.elf")
    with open(junk, "wb") as f:
        f.write(b"\x7fELF" + b"\x00" * 100)
    with open(os.path.join(tmp, "bad.conf"), "w") as f:
        f.write("name = b\nguest.image = %s\n" % junk)
    p = subprocess.run([VMX, "-c", os.path.join(tmp, "bad.conf"), "-s", os.path.join(tmp, "j.sock")],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1 and "not a little-endian x86-64 ELF" in p.stderr


def test_idle_boot_tools_and_poweroff(tmp, vms):
    v = Vm(tmp, "idle")
    vms.append(v.start())
    v.wait_serial(r"KVC-GUEST: ready workload=idle cpus=1 mem_mb=64 tools=1")
    wait_for(lambda: int(v.ctl("stats")["tools.heartbeats"]) >= 2, 10, "two heartbeats")
    st = v.ctl("stats")
    assert st["state"] == "RUNNING"
    assert st["tools.os_name"] == "kvc-testguest 1.0"
    assert st["tools.ip"] == "0.0.0.0"
    assert st["tools.workload"] == "idle"
    assert st["tools.heartbeat_lost"] == "0"
    assert 0 <= int(st["tools.heartbeat_age_ms"]) < 3000
    assert int(st["memory_bytes"]) == 64 << 20
    assert int(st["vcpu0.exits.mmio"]) > 0
    info = v.ctl("info")
    assert info["name"] == "t" and info["vcpus"] == "1" and info["workload"] == "idle"
    assert int(info["pid"]) == v.d.pid
    con = v.ctl("console-read")
    assert "KVC-GUEST: ready workload=idle" in con["data"]
    assert v.ctl("ping")["seq"] == "7"
    assert v.ctl("poweroff")["state"] == "POWERED_OFF"
    assert v.wait_exit() == 0
    assert "VMX-EXIT state=poweredOff" in v.d.log()


def test_cpu_workload_on_two_vcpus(tmp, vms):
    v = Vm(tmp, "cpu", vcpus=2, extra="guest.duty_percent = 100\n")
    vms.append(v.start())
    v.wait_serial(r"KVC-GUEST: cpu 1 online")
    v.wait_serial(r"ready workload=cpu cpus=2")
    st0 = v.ctl("stats")
    wait_for(lambda: all(int(v.ctl("stats")["vcpu%d.run_time_ns" % i]) > int(st0["vcpu%d.run_time_ns" % i])
                         + 20_000_000 for i in (0, 1)), 20, "both vCPUs to burn CPU")
    v.ctl("poweroff")
    assert v.wait_exit() == 0


def test_dirty_workload_touches_its_working_set(tmp, vms):
    v = Vm(tmp, "dirty", memory_mb=32, extra="guest.dirty_mb_per_s = 64\nguest.working_set_mb = 8\n")
    vms.append(v.start())
    v.wait_serial(r"ready workload=dirty")
    # Snapshots count non-zero pages: the 2048 pages of the working set
    # become non-zero as the guest dirties them.
    def dirtied():
        r = v.ctl("snapshot", "probe.snap")
        return int(r["memory_pages"]) >= 2048 and r
    r = wait_for(dirtied, 20, "the 8 MiB working set to be dirtied", interval=0.2)
    assert r["state"] == "RUNNING"
    v.ctl("poweroff")
    assert v.wait_exit() == 0


def test_crash_is_detected_with_rip_and_bytes(tmp, vms):
    v = Vm(tmp, "crash")
    vms.append(v.start(ready=False))
    assert v.wait_exit() == 2
    log = v.d.log()
    assert re.search(r"VMX-CRASH .* rip=0x[0-9a-f]+ bytes=\[[0-9a-f ]+\]", log), log
    assert "VMX-EXIT state=crashed" in log
    assert "KVC-GUEST: crashing" in v.serial_text()


def test_hang_is_detected_by_heartbeat(tmp, vms):
    v = Vm(tmp, "hang", extra="tools.heartbeat_timeout_ms = 300\n")
    vms.append(v.start())
    v.wait_serial(r"KVC-GUEST: hanging")
    v.d.wait_log(r"VMX-EVENT heartbeat-lost age_ms=\d+", timeout=10)
    st = v.ctl("stats")
    assert st["tools.heartbeat_lost"] == "1"
    assert int(st["tools.heartbeat_age_ms"]) > 300
    assert v.d.alive()
    v.ctl("poweroff")
    assert v.wait_exit() == 0


def test_guest_reboot_then_shutdown_through_tools(tmp, vms):
    v = Vm(tmp, "idle")
    vms.append(v.start())
    v.wait_serial(r"ready workload=idle")
    wait_for(lambda: int(v.ctl("stats")["tools.heartbeats"]) >= 1, 10, "a heartbeat")
    assert v.ctl("reboot")["detail"] == "reboot requested"
    v.wait_serial(r"KVC-GUEST: reboot requested")
    v.wait_serial(r"ready workload=idle", count=2)
    wait_for(lambda: v.ctl("info")["resets"] == "1", 10, "the reset to be counted")
    wait_for(lambda: int(v.ctl("stats")["tools.heartbeat_age_ms"]) >= 0, 10, "a heartbeat after reboot")
    v.ctl("shutdown")
    assert v.wait_exit() == 0
    assert "KVC-GUEST: shutdown requested" in v.serial_text()
    assert "detail=guest power off" in v.d.log()


def test_pause_resume_reset_and_console_input(tmp, vms):
    v = Vm(tmp, "counter")
    vms.append(v.start())
    v.wait_serial(r"KVC-GUEST: counter=100 ")
    assert v.ctl("pause")["state"] == "PAUSED"
    c1 = v.ctl("stats")
    assert c1["state"] == "PAUSED"
    assert v.ctl("stats")["tools.counter"] == c1["tools.counter"]
    assert v.ctl("resume")["state"] == "RUNNING"
    wait_for(lambda: int(v.ctl("stats")["tools.counter"]) > int(c1["tools.counter"]), 10, "counter to move")
    assert v.ctl("console-write", "hello vmx 42\n")["accepted"] == "13"
    v.wait_serial(r"KVC-GUEST: console: hello vmx 42")
    v.ctl("reset")
    v.wait_serial(r"ready workload=counter", count=2)
    assert v.ctl("info")["resets"] == "1"
    v.ctl("poweroff")
    assert v.wait_exit() == 0


def counter_lines(text):
    return [(int(n), int(s, 16)) for n, s in re.findall(r"KVC-GUEST: counter=(\d+) sum=([0-9a-f]+)", text)]


def test_snapshot_restore_counter_continues_exactly(tmp, vms):
    v = Vm(tmp, "counter")
    vms.append(v.start())
    v.wait_serial(r"KVC-GUEST: counter=200 ")
    r = v.ctl("suspend", "suspend.snap")
    assert r["state"] == "POWERED_OFF"
    assert v.wait_exit() == 0
    snap = os.path.join(tmp, "suspend.snap")
    assert os.path.getsize(snap) == int(r["bytes"])
    before = counter_lines(v.serial_text())
    last = before[-1][0]
    assert [n for n, _ in before] == list(range(100, last + 1, 100))

    v2 = Vm(tmp, "counter")
    vms.append(v2.start("--restore", snap))
    assert v2.ctl("info")["restored"] == "1"
    wait_for(lambda: counter_lines(v2.serial_text())[-1][0] >= last + 200, 20, "the counter to go on")
    st = v2.ctl("stats")
    v2.ctl("poweroff")
    assert v2.wait_exit() == 0
    text = v2.serial_text()
    lines = counter_lines(text)
    # One boot only (the restored guest did not start over), every count in
    # order without a gap or a repeat, each checksum on the chain.
    assert text.count("ready workload=counter") == 1
    assert [n for n, _ in lines] == list(range(100, lines[-1][0] + 1, 100))
    chain = {}
    s = SEED
    for i in range(1, lines[-1][0] + 1):
        s ^= i
        s = (s * 0x100000001b3) & M64
        s ^= s >> 29
        chain[i] = s
    for n, sm in lines:
        assert chain[n] == sm, (n, hex(sm))
    # The tools state the device kept across the snapshot is consistent too.
    n = int(st["tools.counter"])
    assert n > last and chain[n] == int(st["tools.checksum"])


def test_bad_snapshots_are_refused(tmp, vms):
    import subprocess
    v = Vm(tmp, "idle")
    vms.append(v.start())
    v.wait_serial(r"ready workload=idle")
    v.ctl("snapshot", "a.snap")
    v.ctl("poweroff")
    v.wait_exit()
    snap = os.path.join(tmp, "a.snap")
    # a config with more RAM than the snapshot
    big = Vm(tmp, "idle", memory_mb=128)
    p = subprocess.run([VMX, "-c", big.conf, "-s", big.sock, "--restore", snap],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1 and "128 MiB" in p.stderr, p.stderr
    # a truncated snapshot and a file that is not one
    data = open(snap, "rb").read()
    for name, blob in (("cut.snap", data[: len(data) // 2]), ("junk.snap", b"nonsense" * 100)):
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(blob)
        v3 = Vm(tmp, "idle")
        p = subprocess.run([VMX, "-c", v3.conf, "-s", v3.sock, "--restore", path],
                           capture_output=True, text=True, timeout=20)
        assert p.returncode == 1, (name, p.stderr)
        assert "restore" in p.stderr


def frame(method, rid, payload=b"", flags=0):
    return struct.pack(">IBBHIQI", 0x4B564352, 1, flags, 0, method, rid, len(payload)) + payload


def read_frame(s, skip_hello=True):
    """The next frame; vmx's one-way HELLO (sent once on accept) is skipped."""
    while True:
        hdr = b""
        while len(hdr) < 24:
            chunk = s.recv(24 - len(hdr))
            if not chunk:
                return None
            hdr += chunk
        magic, ver, flags, _, method, rid, ln = struct.unpack(">IBBHIQI", hdr)
        body = b""
        while len(body) < ln:
            body += s.recv(ln - len(body))
        if skip_hello and method == 0x0002 and flags & 0x04 and ln == 0:
            continue
        return flags, method, rid, body


def test_control_socket_rejects_bad_frames(tmp, vms):
    v = Vm(tmp, "idle")
    vms.append(v.start())
    # unknown method: an error reply (RESPONSE|ERROR), connection stays
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(v.sock)
    s.sendall(frame(0x4fff, 9))
    flags, method, rid, body = read_frame(s)
    assert flags == 3 and method == 0x4fff and rid == 9
    assert b"unknown method" in body
    # undecodable payload for a known method
    s.sendall(frame(0x4008, 10, b"\xff\xff\xff"))
    flags, _, rid, body = read_frame(s)
    assert flags == 3 and rid == 10
    # an oversized frame: refused before reading it
    s.sendall(frame(0x4001, 11)[:20] + struct.pack(">I", 1 << 30))
    flags, _, rid, body = read_frame(s)
    assert flags == 3 and rid == 11
    s.close()
    # garbage: the connection is dropped, vmx carries on
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(v.sock)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n" + b"x" * 100)
    assert read_frame(s) is None
    s.close()
    assert v.ctl("info")["state"] == "RUNNING"
    rc, _, err = v.ctl("balloon", "100000", check=False)
    assert rc == 1 and "exceeds guest RAM" in err
    rc, _, err = v.ctl("snapshot", "/nonexistent-dir/x.snap", check=False)
    assert rc == 1 and "snapshot" in err
    assert v.ctl("info")["state"] == "RUNNING"
    v.d.kill(signal.SIGTERM, group=False)
    assert v.wait_exit() == 0
