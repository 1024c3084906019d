"""Live migration between two vmx processes (docs/vmx.md "Live migration").

An idle guest and a counter guest migrate (unix and TCP), the counter chain
going on exactly on the destination; a dirtying guest migrates with both
sides hashing all of RAM at the switch-over (and, on a slow link,
auto-converge throttles it); aborts in every phase (destination killed in
pre-copy and in stop-and-copy, socket cut, cancel, stall timeout, refused
handshake) leave the source running with its workload going on, and the
same source then migrates; hostile streams make an incoming vmx exit 1
without running anything.  Skips where /dev/kvm is not usable."""
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading

import pytest

from kvctest import Daemon, binpath, kvm_usable, wait_for

VMX = binpath("vmkernel-kvm/vmx")
VMXCTL = binpath("vmkernel-kvm/vmxctl")
GUEST = binpath("vmkernel-kvm/guest/kvc-guest.elf")

_ok, _why = kvm_usable()
pytestmark = pytest.mark.skipif(not _ok, reason=_why or "no /dev/kvm")

SEED = 0xcbf29ce484222325
M64 = (1 << 64) - 1
EXIT_MIGRATED = 3

# Stream records (vmkernel-kvm/migrate.h)
HELLO, PAGES, ZERO, SWITCH, ST_VCPU, ST_END = 0x100, 0x101, 0x102, 0x104, 3, 0xffff
MAGIC = 0x315247494d43564b


class Vm:
    """One vmx in its own folder (config, control socket, serial log)."""

    def __init__(self, root, name, workload="idle", memory_mb=32, vcpus=1, extra=""):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.conf = os.path.join(self.dir, "vm.conf")
        self.sock = os.path.join(self.dir, "vmx.sock")
        self.serial = os.path.join(self.dir, "serial.log")
        with open(self.conf, "w") as f:
            f.write("name = %s\nmemory_mb = %d\nvcpus = %d\nguest.image = %s\nguest.workload = %s\n"
                    "serial.log = serial.log\n%s" % (name, memory_mb, vcpus, GUEST, workload, extra))
        self.d = None

    def start(self, *args, env=None):
        self.d = Daemon([VMX, "-c", self.conf, "-s", self.sock] + list(args), env=env)
        self.d.wait_log(r"VMX-READY pid=%d" % self.d.pid, timeout=20)
        return self

    def incoming(self, addr, *args, env=None):
        """Start as a migration destination; returns the address it listens on."""
        self.d = Daemon([VMX, "-c", self.conf, "-s", self.sock, "--incoming", addr] + list(args), env=env)
        m = self.d.wait_log(r"VMX-INCOMING pid=%d listen=(\S+)" % self.d.pid, timeout=20)
        return m.group(1)

    def ctl(self, *args, check=True):
        p = subprocess.run([VMXCTL, "-s", self.sock] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=60)
        out = dict(line.partition("=")[::2] for line in p.stdout.splitlines())
        if check and p.returncode != 0:
            raise AssertionError("vmxctl %s failed: %s\nlog:\n%s" % (args, p.stderr, self.log()[-3000:]))
        return out if check else (p.returncode, out, p.stderr)

    def log(self):
        return self.d.log() if self.d else ""

    def serial_text(self):
        try:
            with open(self.serial, "rb") as f:
                return f.read().decode("ascii", "replace")
        except FileNotFoundError:
            return ""

    def wait_exit(self, timeout=20):
        wait_for(lambda: self.d.proc.poll() is not None, timeout, "vmx %s to exit" % self.dir)
        return self.d.proc.returncode

    def counter(self):
        return int(self.ctl("stats")["tools.counter"])

    def stop(self):
        if self.d:
            self.d.stop()


@pytest.fixture
def root():
    with tempfile.TemporaryDirectory(prefix="vmx-mig-") as d:
        yield d


@pytest.fixture
def vms():
    started = []
    yield started
    for v in started:
        v.stop()


def counter_lines(text):
    return [(int(n), int(s, 16)) for n, s in re.findall(r"KVC-GUEST: counter=(\d+) sum=([0-9a-f]+)", text)]


def chain(upto):
    c, s = {}, SEED
    for i in range(1, upto + 1):
        s ^= i
        s = (s * 0x100000001b3) & M64
        s ^= s >> 29
        c[i] = s
    return c


def assert_counter_history(lines):
    """Every hundredth count once, in order, each checksum on the chain."""
    assert lines, "no counter lines"
    assert [n for n, _ in lines] == list(range(100, lines[-1][0] + 1, 100)), [n for n, _ in lines]
    c = chain(lines[-1][0])
    for n, s in lines:
        assert c[n] == s, (n, hex(s))


def status(v):
    return v.ctl("migrate-status")


def test_idle_guest_migrates_over_unix(root, vms):
    src = Vm(root, "src", "idle", vcpus=2)
    dst = Vm(root, "dst", "idle", vcpus=2)
    vms += [src, dst]
    src.start()
    wait_for(lambda: int(src.ctl("stats")["tools.heartbeats"]) >= 2, 10, "heartbeats on the source")
    assert status(src)["phase"] == "MIGRATE_NONE"
    addr = dst.incoming("unix:" + os.path.join(root, "mig.sock"))
    assert dst.ctl("info")["state"] == "INCOMING"
    assert status(dst)["phase"] == "MIGRATE_INCOMING"
    rc, _, err = dst.ctl("pause", check=False)
    assert rc == 1 and "incoming" in err
    r = src.ctl("migrate", addr, "wait")
    assert r["phase"] == "MIGRATE_COMPLETED", r
    assert r["source"] == "1" and r["percent"] == "100" and r["remaining_bytes"] == "0"
    # An idle guest's RAM is mostly zero: markers, not data.
    assert int(r["zero_pages"]) > int(r["data_pages"]) > 0
    assert int(r["zero_pages"]) + int(r["data_pages"]) >= (32 << 20) // 4096
    assert src.wait_exit() == EXIT_MIGRATED
    assert re.search(r"VMX-EXIT state=migrated detail=migrated to unix:", src.log())
    dst.d.wait_log(r"VMX-READY pid=%d" % dst.d.pid)
    assert re.search(r"VMX-MIGRATE running mono_ns=\d+ realtime_ns=\d+ downtime_ms=\d+", dst.log())
    assert dst.ctl("info")["state"] == "RUNNING"
    d = status(dst)
    assert d["phase"] == "MIGRATE_COMPLETED" and d["source"] == "0"
    hb = int(dst.ctl("stats")["tools.heartbeats"])
    wait_for(lambda: int(dst.ctl("stats")["tools.heartbeats"]) >= hb + 2, 10, "heartbeats on the destination")
    # The guest did not boot again there, and both vCPU threads run it.
    assert "ready workload" not in dst.serial_text()
    st = dst.ctl("stats")
    assert int(st["vcpu0.run_time_ns"]) > 0 and int(st["vcpu1.run_time_ns"]) > 0
    dst.ctl("poweroff")
    assert dst.wait_exit() == 0


def test_counter_continues_exactly_over_tcp(root, vms):
    src = Vm(root, "src", "counter")
    dst = Vm(root, "dst", "counter")
    vms += [src, dst]
    src.start()
    wait_for(lambda: counter_lines(src.serial_text()) and counter_lines(src.serial_text())[-1][0] >= 200,
             20, "the counter on the source")
    addr = dst.incoming("tcp:127.0.0.1:0")
    assert re.match(r"tcp:127\.0\.0\.1:\d+$", addr) and not addr.endswith(":0")
    r = src.ctl("migrate", addr, "downtime_ms=50", "wait")
    assert r["phase"] == "MIGRATE_COMPLETED" and r["downtime_target_ms"] == "50", r
    assert src.wait_exit() == EXIT_MIGRATED
    last = counter_lines(src.serial_text())[-1][0]
    wait_for(lambda: counter_lines(dst.serial_text()) and counter_lines(dst.serial_text())[-1][0] >= last + 300,
             20, "the counter to go on on the destination")
    st = dst.ctl("stats")
    # The source's lines and then the destination's: one history.
    assert_counter_history(counter_lines(src.serial_text()) + counter_lines(dst.serial_text()))
    n = int(st["tools.counter"])
    assert n > last and chain(n)[n] == int(st["tools.checksum"])
    dst.ctl("poweroff")
    assert dst.wait_exit() == 0


def test_paused_vm_arrives_paused(root, vms):
    src = Vm(root, "src", "counter")
    dst = Vm(root, "dst", "counter")
    vms += [src, dst]
    src.start()
    wait_for(lambda: src.counter() > 0, 20, "the counter")
    src.ctl("pause")
    n = src.counter()
    r = src.ctl("migrate", dst.incoming("unix:" + os.path.join(root, "m.sock")), "wait")
    assert r["phase"] == "MIGRATE_COMPLETED"
    assert src.wait_exit() == EXIT_MIGRATED
    dst.d.wait_log(r"VMX-MIGRATE running .*\(paused, as on the source\)")
    st = dst.ctl("stats")
    assert st["state"] == "PAUSED" and int(st["tools.counter"]) == n
    dst.ctl("resume")
    wait_for(lambda: dst.counter() > n, 10, "the counter to go on once resumed")
    dst.ctl("poweroff")
    assert dst.wait_exit() == 0


def test_dirtying_guest_migrates_with_identical_memory(root, vms):
    extra = "guest.dirty_mb_per_s = 64\nguest.working_set_mb = 32\n"
    src = Vm(root, "src", "dirty", memory_mb=64, extra=extra)
    dst = Vm(root, "dst", "dirty", memory_mb=64, extra=extra)
    vms += [src, dst]
    src.start()
    # Let the guest make (half) its working set non-zero first.
    nonzero = wait_for(lambda: (lambda n: n >= 4096 and n)(int(src.ctl("snapshot", "probe.snap")["memory_pages"])),
                       20, "the working set to fill", interval=0.2)
    addr = dst.incoming("unix:" + os.path.join(root, "mig.sock"))
    # verify: both sides hash all RAM at the switch-over (source paused,
    # destination before it runs); a mismatch would abort the migration.
    r = src.ctl("migrate", addr, "verify", "wait")
    assert r["phase"] == "MIGRATE_COMPLETED", r
    # pages non-zero at the probe stay so: each went as data at least once
    assert int(r["data_pages"]) >= nonzero
    assert src.wait_exit() == EXIT_MIGRATED
    h_src = re.search(r"VMX-MIGRATE verify sha256=([0-9a-f]{64})$", src.log(), re.M).group(1)
    m = re.search(r"VMX-MIGRATE verify sha256=([0-9a-f]{64}) source=([0-9a-f]{64}) (\w+)", dst.log())
    assert m.group(1) == h_src and m.group(2) == h_src and m.group(3) == "ok", m.group(0)
    dst.d.wait_log(r"VMX-READY pid=%d" % dst.d.pid)
    hb = int(dst.ctl("stats")["tools.heartbeats"])
    wait_for(lambda: int(dst.ctl("stats")["tools.heartbeats"]) > hb, 10, "the guest to run on")
    dst.ctl("poweroff")
    assert dst.wait_exit() == 0


def test_slow_link_auto_converges(root, vms):
    # The guest dirties 16 MiB/s over 4 MiB; the link carries 4 MiB/s: only
    # throttling the vCPUs lets the last copy fit the downtime target.
    extra = "guest.dirty_mb_per_s = 16\nguest.working_set_mb = 4\n"
    src = Vm(root, "src", "dirty", memory_mb=32, extra=extra)
    dst = Vm(root, "dst", "dirty", memory_mb=32, extra=extra)
    vms += [src, dst]
    src.start()
    wait_for(lambda: int(src.ctl("snapshot", "probe.snap")["memory_pages"]) >= 1024, 20,
             "the working set to fill", interval=0.2)
    addr = dst.incoming("unix:" + os.path.join(root, "mig.sock"))
    r = src.ctl("migrate", addr, "bandwidth=%d" % (4 << 20), "verify", "wait")
    assert r["phase"] == "MIGRATE_COMPLETED", (r, src.log()[-3000:])
    assert src.wait_exit() == EXIT_MIGRATED
    thr = [int(t) for t in re.findall(r"VMX-MIGRATE auto-converge throttle=(\d+)", src.log())]
    assert thr and thr == sorted(thr) and thr[0] >= 20, src.log()[-3000:]
    assert re.search(r"VMX-MIGRATE verify sha256=\S+ source=\S+ ok", dst.log())
    dst.d.wait_log(r"VMX-READY pid=%d" % dst.d.pid)
    dst.ctl("poweroff")
    assert dst.wait_exit() == 0


def test_power_off_during_a_migration(root, vms):
    src = Vm(root, "src", "counter")
    dst = Vm(root, "dst", "counter")
    vms += [src, dst]
    src.start()
    a = dst.incoming("unix:" + os.path.join(root, "m.sock"))
    src.ctl("migrate", a, "bandwidth=20000")
    wait_for(lambda: status(src)["phase"] == "MIGRATE_PRECOPY" and int(status(src)["transferred_bytes"]) > 0,
             10, "pre-copy to be under way")
    # state changes other than power-off wait for the migration
    for cmd in ("pause", "reset", "snapshot"):
        rc, _, err = src.ctl(*([cmd, "x.snap"] if cmd == "snapshot" else [cmd]), check=False)
        assert rc == 1 and "migration is in progress" in err, (cmd, err)
    src.ctl("poweroff")
    assert src.wait_exit() == 0
    assert re.search(r"VMX-MIGRATE aborted phase=precopy reason=the VM stopped", src.log())
    assert "VMX-EXIT state=poweredOff" in src.log()
    assert dst.wait_exit() == 1
    assert "the source VM stopped" in dst.log() and "VMX-READY" not in dst.log()


class CutProxy:
    """TCP proxy that forwards source -> destination and back, and cuts both
    connections once LIMIT bytes went forward."""

    def __init__(self, target_port, limit):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(1)
        self.port = self.ls.getsockname()[1]
        self.target, self.limit, self.forwarded = target_port, limit, 0
        self.cut = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        a, _ = self.ls.accept()
        b = socket.create_connection(("127.0.0.1", self.target))

        def back():
            try:
                while True:
                    d = b.recv(65536)
                    if not d:
                        break
                    a.sendall(d)
            except OSError:
                pass
        threading.Thread(target=back, daemon=True).start()
        try:
            while self.forwarded < self.limit:
                d = a.recv(min(65536, self.limit - self.forwarded))
                if not d:
                    break
                b.sendall(d)
                self.forwarded += len(d)
        except OSError:
            pass
        self.cut.set()
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.ls.close()


def test_aborts_leave_the_source_running(root, vms):
    src = Vm(root, "src", "counter")
    vms.append(src)
    src.start()
    wait_for(lambda: counter_lines(src.serial_text()), 20, "the counter")
    slow = "bandwidth=32768"      # the counter guest's ~100 KiB of data: ~3 s of pre-copy
    n = [0]

    def dest(env=None, addr="unix", memory_mb=32):
        n[0] += 1
        d = Vm(root, "dst%d" % n[0], "counter", memory_mb=memory_mb)
        vms.append(d)
        a = d.incoming("unix:" + os.path.join(root, "m%d.sock" % n[0]) if addr == "unix" else addr, env=env)
        return d, a

    def wait_phase(*phases):
        return wait_for(lambda: status(src)["phase"] in phases and status(src), 20,
                        "source phase in %s" % (phases,))

    def source_is_unchanged(expect_phase, reason_rx, aborted_in):
        st = wait_phase(expect_phase)
        assert re.search(reason_rx, st["error"]), st
        assert int(st["throttle_percent"]) == 0
        logs = re.findall(r"VMX-MIGRATE aborted phase=(\w+) reason=", src.log())
        assert logs and logs[-1] == aborted_in, (logs, src.log()[-2000:])
        assert src.d.alive()
        assert src.ctl("info")["state"] == "RUNNING"
        c = src.counter()
        wait_for(lambda: src.counter() >= c + 20, 10, "the counter to go on on the source")

    # 1. destination killed during pre-copy
    d, a = dest()
    src.ctl("migrate", a, slow)
    wait_for(lambda: status(src)["phase"] == "MIGRATE_PRECOPY" and int(status(src)["transferred_bytes"]) > 0,
             10, "pre-copy to start")
    d.d.kill(signal.SIGKILL)
    source_is_unchanged("MIGRATE_FAILED", r"connection|Broken pipe|reset", "precopy")

    # 2. destination killed during stop-and-copy: it dies as it would confirm
    d, a = dest(env={"VMX_MIGRATE_FAILPOINT": "dest-exit-before-ready"})
    src.ctl("migrate", a)
    assert d.wait_exit() == 9
    source_is_unchanged("MIGRATE_FAILED", r"connection|reset|Broken pipe", "stopcopy")
    assert re.search(r"VMX-MIGRATE vcpus-stopped", src.log())

    # 3. the socket cut mid-stream (a proxy that drops both ends)
    d, a = dest(addr="tcp:127.0.0.1:0")
    proxy = CutProxy(int(a.rsplit(":", 1)[1]), limit=40000)
    src.ctl("migrate", "tcp:127.0.0.1:%d" % proxy.port, slow)
    assert proxy.cut.wait(20)
    source_is_unchanged("MIGRATE_FAILED", r"connection|reset|Broken pipe", "precopy")
    assert d.wait_exit() == 1
    assert "VMX-READY" not in d.log() and "VMX-EXIT state=failed" in d.log()

    # 4. cancelled by request
    d, a = dest()
    src.ctl("migrate", a, slow)
    wait_phase("MIGRATE_PRECOPY")
    assert src.ctl("migrate-cancel")["phase"] in ("MIGRATE_PRECOPY", "MIGRATE_CANCELLED")
    source_is_unchanged("MIGRATE_CANCELLED", r"cancelled", "precopy")
    assert d.wait_exit() == 1
    assert re.search(r"VMX-MIGRATE failed reason=the source aborted the migration \(cancelled\)", d.log())
    rc, _, err = src.ctl("migrate-cancel", check=False)
    assert rc == 1 and "no outgoing migration" in err

    # 5. the destination stalls before confirming: the source times out
    d, a = dest(env={"VMX_MIGRATE_FAILPOINT": "dest-stall-before-ready"})
    src.ctl("migrate", a, "timeout_ms=1000")
    source_is_unchanged("MIGRATE_FAILED", r"no progress from the destination for 1000 ms", "stopcopy")
    d.stop()

    # 6. the destination refuses the handshake (different RAM size)
    d, a = dest(memory_mb=64)
    r = src.ctl("migrate", a, "wait", check=False)
    assert r[0] == 1 and r[1]["phase"] == "MIGRATE_FAILED", r
    source_is_unchanged("MIGRATE_FAILED", r"destination refused: source VM has 32 MiB", "setup")
    assert d.wait_exit() == 1

    # bad requests change nothing
    rc, _, err = src.ctl("migrate", "ftp:nowhere", check=False)
    assert rc == 1 and "bad address" in err
    rc, _, err = src.ctl("migrate", "unix:" + os.path.join(root, "nobody.sock"), "wait", check=False)
    assert rc == 1 and "connect" in status(src)["error"]

    # After all that the same source still migrates, its counter intact.
    d, a = dest()
    busy = src.ctl("migrate", a, "wait")
    assert busy["phase"] == "MIGRATE_COMPLETED"
    assert src.wait_exit() == EXIT_MIGRATED
    last = counter_lines(src.serial_text())[-1][0]
    wait_for(lambda: counter_lines(d.serial_text()) and counter_lines(d.serial_text())[-1][0] >= last + 200,
             20, "the counter on the final destination")
    assert_counter_history(counter_lines(src.serial_text()) + counter_lines(d.serial_text()))
    d.ctl("poweroff")
    assert d.wait_exit() == 0


def lease_fields(path):
    with open(path) as f:
        return dict(l.partition("=")[::2] for l in f.read().splitlines() if "=" in l)


def test_lease_moves_with_the_vm(root, vms):
    lease = os.path.join(root, "vm1.lck")
    conf = "lease.path = %s\nlease.owner = %s\nlease.owner_name = %s\nlease.duration_ms = 2000\n"
    src = Vm(root, "src", "counter", extra=conf % (lease, "host-a", "esx-a"))
    vms.append(src)
    src.start()
    src.d.wait_log(r"VMX-LEASE acquired path=%s" % re.escape(lease))
    assert lease_fields(lease)["owner"] == "host-a"
    # a destination that would run the VM without its lease is refused
    d0 = Vm(root, "dst0", "counter")
    vms.append(d0)
    a = d0.incoming("unix:" + os.path.join(root, "m0.sock"))
    rc, r, _ = src.ctl("migrate", a, "wait", check=False)
    assert rc == 1 and "no lease" in r["error"], r
    assert d0.wait_exit() == 1
    assert src.ctl("info")["state"] == "RUNNING" and lease_fields(lease)["owner"] == "host-a"
    # with one: the lease goes over at the switch-over, the destination renews it
    d = Vm(root, "dst", "counter", extra=conf % (lease, "host-b", "esx-b"))
    vms.append(d)
    a = d.incoming("unix:" + os.path.join(root, "m1.sock"))
    assert "VMX-LEASE acquired" not in d.log()
    r = src.ctl("migrate", a, "wait")
    assert r["phase"] == "MIGRATE_COMPLETED", r
    assert src.wait_exit() == EXIT_MIGRATED
    m = re.search(r"VMX-LEASE transferred path=\S+ to=host-b generation=(\d+)", src.log())
    assert m, src.log()[-2000:]
    assert re.search(r"VMX-LEASE adopted path=\S+ generation=%s" % m.group(1), d.log())
    f = lease_fields(lease)
    assert f["owner"] == "host-b" and f["generation"] == m.group(1), f
    hb = f["heartbeat"]
    wait_for(lambda: lease_fields(lease)["heartbeat"] != hb, 10, "the destination to renew the lease")
    assert lease_fields(lease)["owner"] == "host-b"
    d.ctl("poweroff")
    assert d.wait_exit() == 0
    assert lease_fields(lease)["state"] == "free"


def make_identity(d):
    """A host identity as lib/tls.h keeps it (rpc.crt, rpc.key); returns its thumbprint."""
    os.makedirs(d)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", os.path.join(d, "rpc.key"), "-out", os.path.join(d, "rpc.crt"),
                    "-days", "2", "-subj", "/CN=" + os.path.basename(d)], check=True, capture_output=True)
    with open(os.path.join(d, "rpc.crt")) as f:
        h = hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, 64, 2))


def test_tls_with_pinned_thumbprints(root, vms):
    if not shutil.which("openssl"):
        pytest.skip("openssl (to make test certificates) is not installed")
    ida, idb, idc = (os.path.join(root, n) for n in ("id-a", "id-b", "id-c"))
    tpa, tpb, tpc = make_identity(ida), make_identity(idb), make_identity(idc)
    src = Vm(root, "src", "counter")
    vms.append(src)
    src.start()
    wait_for(lambda: counter_lines(src.serial_text()), 20, "the counter")
    n = [0]

    def dest(peer):
        n[0] += 1
        d = Vm(root, "dst%d" % n[0], "counter")
        vms.append(d)
        return d, d.incoming("tcp:127.0.0.1:0", "--incoming-tls", idb, "--incoming-peer", peer)

    def refused(r, d, src_rx, dst_rx):
        assert r[0] == 1 and r[1]["phase"] == "MIGRATE_FAILED", r
        assert re.search(src_rx, r[1]["error"]), r[1]["error"]
        assert d.wait_exit() == 1
        assert re.search(r"VMX-MIGRATE failed reason=.*" + dst_rx, d.log()), d.log()[-2000:]
        assert "VMX-READY" not in d.log()
        assert src.ctl("info")["state"] == "RUNNING"

    # the destination pins another certificate than the source's
    d, a = dest(tpc)
    r = src.ctl("migrate", a, "tls_dir=" + ida, "peer=" + tpb, "wait", check=False)
    refused(r, d, r"not the pinned|connection|reset", r"peer certificate %s is not the pinned %s" % (tpa, tpc))
    # the source pins another certificate than the destination's
    d, a = dest(tpa)
    r = src.ctl("migrate", a, "tls_dir=" + ida, "peer=" + tpc, "wait", check=False)
    refused(r, d, r"peer certificate %s is not the pinned %s" % (tpb, tpc), r"source aborted")
    # a plain-text source at a TLS destination
    d, a = dest(tpa)
    r = src.ctl("migrate", a, "wait", check=False)
    refused(r, d, r"connection|reset|refused|protocol", r"TLS handshake")
    # a TLS source needs tcp and a well-formed thumbprint
    rc, _, err = src.ctl("migrate", "tcp:127.0.0.1:1", "tls_dir=" + ida, "peer=nonsense", check=False)
    assert rc == 1 and "thumbprint" in err
    # both pinned right: it migrates, the counter goes on
    d, a = dest(tpa)
    r = src.ctl("migrate", a, "tls_dir=" + ida, "peer=" + tpb, "wait")
    assert r["phase"] == "MIGRATE_COMPLETED", r
    assert src.wait_exit() == EXIT_MIGRATED
    assert "VMX-MIGRATE tls peer=%s verified" % tpb in src.log()
    assert "VMX-MIGRATE tls peer=%s verified" % tpa in d.log()
    last = counter_lines(src.serial_text())[-1][0]
    wait_for(lambda: counter_lines(d.serial_text()) and counter_lines(d.serial_text())[-1][0] >= last + 200,
             20, "the counter on the destination")
    assert_counter_history(counter_lines(src.serial_text()) + counter_lines(d.serial_text()))
    d.ctl("poweroff")
    assert d.wait_exit() == 0


def rec(t, body=b"", arg=0, length=None):
    return struct.pack("<IIQ", t, arg, len(body) if length is None else length) + body


def hello(mem_mb=32, vcpus=1):
    return rec(HELLO, struct.pack("<QIQIIII", MAGIC, 1, mem_mb << 20, vcpus, 4096, 0, 10000))


def switch():
    return rec(SWITCH, struct.pack("<QQII", 0, 0, 1, 0) + b"\0" * 32)


HOSTILE = [
    ("garbage", b"GET / HTTP/1.0\r\n\r\n" + b"x" * 64, r"not a vmx migration stream"),
    ("bad magic", rec(HELLO, struct.pack("<QIQIIII", 0x1234, 1, 32 << 20, 1, 4096, 0, 0)),
     r"not a vmx migration stream"),
    ("pages beyond RAM", hello() + rec(PAGES, struct.pack("<Q", 32 << 20) + b"\x11" * 4096, arg=1),
     r"PAGES outside guest RAM"),
    ("pages wrapping", hello() + rec(PAGES, struct.pack("<Q", (1 << 64) - 4096) + b"\x11" * 4096, arg=1),
     r"PAGES outside guest RAM"),
    ("run too long", hello() + rec(PAGES, struct.pack("<Q", 0), arg=1 << 20, length=8 + (1 << 32)),
     r"bad PAGES record"),
    ("length lies", hello() + rec(PAGES, struct.pack("<Q", 0), arg=1, length=16),
     r"bad PAGES record"),
    ("zero beyond RAM", hello() + rec(ZERO, struct.pack("<QI", 4096, 8192)), r"ZERO outside guest RAM"),
    ("huge section", hello() + switch() + rec(ST_VCPU, length=1 << 40), r"too large"),
    ("state before switch", hello() + rec(ST_VCPU, b"\0" * 16), r"unexpected record 0x3"),
    ("end without vcpus", hello() + switch() + rec(ST_END), r"held 0 vCPU states"),
    ("bad vcpu state", hello() + switch() + rec(ST_VCPU, b"\x05\0\0\0junk"), r"state section 3"),
    ("truncated", hello() + rec(PAGES, struct.pack("<Q", 0) + b"\x22" * 100, arg=1, length=8 + 4096),
     r"stream ended"),
]


@pytest.mark.parametrize("name,data,why", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_stream_is_refused(root, vms, name, data, why):
    d = Vm(root, "dst", "idle")
    vms.append(d)
    path = os.path.join(root, "m.sock")
    d.incoming("unix:" + path)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    s.close()
    assert d.wait_exit() == 1, d.log()[-2000:]
    log = d.log()
    assert re.search(r"VMX-MIGRATE failed reason=.*" + why, log), (name, log[-2000:])
    assert "VMX-EXIT state=failed" in log
    assert "VMX-READY" not in log and "VMX-CRASH" not in log
    # It told the peer why (a FAIL record), unless the peer had not spoken the protocol at all.
    if name not in ("garbage",):
        assert struct.pack("<I", 0x123) in got or struct.pack("<I", 0x120) in got


def sections(path):
    """(type, instance, bytes) of each section of a snapshot file."""
    data, out, off = open(path, "rb").read(), [], 0
    while off + 16 <= len(data):
        t, i, n = struct.unpack_from("<IIQ", data, off)
        out.append((t, i, data[off + 16:off + 16 + n]))
        off += 16 + n
    return out


def test_real_state_sent_twice_is_refused(root, vms):
    # A genuine vCPU state (from a snapshot of a 2-vCPU VM) loads; the same
    # vCPU's state a second time instead of the other one's is refused.
    v = Vm(root, "snap", "idle", vcpus=2)
    vms.append(v)
    v.start()
    v.ctl("snapshot", "s.snap")
    v.stop()
    vcpu0 = [b for t, i, b in sections(os.path.join(v.dir, "s.snap")) if t == ST_VCPU and i == 0][0]
    d = Vm(root, "dst", "idle", vcpus=2)
    vms.append(d)
    path = os.path.join(root, "m.sock")
    d.incoming("unix:" + path)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    s.sendall(hello(vcpus=2) + switch() + rec(ST_VCPU, vcpu0, arg=0) + rec(ST_VCPU, vcpu0, arg=0)
              + rec(ST_END))
    assert d.wait_exit() == 1
    s.close()
    assert re.search(r"VMX-MIGRATE failed reason=state of vCPU 0 twice", d.log()), d.log()[-2000:]
    assert "VMX-READY" not in d.log()
